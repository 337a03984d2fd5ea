//! Artifact Bootstrap (RFC-60 phase 7): the release manifest, then everything it pins, into the
//! customer ACR; then the manifest and the runbook and migrations artifacts into artifact storage.
//!
//! Order matters: the manifest is imported by the digest its tag had when we looked, read back and
//! validated before anything else moves, so a bad manifest mutates nothing beyond its own import
//! and a publisher tag moved mid-run changes nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use super::preflight::Check;
use super::{Phase, Report};
use crate::azure::acr::{Acr, Import};
use crate::azure::identity::Secret;
use crate::config::{ArtifactsConfig, ImportMethod, ImportMode};
use crate::context::Context;
use crate::error::RunError;
use crate::oci::{AcrIdentity, CopyOptions, Credentials, Registry, RegistryOptions};
use crate::release::{self, Kind, Pinned, ReleaseManifest};
use crate::sequence::Step;

mod storage;

const PHASE: &str = "artifacts";

pub struct Artifacts;

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
struct Clients {
    cfg: ArtifactsConfig,
    credential: PullCredential,
    publisher: Registry,
    customer: Registry,
    acr: Acr,
}

impl Clients {
    async fn new(ctx: &Context) -> Result<Clients, RunError> {
        let cfg = ctx.config.artifacts.clone().expect("artifacts configuration is validated for this step");
        let secret = ctx.vault.get(&cfg.publisher_credential_secret).await.map_err(|e| RunError::azure(PHASE, e))?;
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
        )
        .map_err(|e| RunError::oci(PHASE, e))?;
        let identity = AcrIdentity {
            tokens: ctx.tokens.clone(),
            aad_scope: ctx.config.cloud.arm_scope(),
            auth_endpoint: cfg.acr_auth_endpoint.clone(),
            tenant: ctx.config.tenant_id.clone(),
        };
        let customer =
            Registry::new(&cfg.acr_login_server, Credentials::AcrIdentity(identity), ctx.http.clone(), &opts)
                .map_err(|e| RunError::oci(PHASE, e))?;
        let acr = Acr::new(ctx.arm.clone(), &ctx.config.subscription_id, &ctx.config.resource_group, &cfg.acr_name);
        Ok(Clients { cfg, credential, publisher, customer, acr })
    }

    /// Brings `repo@digest` to `repo:tag` in the customer registry, by the configured method.
    async fn import(&self, repo: &str, digest: &str, tag: &str, force: bool) -> Result<(), RunError> {
        let run = async {
            match self.cfg.method {
                ImportMethod::ImportImage => self
                    .acr
                    .import(
                        &Import {
                            registry_uri: self.cfg.publisher_registry.clone(),
                            username: self.credential.username.clone(),
                            password: self.credential.password.clone(),
                            source_image: format!("{repo}@{digest}"),
                            target_tags: vec![format!("{repo}:{tag}")],
                            force,
                        },
                        self.cfg.import_timeout,
                    )
                    .await
                    .map_err(|e| RunError::azure(PHASE, e)),
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
                .map_err(|e| RunError::oci(PHASE, e)),
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
            Err(_) => Err(RunError::Phase {
                phase: PHASE.into(),
                code: "ImportTimedOut".into(),
                resource: format!("{repo}@{digest}"),
                message: format!("the import did not finish within {:?}", self.cfg.import_timeout),
            }),
        }
    }

    async fn current(&self, repo: &str, tag: &str) -> Result<Option<String>, RunError> {
        self.customer.manifest_digest(repo, tag).await.map_err(|e| RunError::oci(PHASE, e))
    }
}

#[async_trait]
impl Phase for Artifacts {
    fn step(&self) -> Step {
        Step::Artifacts
    }

    async fn checks(&self, ctx: &Context) -> Vec<Check> {
        let cfg = ctx.config.artifacts.as_ref().expect("validated");
        let acr = Acr::new(ctx.arm.clone(), &ctx.config.subscription_id, &ctx.config.resource_group, &cfg.acr_name);
        let mut checks = Vec::new();
        let started = std::time::Instant::now();
        match acr.get().await {
            Ok(r)
                if cfg.method == ImportMethod::ImportImage
                    && r.properties.restricted()
                    && !r.properties.trusted_services_allowed() =>
            {
                checks.push(Check {
                    name: "customer registry network rules".into(),
                    ok: false,
                    detail: format!(
                        "{} restricts public network access and does not allow trusted services (networkRuleBypassOptions: {}); importImage needs networkRuleBypassOptions: AzureServices, or set VIBEDATA_IMPORT_METHOD=copy",
                        cfg.acr_name,
                        r.properties.network_rule_bypass_options.as_deref().unwrap_or("None")
                    ),
                    duration_ms: started.elapsed().as_millis() as u64,
                    code: Some("TrustedServicesBypassDisabled".into()),
                    resource: Some(acr.id().to_owned()),
                });
            }
            Ok(r) => checks.push(Check::pass(
                "customer registry network rules",
                if r.properties.restricted() {
                    "restricted; trusted services allowed"
                } else {
                    "public access allowed"
                },
                started,
            )),
            Err(e) => checks.push(Check::fail("customer registry network rules", &e, started)),
        }
        checks.push(
            Check::run("publisher credential", ctx.vault.get(&cfg.publisher_credential_secret), |_| {
                format!("{} readable", cfg.publisher_credential_secret)
            })
            .await,
        );
        checks
    }

    async fn run(&self, ctx: &Context) -> Result<Report, RunError> {
        let clients = Clients::new(ctx).await?;
        let cfg = &clients.cfg;
        let mut changes = 0u64;

        // 1. The manifest: pin the tag's digest once; everything after is by digest.
        let (mrepo, mtag) = (cfg.manifest_repository.as_str(), cfg.manifest_tag.as_str());
        let manifest_digest =
            clients.publisher.manifest_digest(mrepo, mtag).await.map_err(|e| RunError::oci(PHASE, e))?.ok_or_else(
                || RunError::BadInput {
                    phase: PHASE.into(),
                    resource: format!("{}/{mrepo}:{mtag}", cfg.publisher_registry),
                    message: "the release manifest is not in the publisher registry".into(),
                },
            )?;
        tracing::info!(manifest = %format!("{mrepo}:{mtag}"), digest = %manifest_digest, "release manifest pinned");
        let manifest_action = decide(&manifest_digest, clients.current(mrepo, mtag).await?.as_deref(), cfg.mode);
        if let Action::Conflict { current } = &manifest_action {
            return Err(conflict(cfg, mrepo, mtag, current, &manifest_digest));
        }
        let source =
            if ctx.dry_run && manifest_action != Action::Skip { &clients.publisher } else { &clients.customer };
        if !ctx.dry_run {
            if let Action::Import { force } = manifest_action {
                clients.import(mrepo, &manifest_digest, mtag, force).await?;
                changes += 1;
            }
        }
        let (manifest, document) = storage::read_release(source, mrepo, &manifest_digest, cfg).await?;

        // 2. Plan every pinned target from its current digest.
        let pinned = manifest.pinned();
        // Futures are collected before streaming them: a lazy `map` over borrowed items trips
        // rustc's higher-ranked lifetime check inside a `Send` async trait method.
        let lookups: Vec<_> = pinned.iter().map(|p| clients.current(&p.repository, &p.tag)).collect();
        let currents: Vec<Option<String>> =
            futures::stream::iter(lookups).buffered(cfg.concurrency).try_collect().await?;
        let actions: Vec<Action> =
            pinned.iter().zip(&currents).map(|(p, c)| decide(&p.digest, c.as_deref(), cfg.mode)).collect();
        if let Some((p, Action::Conflict { current })) =
            pinned.iter().zip(&actions).find(|(_, a)| matches!(a, Action::Conflict { .. }))
        {
            return Err(conflict(cfg, &p.repository, &p.tag, current, &p.digest));
        }
        let todo: Vec<(&Pinned, bool)> = pinned
            .iter()
            .zip(&actions)
            .filter_map(|(p, a)| match a {
                Action::Import { force } => Some((p, *force)),
                _ => None,
            })
            .collect();
        if ctx.dry_run {
            let would = storage::plan(ctx, &manifest, &manifest_digest).await?;
            let imports: Vec<_> = todo.iter().map(|(p, force)| json!({"kind": p.kind.as_str(), "target": format!("{}:{}", p.repository, p.tag), "digest": p.digest, "force": force})).collect();
            for i in &imports {
                tracing::info!(import = %i, "would import");
            }
            let manifest_import = u64::from(manifest_action != Action::Skip);
            return Ok(Report {
                changes: manifest_import + todo.len() as u64 + would,
                summary: json!({"release": manifest.release, "manifestDigest": manifest_digest, "imports": imports, "artifactStorageWrites": would}),
            });
        }

        // 3. Import, in parallel within the bound; the pipeline backs off on 429.
        changes += import_all(&clients, &todo, &pinned).await?;

        // 4. Verify every target tag, imported now or earlier.
        let lookups: Vec<_> = pinned.iter().map(|p| clients.current(&p.repository, &p.tag)).collect();
        let verified: Vec<Option<String>> =
            futures::stream::iter(lookups).buffered(cfg.concurrency).try_collect().await?;
        for (p, got) in pinned.iter().zip(&verified) {
            if got.as_deref() != Some(p.digest.as_str()) {
                return Err(RunError::Phase {
                    phase: PHASE.into(),
                    code: "VerifyFailed".into(),
                    resource: format!("{}/{}:{}", cfg.acr_login_server, p.repository, p.tag),
                    message: format!("the tag is at {}, expected {}", got.as_deref().unwrap_or("nothing"), p.digest),
                });
            }
        }
        tracing::info!(count = pinned.len(), "verified every target tag");

        // 5. Artifact storage.
        let stored = storage::store(ctx, &clients.customer, &manifest, &manifest_digest, mrepo, &document).await?;
        changes += stored.writes;

        let count = |k: Kind| pinned.iter().filter(|p| p.kind == k).count();
        let imported = |k: Kind| todo.iter().filter(|(p, _)| p.kind == k).count();
        Ok(Report {
            changes,
            summary: json!({
                "release": manifest.release,
                "manifestDigest": manifest_digest,
                "method": match cfg.method { ImportMethod::ImportImage => "importImage", ImportMethod::Copy => "copy" },
                "images": {"total": count(Kind::Image), "imported": imported(Kind::Image)},
                "runbooks": {"total": count(Kind::Runbook), "imported": imported(Kind::Runbook)},
                "migrations": {"total": count(Kind::Migrations), "imported": imported(Kind::Migrations)},
                "digests": pinned.iter().map(|p| (format!("{}:{}", p.repository, p.tag), serde_json::Value::from(p.digest.clone()))).collect::<serde_json::Map<_, _>>(),
                "artifactStorage": {"container": ctx.config.artifact_container, "writes": stored.writes, "refs": stored.refs},
            }),
        })
    }
}

fn conflict(cfg: &ArtifactsConfig, repo: &str, tag: &str, current: &str, wanted: &str) -> RunError {
    RunError::Phase {
        phase: PHASE.into(),
        code: "TagConflict".into(),
        resource: format!("{}/{repo}:{tag}", cfg.acr_login_server),
        message: format!("the tag is at {current}, the release pins {wanted}; nothing was imported (set VIBEDATA_IMPORT_MODE=Force to move it)"),
    }
}

/// Runs the imports with bounded concurrency and a progress line per finished import.
async fn import_all(clients: &Clients, todo: &[(&Pinned, bool)], pinned: &[Pinned]) -> Result<u64, RunError> {
    let done: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let slot = |k: Kind| match k {
        Kind::Image => 0,
        Kind::Runbook => 1,
        Kind::Migrations => 2,
    };
    let already =
        |k: Kind| pinned.iter().filter(|p| p.kind == k).count() - todo.iter().filter(|(p, _)| p.kind == k).count();
    for k in [Kind::Image, Kind::Runbook, Kind::Migrations] {
        done[slot(k)].store(already(k), Ordering::SeqCst);
    }
    let imports: Vec<_> = todo.iter().map(|(p, force)| {
        let done = done.clone();
        async move {
            clients.import(&p.repository, &p.digest, &p.tag, *force).await?;
            let n = done[slot(p.kind)].fetch_add(1, Ordering::SeqCst) + 1;
            let total = pinned.iter().filter(|x| x.kind == p.kind).count();
            let noun = match p.kind {
                Kind::Image => "images",
                Kind::Runbook => "runbooks",
                Kind::Migrations => "migration artifacts",
            };
            tracing::info!(target_tag = %format!("{}:{}", p.repository, p.tag), digest = %p.digest, "imported {n}/{total} {noun}");
            Ok::<_, RunError>(())
        }
    }).collect();
    futures::stream::iter(imports).buffer_unordered(clients.cfg.concurrency).try_collect::<Vec<()>>().await?;
    Ok(todo.len() as u64)
}

/// Parses and validates the manifest document; every problem is bad input.
pub fn validate(bytes: &[u8], cfg: &ArtifactsConfig) -> Result<ReleaseManifest, RunError> {
    release::parse(bytes, &cfg.publisher_registry, &cfg.images).map_err(|e| RunError::BadInput {
        phase: PHASE.into(),
        resource: format!("{}:{}", cfg.manifest_repository, cfg.manifest_tag),
        message: e.to_string(),
    })
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
