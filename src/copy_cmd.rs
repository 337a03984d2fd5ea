//! `vibedata-bootstrap copy SRC DST`: one image or index between two registries, the data-plane
//! counterpart of ARM `importImage`, and what `scripts/bench` measures against skopeo.

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
use crate::oci::{copy, AcrIdentity, CopyOptions, Credentials, Registry, RegistryOptions};

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
        let src = Registry::new(&plan.src.registry, plan.src_creds, plan.http.clone(), &plan.options)?;
        let dst = Registry::new(&plan.dst.registry, plan.dst_creds, plan.http.clone(), &plan.options)?;
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
        Ok::<_, crate::oci::OciError>((report, referrers))
    }
    .await;
    ticker.abort();
    print_progress(&progress);
    match result {
        Ok((report, referrers)) => {
            let mut doc = serde_json::json!({
                "source": plan.src.to_string(),
                "target": plan.dst.to_string(),
                "durationMs": started.elapsed().as_millis() as u64,
                "report": report,
            });
            if args.referrers {
                doc["referrers"] = referrers.into();
            }
            println!("{doc}");
            0
        }
        Err(e) => {
            eprintln!("vibedata-bootstrap: copy {} to {} failed: {e} ({})", plan.src, plan.dst, e.code());
            e.exit_code()
        }
    }
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
) -> Result<Vec<String>, crate::oci::OciError> {
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
    let mut dst = ImageRef::parse(&args.dst).map_err(|e| BadInput(format!("DST {:?}: {e}", args.dst)))?;
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
    if !(1..=64).contains(&args.jobs) {
        return Err(BadInput(format!("--jobs {} is out of range 1..=64", args.jobs)));
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
