//! Artifact Bootstrap (RFC-60 phase 7): the release manifest, then everything it pins, into the
//! customer ACR; then the manifest and the runbook and migrations artifacts into artifact storage.
//!
//! Order matters: the plan pins the manifest's tag to a digest once, reads that manifest from the
//! publisher by digest and validates it before anything moves, so a bad manifest mutates nothing
//! and a publisher tag moved mid-run changes nothing. Everything after is by digest.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::json;

use super::preflight::Check;
use super::{Change, Env, Phase, Plan, Report};
use crate::azure::acr::{Acr, Import};
use crate::azure::identity::Secret;
use crate::cloud::Cloud;
use crate::config::{ArtifactsConfig, ImportMethod, ImportMode, Validator};
use crate::context::Context;
use crate::error::{Code, PhaseError};
use crate::oci::{AcrIdentity, CopyOptions, Credentials, Registry, RegistryOptions};
use crate::release::{self, Kind, Pinned, ReleaseManifest};
use crate::sequence::Step;

mod signature;
mod storage;

/// What to do with one target tag, decided from its current digest. Pure, so it is unit-tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Already at the wanted digest.
    Skip,
    Import {
        force: bool,
    },
    /// At another digest and `Force` is not configured.
    Conflict {
        current: String,
    },
}

pub fn decide(wanted: &str, current: Option<&str>, mode: ImportMode) -> Action {
    match current {
        Some(c) if c == wanted => Action::Skip,
        None => Action::Import { force: false },
        Some(_) if mode == ImportMode::Force => Action::Import { force: true },
        Some(c) => Action::Conflict { current: c.to_owned() },
    }
}

/// The publisher pull credential as stored in Key Vault: `{"username","password"}`,
/// `username:password`, or a bare token.
#[derive(Clone)]
pub struct PullCredential {
    pub username: Option<String>,
    pub password: Secret,
}

impl PullCredential {
    pub fn parse(secret: &Secret) -> PullCredential {
        let raw = secret.expose().trim();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) {
            if let Some(p) = v.get("password").and_then(|p| p.as_str()) {
                return PullCredential {
                    username: v.get("username").and_then(|u| u.as_str()).map(str::to_owned),
                    password: Secret::new(p),
                };
            }
        }
        match raw.split_once(':') {
            Some((u, p)) if !u.is_empty() && !u.contains(' ') => {
                PullCredential { username: Some(u.to_owned()), password: Secret::new(p) }
            }
            _ => PullCredential { username: None, password: Secret::new(raw) },
        }
    }
}

/// The two registries and the management client, built once per run.
pub struct Clients {
    cfg: ArtifactsConfig,
    credential: PullCredential,
    publisher: Registry,
    customer: Registry,
    acr: Acr,
}

impl Clients {
    async fn new(ctx: &Context, cfg: &ArtifactsConfig) -> Result<Clients, PhaseError> {
        let cfg = cfg.clone();
        let secret = ctx.vault.get(&cfg.publisher_credential_secret).await?;
        let credential = PullCredential::parse(&secret);
        let opts = RegistryOptions {
            ca_file: ctx.config.ca_file.clone(),
            timeout: Some(ctx.config.http_timeout),
            policy: ctx.policy.clone(),
        };
        let publisher = Registry::new(
            &cfg.publisher_registry,
            Credentials::Basic {
                // ACR accepts a token as the password under any user name; the null GUID is the convention.
                username: credential.username.clone().unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
                password: credential.password.clone(),
            },
            ctx.http.clone(),
            &opts,
        )?;
        let identity = AcrIdentity {
            tokens: ctx.tokens.clone(),
            aad_scope: ctx.config.cloud.arm_scope(),
            auth_endpoint: cfg.acr_auth_endpoint.clone(),
            tenant: ctx.config.tenant_id.clone(),
        };
        let customer =
            Registry::new(&cfg.acr_login_server, Credentials::AcrIdentity(identity), ctx.http.clone(), &opts)?;
        let acr = Acr::new(ctx.arm.clone(), &ctx.config.subscription_id, &ctx.config.resource_group, &cfg.acr_name);
        Ok(Clients { cfg, credential, publisher, customer, acr })
    }

    /// An `importImage` of `repo@digest` from the publisher.
    fn import_of(
        &self,
        repo: &str,
        digest: &str,
        target_tags: Vec<String>,
        untagged: Vec<String>,
        force: bool,
    ) -> Import {
        Import {
            registry_uri: self.cfg.publisher_registry.clone(),
            username: self.credential.username.clone(),
            password: self.credential.password.clone(),
            source_image: format!("{repo}@{digest}"),
            target_tags,
            untagged,
            force,
        }
    }

    /// Brings `repo@digest` to `repo:tag` in the customer registry, by the configured method.
    async fn import(&self, repo: &str, digest: &str, tag: &str, force: bool) -> Result<(), PhaseError> {
        let run = async {
            match self.cfg.method {
                ImportMethod::ImportImage => self
                    .acr
                    .import(
                        &self.import_of(repo, digest, vec![format!("{repo}:{tag}")], Vec::new(), force),
                        self.cfg.import_timeout,
                    )
                    .await
                    .map_err(PhaseError::from),
                ImportMethod::Copy => crate::oci::copy(
                    &self.publisher,
                    repo,
                    digest,
                    &self.customer,
                    repo,
                    Some(tag),
                    &CopyOptions::default(),
                )
                .await
                .map(|_| ())
                .map_err(PhaseError::from),
            }
        };
        match tokio::time::timeout(self.cfg.import_timeout, run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                // Another runner (or a killed earlier attempt whose operation finished) may have
                // put the tag in place meanwhile: the state is what counts.
                if self.current(repo, tag).await.ok().flatten().as_deref() == Some(digest) {
                    tracing::info!(image = %format!("{repo}:{tag}"), "import reported an error but the tag is at the wanted digest");
                    return Ok(());
                }
                Err(e)
            }
            Err(_) => Err(PhaseError::failed(
                Code::ImportTimedOut,
                format!("{repo}@{digest}"),
                format!("the import did not finish within {:?}", self.cfg.import_timeout),
            )),
        }
    }

    /// Brings the signature manifest `repo@digest` into the customer registry by digest only.
    async fn import_signature(&self, repo: &str, digest: &str) -> Result<(), PhaseError> {
        match self.cfg.method {
            ImportMethod::ImportImage => self
                .acr
                // By digest, so Force cannot move anything; it is the pattern that carries
                // referrers (dotnet/docker-tools CopyImageService).
                .import(&self.import_of(repo, digest, Vec::new(), vec![repo.to_owned()], true), self.cfg.import_timeout)
                .await
                .map_err(PhaseError::from),
            ImportMethod::Copy => {
                crate::oci::copy(&self.publisher, repo, digest, &self.customer, repo, None, &CopyOptions::default())
                    .await
                    .map(|_| ())
                    .map_err(PhaseError::from)
            }
        }
    }

    async fn current(&self, repo: &str, tag: &str) -> Result<Option<String>, PhaseError> {
        Ok(self.customer.manifest_digest(repo, tag).await?)
    }

    /// The current digest of every pinned target tag, within the concurrency bound.
    async fn currents(&self, pinned: &[Pinned]) -> Result<Vec<Option<String>>, PhaseError> {
        // Futures are collected before streaming them: a lazy `map` over borrowed items trips
        // rustc's higher-ranked lifetime check inside a `Send` async trait method.
        let lookups: Vec<_> = pinned.iter().map(|p| self.current(&p.repository, &p.tag)).collect();
        futures::stream::iter(lookups).buffered(self.cfg.concurrency).try_collect().await
    }
}

/// What the plan hands the apply.
pub struct Work {
    clients: Clients,
    manifest: ReleaseManifest,
    manifest_digest: String,
    document: bytes::Bytes,
    /// The manifest's own import, when its tag is not at the pinned digest yet.
    manifest_import: Option<bool>,
    pinned: Vec<Pinned>,
    /// Indexes into `pinned` of the targets to import, with `force`.
    todo: Vec<(usize, bool)>,
    provenance: signature::Provenance,
    carry: signature::Carry,
}

pub struct Artifacts;

#[async_trait]
impl Phase for Artifacts {
    type Config = ArtifactsConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Artifacts
    }

    fn configure(&self, v: &mut Validator<'_>, cloud: &Cloud) -> ArtifactsConfig {
        v.artifacts(cloud)
    }

    async fn checks(&self, env: &Env<'_, ArtifactsConfig>) -> Vec<Check> {
        let (ctx, cfg) = (env.ctx, env.cfg);
        let acr = Acr::new(ctx.arm.clone(), &ctx.config.subscription_id, &ctx.config.resource_group, &cfg.acr_name);
        let mut checks = Vec::new();
        let started = std::time::Instant::now();
        let name = "customer registry network rules";
        match acr.get().await {
            Ok(r)
                if cfg.method == ImportMethod::ImportImage
                    && r.properties.restricted()
                    && !r.properties.trusted_services_allowed() =>
            {
                checks.push(Check::failed(
                    name,
                    Code::TrustedServicesBypassDisabled,
                    acr.id(),
                    format!(
                        "{} restricts public network access and does not allow trusted services (networkRuleBypassOptions: {}); importImage needs networkRuleBypassOptions: AzureServices, or set VIBEDATA_IMPORT_METHOD=copy",
                        cfg.acr_name,
                        r.properties.network_rule_bypass_options.as_deref().unwrap_or("None")
                    ),
                    started,
                ));
            }
            Ok(r) => {
                checks.push(Check::pass(
                    name,
                    if r.properties.restricted() {
                        "restricted; trusted services allowed"
                    } else {
                        "public access allowed"
                    },
                    started,
                ));
                checks.push(Check::pass(
                    "customer registry role assignment mode",
                    role_mode(r.properties.role_assignment_mode.as_deref()),
                    started,
                ));
            }
            Err(e) => checks.push(Check::fail(name, &e, started)),
        }
        // The trust store parsed during validation; say what it holds and what is not checked.
        let v = &cfg.verification;
        checks.push(Check::pass(
            "release trust store",
            match &v.policy {
                Some(p) => format!(
                    "{} root certificate(s), {} verification, revocation not checked",
                    p.roots(),
                    v.level.as_str()
                ),
                None => format!("none: {} verification reports the signature without enforcing it", v.level.as_str()),
            },
            std::time::Instant::now(),
        ));
        checks.push(
            Check::run("publisher credential", ctx.vault.get(&cfg.publisher_credential_secret), |_| {
                format!("{} readable", cfg.publisher_credential_secret)
            })
            .await,
        );
        checks
    }

    async fn plan(&self, env: &Env<'_, ArtifactsConfig>) -> Result<Plan<Work>, PhaseError> {
        let clients = Clients::new(env.ctx, env.cfg).await?;
        let cfg = env.cfg;

        // 1. The manifest: pin the tag's digest once; everything after is by digest.
        let (mrepo, mtag) = (cfg.manifest_repository.as_str(), cfg.manifest_tag.as_str());
        let manifest_digest = clients.publisher.manifest_digest(mrepo, mtag).await?.ok_or_else(|| {
            PhaseError::bad_input(
                format!("{}/{mrepo}:{mtag}", cfg.publisher_registry),
                "the release manifest is not in the publisher registry",
            )
        })?;
        tracing::info!(manifest = %format!("{mrepo}:{mtag}"), digest = %manifest_digest, "release manifest pinned");
        // 2. Its signature, before anything else is read from the manifest or moved.
        let subject = clients.publisher.manifest(mrepo, &manifest_digest).await?;
        let subject = crate::notary::Descriptor {
            media_type: subject.media_type,
            digest: manifest_digest.clone(),
            size: subject.bytes.len() as u64,
        };
        let provenance = signature::verify(&clients.publisher, mrepo, &subject, cfg).await?;
        let manifest_import = match decide(&manifest_digest, clients.current(mrepo, mtag).await?.as_deref(), cfg.mode) {
            Action::Conflict { current } => return Err(conflict(cfg, mrepo, mtag, &current, &manifest_digest)),
            Action::Skip => None,
            Action::Import { force } => Some(force),
        };
        let (manifest, document) = storage::read_release(&clients.publisher, mrepo, &manifest_digest, cfg).await?;

        // 3. Every pinned target, from its current digest.
        let pinned = manifest.pinned();
        let currents = clients.currents(&pinned).await?;
        let mut todo = Vec::new();
        for (i, (p, current)) in pinned.iter().zip(&currents).enumerate() {
            match decide(&p.digest, current.as_deref(), cfg.mode) {
                Action::Conflict { current } => {
                    return Err(conflict(cfg, &p.repository, &p.tag, &current, &p.digest));
                }
                Action::Import { force } => todo.push((i, force)),
                Action::Skip => {}
            }
        }

        // 4. The accepted signature, kept beside the manifest in the customer registry.
        let carry = signature::carry(&clients.customer, mrepo, &manifest_digest, &provenance).await?;

        // 5. Artifact storage.
        let writes = storage::plan(env, &clients.publisher, &manifest, &manifest_digest, mrepo, &document).await?;

        let mut changes = Vec::new();
        if let Some(force) = manifest_import {
            changes.push(import_change("manifest", mrepo, mtag, force));
        }
        changes.extend(carry_changes(mrepo, &carry));
        changes.extend(todo.iter().map(|&(i, force)| {
            let p = &pinned[i];
            import_change(p.kind.as_str(), &p.repository, &p.tag, force)
        }));
        let imports: Vec<_> = todo
            .iter()
            .map(|&(i, force)| {
                let p = &pinned[i];
                json!({"kind": p.kind.as_str(), "target": format!("{}:{}", p.repository, p.tag), "digest": p.digest, "force": force})
            })
            .collect();
        let summary = json!({"release": manifest.release, "manifestDigest": manifest_digest, "signature": provenance.summary(), "imports": imports, "artifactStorageWrites": writes.len()});
        changes.extend(writes);
        let work =
            Work { clients, manifest, manifest_digest, document, manifest_import, pinned, todo, provenance, carry };
        Ok(Plan::new(changes, summary, work))
    }

    async fn apply(&self, env: &Env<'_, ArtifactsConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let Work { clients, manifest, manifest_digest, document, manifest_import, pinned, todo, provenance, carry } =
            plan.work;
        let cfg = env.cfg;
        let (mrepo, mtag) = (cfg.manifest_repository.as_str(), cfg.manifest_tag.as_str());
        // The manifest, then its signature (a registry may index the subject on arrival), then
        // the referrers index: one chain that holds one slot of the import bound beside the
        // pinned targets, which do not depend on it, so the chain adds no batch of its own.
        let chain = async {
            if let Some(force) = manifest_import {
                clients.import(mrepo, &manifest_digest, mtag, force).await?;
                env.changed(import_change("manifest", mrepo, mtag, force));
            }
            let mut carried = carry_changes(mrepo, &carry).into_iter();
            if let Some(digest) = &carry.import {
                clients.import_signature(mrepo, digest).await?;
                env.changed(carried.next().expect("one change per carried item"));
            }
            if let Some((tag, index)) = &carry.index {
                clients.customer.put_manifest(mrepo, tag, index.clone(), crate::oci::OCI_INDEX).await?;
                env.changed(carried.next().expect("one change per carried item"));
            }
            Ok(())
        };

        // Import, in parallel within the bound; the pipeline backs off on 429.
        import_all(env, &clients, chain.boxed(), &todo, &pinned).await?;

        // Verify every target tag, imported now or earlier.
        let verified = clients.currents(&pinned).await?;
        for (p, got) in pinned.iter().zip(&verified) {
            if got.as_deref() != Some(p.digest.as_str()) {
                return Err(PhaseError::failed(
                    Code::VerifyFailed,
                    format!("{}/{}:{}", cfg.acr_login_server, p.repository, p.tag),
                    format!("the tag is at {}, expected {}", got.as_deref().unwrap_or("nothing"), p.digest),
                ));
            }
        }
        tracing::info!(count = pinned.len(), "verified every target tag");

        let stored = storage::store(env, &clients.customer, &manifest, &manifest_digest, mrepo, &document).await?;

        let count = |k: Kind| pinned.iter().filter(|p| p.kind == k).count();
        let imported = |k: Kind| todo.iter().filter(|(i, _)| pinned[*i].kind == k).count();
        Ok(Report {
            summary: json!({
                "release": manifest.release,
                "manifestDigest": manifest_digest,
                "signature": provenance.summary(),
                "method": match cfg.method { ImportMethod::ImportImage => "importImage", ImportMethod::Copy => "copy" },
                "images": {"total": count(Kind::Image), "imported": imported(Kind::Image)},
                "runbooks": {"total": count(Kind::Runbook), "imported": imported(Kind::Runbook)},
                "migrations": {"total": count(Kind::Migrations), "imported": imported(Kind::Migrations)},
                "charts": {"total": count(Kind::Chart), "imported": imported(Kind::Chart)},
                "ai": {"total": count(Kind::Ai), "imported": imported(Kind::Ai)},
                "digests": pinned.iter().map(|p| (format!("{}:{}", p.repository, p.tag), serde_json::Value::from(p.digest.clone()))).collect::<serde_json::Map<_, _>>(),
                "artifactStorage": {"container": env.config().artifact_container, "writes": stored.writes, "refs": stored.refs},
            }),
        })
    }
}

/// The customer-registry writes that keep the accepted signature, in the order apply makes them.
fn carry_changes(repo: &str, carry: &signature::Carry) -> Vec<Change> {
    let mut changes = Vec::new();
    if let Some(digest) = &carry.import {
        changes.push(Change::new("signature", format!("{repo}@{digest}"), "import"));
    }
    if let Some((tag, _)) = &carry.index {
        changes.push(Change::new("referrers-index", format!("{repo}:{tag}"), "update"));
    }
    changes
}

fn import_change(kind: &'static str, repo: &str, tag: &str, force: bool) -> Change {
    Change::new(kind, format!("{repo}:{tag}"), if force { "force-import" } else { "import" })
}

fn conflict(cfg: &ArtifactsConfig, repo: &str, tag: &str, current: &str, wanted: &str) -> PhaseError {
    PhaseError::failed(
        Code::TagConflict,
        format!("{}/{repo}:{tag}", cfg.acr_login_server),
        format!("the tag is at {current}, the release pins {wanted}; nothing was imported (set VIBEDATA_IMPORT_MODE=Force to move it)"),
    )
}

/// Runs `first` and the imports with bounded concurrency, `first` in the first slot, and a
/// progress line per finished import.
async fn import_all<'a>(
    env: &'a Env<'_, ArtifactsConfig>,
    clients: &'a Clients,
    first: BoxFuture<'a, Result<(), PhaseError>>,
    todo: &'a [(usize, bool)],
    pinned: &'a [Pinned],
) -> Result<(), PhaseError> {
    let done: Arc<[AtomicUsize; 5]> = Arc::new(Default::default());
    let slot = |k: Kind| Kind::ALL.iter().position(|x| *x == k).expect("every kind is in ALL");
    let total = |k: Kind| pinned.iter().filter(|p| p.kind == k).count();
    for k in Kind::ALL {
        let planned = todo.iter().filter(|(i, _)| pinned[*i].kind == k).count();
        done[slot(k)].store(total(k) - planned, Ordering::SeqCst);
    }
    let imports = todo.iter().map(|&(i, force)| {
        let done = done.clone();
        let p = &pinned[i];
        async move {
            clients.import(&p.repository, &p.digest, &p.tag, force).await?;
            env.changed(import_change(p.kind.as_str(), &p.repository, &p.tag, force));
            let n = done[slot(p.kind)].fetch_add(1, Ordering::SeqCst) + 1;
            tracing::info!(target_tag = %format!("{}:{}", p.repository, p.tag), digest = %p.digest, "imported {n}/{} {}", total(p.kind), p.kind.noun());
            Ok::<_, PhaseError>(())
        }
        .boxed()
    });
    let all: Vec<_> = std::iter::once(first).chain(imports).collect();
    futures::stream::iter(all).buffer_unordered(clients.cfg.concurrency).try_collect::<Vec<()>>().await?;
    Ok(())
}

/// Parses and validates the manifest document; every problem is bad input.
pub fn validate(bytes: &[u8], cfg: &ArtifactsConfig) -> Result<ReleaseManifest, PhaseError> {
    release::parse(bytes, &cfg.publisher_registry, &cfg.images)
        .map_err(|e| PhaseError::bad_input(format!("{}:{}", cfg.manifest_repository, cfg.manifest_tag), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_target_state() {
        let d = "sha256:1";
        assert_eq!(decide(d, Some(d), ImportMode::NoForce), Action::Skip);
        assert_eq!(decide(d, None, ImportMode::NoForce), Action::Import { force: false });
        assert_eq!(decide(d, Some("sha256:2"), ImportMode::NoForce), Action::Conflict { current: "sha256:2".into() });
        assert_eq!(decide(d, Some("sha256:2"), ImportMode::Force), Action::Import { force: true });
        assert_eq!(decide(d, Some(d), ImportMode::Force), Action::Skip, "Force never re-imports what is already right");
    }

    #[test]
    fn pull_credentials_in_every_stored_shape() {
        let json = PullCredential::parse(&Secret::new(r#"{"username":"u","password":"p:w"}"#));
        assert_eq!((json.username.as_deref(), json.password.expose()), (Some("u"), "p:w"));
        let pair = PullCredential::parse(&Secret::new("u:p"));
        assert_eq!((pair.username.as_deref(), pair.password.expose()), (Some("u"), "p"));
        let token = PullCredential::parse(&Secret::new("eyJtoken"));
        assert_eq!((token.username, token.password.expose()), (None, "eyJtoken"));
    }
}

/// The ACR's `roleAssignmentMode` and the data-plane permission strings that fit it: legacy roles
/// (AcrPull, Reader's `*/read`) are not honoured in ABAC mode (specs/permissions.md §4).
fn role_mode(mode: Option<&str>) -> String {
    let legacy = crate::azure::acr::PULL;
    match mode {
        Some(m) if m.eq_ignore_ascii_case("AbacRepositoryPermissions") => {
            let abac: Vec<&str> = crate::azure::acr::abac(&legacy).iter().map(|p| p.name).collect();
            format!("{m}: reading tags back needs the data actions {}", abac.join(" and "))
        }
        m => format!("{}: reading tags back needs {}", m.unwrap_or("LegacyRegistryPermissions (default)"), legacy.name),
    }
}

#[cfg(test)]
mod role_mode_tests {
    #[test]
    fn the_mode_picks_the_strings() {
        assert!(super::role_mode(None).ends_with("Microsoft.ContainerRegistry/registries/pull/read"));
        let abac = super::role_mode(Some("AbacRepositoryPermissions"));
        assert!(abac.contains("repositories/content/read") && abac.contains("repositories/metadata/read"), "{abac}");
    }
}
