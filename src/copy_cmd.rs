//! `vibedata-bootstrap copy SRC DST`: one image or index between two registries, the data-plane
//! counterpart of ARM `importImage`, and what `scripts/bench` measures against skopeo; with
//! `--release`, a whole release in one process (against a loop of skopeo or crane).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::azure::identity::{Secret, Tokens};
use crate::azure::retry::RetryPolicy;
use crate::cli::CopyArgs;
use crate::config::{Config, Source};
use crate::oci::copy::Progress;
use crate::oci::reference::{ImageRef, Target};
use crate::oci::release_artifact::{release_document, ReleaseArtifactError};
use crate::oci::{copy, AcrIdentity, CopyOptions, Credentials, OciError, Registry, RegistryOptions};
use crate::release;
use futures::{StreamExt, TryStreamExt};

/// A problem with the arguments or the environment: exit 2, nothing sent.
struct BadInput(String);

/// Runs the command and returns the exit code.
pub async fn run(args: &CopyArgs, config_file: Option<&Path>) -> i32 {
    let plan = match prepare(args, config_file) {
        Ok(p) => p,
        Err(BadInput(message)) => {
            eprintln!("vibedata-bootstrap: copy: {message}");
            return 2;
        }
    };
    let progress = Arc::new(Progress::default());
    let ticker = tokio::spawn(report_progress(progress.clone()));
    let opts = CopyOptions { jobs: args.jobs, progress: Some(progress.clone()), ..Default::default() };
    let started = std::time::Instant::now();
    let result = async {
        let src = Registry::new(&plan.src.registry, plan.src_creds.clone(), plan.http.clone(), &plan.options)?;
        let dst = Registry::new(&plan.dst.registry, plan.dst_creds.clone(), plan.http.clone(), &plan.options)?;
        if args.release {
            return copy_release(&plan, &src, &dst, &opts, args.images, args.referrers).await;
        }
        let report = copy(
            &src,
            &plan.src.repository,
            plan.src_ref.as_str(),
            &dst,
            &plan.dst.repository,
            plan.dst_tag.as_deref(),
            &opts,
        )
        .await?;
        let referrers = if args.referrers {
            copy_referrers(&src, &plan.src.repository, &dst, &plan.dst.repository, &report.digest, &opts).await?
        } else {
            Vec::new()
        };
        let mut doc =
            serde_json::json!({"source": plan.src.to_string(), "target": plan.dst.to_string(), "report": report});
        if args.referrers {
            doc["referrers"] = referrers.into();
        }
        Ok(doc)
    }
    .await;
    ticker.abort();
    print_progress(&progress);
    match result {
        Ok(mut doc) => {
            doc["durationMs"] = (started.elapsed().as_millis() as u64).into();
            println!("{doc}");
            0
        }
        Err(e) => {
            eprintln!("vibedata-bootstrap: copy {} to {} failed: {e} ({})", plan.src, plan.dst, e.code());
            e.exit_code()
        }
    }
}

/// `--release`: the manifest artifact, then everything it pins, `images` at a time, through the
/// same two clients (so one token exchange, and blobs already in the target are mounted).
async fn copy_release(
    plan: &Plan,
    src: &Registry,
    dst: &Registry,
    opts: &CopyOptions,
    images: usize,
    referrers: bool,
) -> Result<serde_json::Value, OciError> {
    let (repo, tag) = (plan.src.repository.as_str(), plan.src_ref.as_str());
    let digest = match &plan.src_ref {
        Target::Digest(d) => d.clone(),
        Target::Tag(_) => src.manifest_digest(repo, tag).await?.ok_or_else(|| OciError::NotFound {
            registry: plan.src.registry.clone(),
            resource: format!("{repo}:{tag}"),
        })?,
    };
    let document = release_document(src, repo, &digest).await.map_err(|e| match e {
        ReleaseArtifactError::Registry(e) => e,
        other => OciError::BadReference { reference: format!("{repo}@{digest}"), reason: other.to_string() },
    })?;
    let manifest = release::parse(&document, &plan.src.registry, &[])
        .map_err(|e| OciError::BadReference { reference: format!("{repo}@{digest}"), reason: e.to_string() })?;
    let target = |r: &str| match plan.dst.repository.as_str() {
        "" => r.to_owned(),
        prefix => format!("{prefix}/{r}"),
    };
    let mut items: Vec<(String, String, String)> =
        manifest.pinned().into_iter().map(|p| (p.repository, p.digest, p.tag)).collect();
    let manifest_tag = plan.dst_tag.clone().unwrap_or_else(|| manifest.release.clone());
    let copies = items.iter().map(|(r, d, t)| {
        let dst_repo = target(r);
        async move {
            let report = copy(src, r, d, dst, &dst_repo, Some(t), opts).await?;
            tracing::info!(target = %format!("{dst_repo}:{t}"), digest = %d, "copied");
            Ok::<_, OciError>(serde_json::json!({"target": format!("{dst_repo}:{t}"), "digest": d, "report": report}))
        }
    });
    let mut copied: Vec<serde_json::Value> =
        futures::stream::iter(copies).buffer_unordered(images.max(1)).try_collect().await?;
    // The manifest last: its tag appears only once everything it pins is in place, so a target
    // that shows the release holds all of it.
    copy(src, repo, &digest, dst, &target(repo), Some(&manifest_tag), opts).await?;
    // The release's signatures with it, so that the target can verify it later.
    let signatures =
        if referrers { copy_referrers(src, repo, dst, &target(repo), &digest, opts).await? } else { Vec::new() };
    items.push((repo.to_owned(), digest.clone(), manifest_tag.clone()));
    copied.sort_by(|a, b| a["target"].as_str().cmp(&b["target"].as_str()));
    Ok(serde_json::json!({
        "source": plan.src.to_string(),
        "target": format!("{}/{}", plan.dst.registry, plan.dst.repository),
        "release": manifest.release,
        "manifestDigest": digest,
        "copied": items.len(),
        "items": copied,
        "referrers": signatures,
    }))
}

/// Copies every referrer of `digest` (by digest: they are untagged), then the target's tag-schema
/// index when it needs one; returns the referrers' digests.
async fn copy_referrers(
    src: &Registry,
    src_repo: &str,
    dst: &Registry,
    dst_repo: &str,
    digest: &str,
    opts: &CopyOptions,
) -> Result<Vec<String>, OciError> {
    let found = src.all_referrers(src_repo, digest).await?.manifests;
    for r in &found {
        copy(src, src_repo, &r.digest, dst, dst_repo, None, opts).await?;
    }
    if let Some((tag, index)) = dst.referrers_update(dst_repo, digest, &found).await? {
        dst.put_manifest(dst_repo, &tag, index, crate::oci::OCI_INDEX).await?;
    }
    Ok(found.into_iter().map(|r| r.digest).collect())
}

struct Plan {
    src: ImageRef,
    dst: ImageRef,
    src_ref: Target,
    dst_tag: Option<String>,
    src_creds: Credentials,
    dst_creds: Credentials,
    http: reqwest::Client,
    options: RegistryOptions,
}

fn prepare(args: &CopyArgs, config_file: Option<&Path>) -> Result<Plan, BadInput> {
    let src = ImageRef::parse(&args.src).map_err(|e| BadInput(format!("SRC {:?}: {e}", args.src)))?;
    let mut dst = if args.release {
        registry_prefix(&args.dst)?
    } else {
        ImageRef::parse(&args.dst).map_err(|e| BadInput(format!("DST {:?}: {e}", args.dst)))?
    };
    let src_ref =
        src.target.clone().ok_or_else(|| BadInput(format!("SRC {:?} needs a :tag or @sha256: digest", args.src)))?;
    let dst_tag = match (&dst.target, &src_ref) {
        (Some(Target::Tag(t)), _) => Some(t.clone()),
        (None, Target::Tag(t)) => {
            dst.target = Some(Target::Tag(t.clone()));
            Some(t.clone())
        }
        (None, Target::Digest(_)) => None,
        // A digest is a promise about content; we can only keep one we already know.
        (Some(Target::Digest(d)), Target::Digest(s)) if d == s => None,
        (Some(Target::Digest(_)), _) => {
            return Err(BadInput("DST may name a digest only when SRC names the same one".into()))
        }
    };
    for (flag, n) in [("--jobs", args.jobs), ("--images", args.images)] {
        if !(1..=64).contains(&n) {
            return Err(BadInput(format!("{flag} {n} is out of range 1..=64")));
        }
    }

    let source = Source::load(config_file).map_err(|e| BadInput(e.to_string()))?;
    let number = |key: &str, default: u64| -> Result<u64, BadInput> {
        source
            .get(key)
            .map(|v| v.trim().parse::<u64>().map_err(|_| BadInput(format!("{key} is {v:?}, not a number"))))
            .unwrap_or(Ok(default))
    };
    let timeout = Duration::from_secs(number("VIBEDATA_HTTP_TIMEOUT_SECS", 60)?.max(1));
    let max_retries = number("VIBEDATA_MAX_RETRIES", 8)? as u32;
    let ca_file = source.get("VIBEDATA_CA_FILE").filter(|s| !s.trim().is_empty()).map(std::path::PathBuf::from);
    let http = crate::azure::http_client(ca_file.as_deref(), timeout).map_err(|e| BadInput(e.0))?;
    let options = RegistryOptions {
        ca_file,
        timeout: Some(timeout),
        policy: RetryPolicy { max_retries, ..RetryPolicy::default() },
    };

    let src_creds = creds_from_env(args.src_creds_env.as_deref())?;
    let dst_creds = if args.dst_acr {
        // The managed identity exactly as `run` configures it.
        let config = Config::validate(&source, &[]).map_err(|e| BadInput(e.to_string()))?;
        let tokens = Tokens::managed_identity(&config.identity, http.clone()).map_err(|e| BadInput(e.to_string()))?;
        let auth_endpoint = match source.get("VIBEDATA_ACR_AUTH_ENDPOINT").map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => Url::parse(raw.trim_end_matches('/'))
                .ok()
                .filter(|u| u.scheme() == "https")
                .ok_or_else(|| BadInput(format!("VIBEDATA_ACR_AUTH_ENDPOINT is {raw:?}; expected an https URL")))?,
            None => Url::parse(&format!("https://{}", dst.registry)).map_err(|e| BadInput(e.to_string()))?,
        };
        Credentials::AcrIdentity(AcrIdentity {
            tokens,
            aad_scope: config.cloud.arm_scope(),
            auth_endpoint,
            tenant: config.tenant_id.clone(),
        })
    } else {
        creds_from_env(args.dst_creds_env.as_deref())?
    };
    Ok(Plan { src, dst, src_ref, dst_tag, src_creds, dst_creds, http, options })
}

/// `--release`'s DST: `host[:port]` and an optional repository prefix, no tag or digest.
fn registry_prefix(raw: &str) -> Result<ImageRef, BadInput> {
    let bad = |why: &str| BadInput(format!("DST {raw:?}: {why}"));
    let (host, prefix) = raw.split_once('/').unwrap_or((raw, ""));
    let prefix = prefix.trim_end_matches('/');
    if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(bad("with --release, expected a registry host[:port] with an optional /prefix"));
    }
    if !prefix.is_empty() {
        match ImageRef::parse(&format!("{host}/{prefix}")) {
            Ok(r) if r.target.is_none() => {}
            _ => return Err(bad("the prefix must be a repository path, without a tag or digest")),
        }
    }
    Ok(ImageRef { registry: host.to_owned(), repository: prefix.to_owned(), target: None })
}

/// `user:password` from the named environment variable (never from the command line, where any
/// local user could read it in the process list).
fn creds_from_env(var: Option<&str>) -> Result<Credentials, BadInput> {
    let Some(var) = var else { return Ok(Credentials::Anonymous) };
    let value = std::env::var(var).map_err(|_| BadInput(format!("environment variable {var} is not set")))?;
    let (user, password) = value
        .split_once(':')
        .filter(|(u, p)| !u.is_empty() && !p.is_empty())
        .ok_or_else(|| BadInput(format!("{var} must hold user:password")))?;
    Ok(Credentials::Basic { username: user.to_owned(), password: Secret::new(password) })
}

async fn report_progress(progress: Arc<Progress>) {
    let mut last = (0, 0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = snapshot(&progress);
        if now != last && now.1 > 0 {
            print_progress(&progress);
            last = now;
        }
    }
}

fn snapshot(p: &Progress) -> (usize, usize, u64) {
    (p.blobs_done.load(Ordering::Relaxed), p.blobs_total.load(Ordering::Relaxed), p.bytes.load(Ordering::Relaxed))
}

fn print_progress(p: &Progress) {
    let (done, total, bytes) = snapshot(p);
    let _ = writeln!(std::io::stderr(), "copied {done}/{total} blobs, {:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
}
