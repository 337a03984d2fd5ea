//! The import operation itself: the copy, its failures in ACR's words, and its bookkeeping.

use std::time::Instant;

use axum::http::StatusCode;

use super::*;
use crate::arm::inventory::{RegistryNetwork, REGISTRY_TYPE};
use crate::oci_copy::{self, Auth, CopyError, Registry, Side};
use crate::state::{AppState, Shared};

// ---------------------------------------------------------------------------------------------
// The operation.

pub(super) async fn run(st: Shared, job: Job) {
    let started = Instant::now();
    let (digest, outcome) = match execute(&st, &job).await {
        Ok(digest) => (Some(digest), Ok(())),
        Err(f) => (None, Err(f)),
    };
    if let Err(f) = &outcome {
        tracing::info!(operation = %job.op_id, code = f.code(), message = f.message(), "importImage failed");
    } else {
        tracing::info!(operation = %job.op_id, "importImage succeeded");
    }
    if let Some(rest) = job.duration.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    st.imports.lock().finish(&job.op_id, digest, outcome);
}

impl Job {
    /// ACR's text for a failed import: `Operation registries-… failed. Resource /subscriptions/… <detail>`.
    fn failure(&self, status: StatusCode, code: &'static str, detail: impl std::fmt::Display) -> Failure {
        Failure::new(status, code, format!("Operation {} failed. Resource {} {detail}", self.op_id, self.registry_id))
    }

    fn copy_failure(&self, e: CopyError) -> Failure {
        let detail = match (e.side, e.status) {
            (Side::Source, Some(s)) if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN => {
                format!(
                    "Invalid message {0} {0} {1} (source registry, {2})",
                    s.canonical_reason().unwrap_or(""),
                    e.detail,
                    e.context
                )
            }
            (Side::Source, Some(StatusCode::NOT_FOUND)) => {
                format!("Image not found in the source registry: {} {}", e.context, e.detail)
            }
            (_, Some(s)) => format!("Error copying blobs: {} answered {} {}", e.context, s.as_u16(), e.detail),
            (_, None) => format!("Error copying blobs: {}: {}", e.context, e.detail),
        };
        self.failure(StatusCode::BAD_REQUEST, "InvalidParameters", detail)
    }
}

/// Whether trusted services (ACR's own import service among them) may reach the registry.
pub(super) fn trusted_services_blocked(net: &RegistryNetwork) -> bool {
    let restricted = net.public_network_access.eq_ignore_ascii_case("Disabled")
        || net
            .network_rule_set
            .get("defaultAction")
            .and_then(Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case("Deny"));
    restricted && net.network_rule_bypass_options.eq_ignore_ascii_case("None")
}

fn http_client(st: &AppState, login_server: &str) -> Result<reqwest::Client, String> {
    let Some(ca) = &st.config.ca_file else {
        return Err("the emulator has no caFile to trust the registries with".into());
    };
    let pem = std::fs::read(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
    oci_copy::client_for(login_server, &pem)
}

/// The import itself; returns the source manifest's digest.
async fn execute(st: &AppState, job: &Job) -> Result<String, Failure> {
    let cfg = &st.config;
    let internal = |e: String| job.failure(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", e);
    if trusted_services_blocked(&job.network) {
        return Err(job.failure(
            StatusCode::BAD_REQUEST,
            "InvalidParameters",
            format!(
                "Invalid message Forbidden Forbidden {{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"The registry '{}' does not allow access from trusted services: public network access is restricted and networkRuleBypassOptions is 'None'. Refer https://aka.ms/acr/firewall to grant access.\"}}]}}",
                cfg.customer_registry.name
            ),
        ));
    }

    // Which registry the image comes from; credentials only ever go to the publisher.
    let target_server = cfg.customer_registry.login_server.clone();
    let mut scopes: Vec<String> = Vec::new();
    let mut repos: Vec<&str> = Vec::new();
    for r in job.tags.iter().map(|(r, _)| r).chain(job.untagged.iter()) {
        if !repos.contains(&r.as_str()) {
            repos.push(r);
        }
    }
    for r in &repos {
        scopes.push(format!("repository:{r}:pull,push"));
    }
    let source = match &job.source {
        Source::Uri { host, username, password } => {
            let publisher = cfg.publisher_registry.as_ref().map(|p| p.login_server.to_ascii_lowercase());
            // The publisher's referrers front (`referrers.rs`) names the same registry: copy
            // from the registry itself.
            let front = cfg.listen.port(crate::listeners::PUBLISHER_REFERRERS.name).map(|p| format!("127.0.0.1:{p}"));
            let host = match (&publisher, front) {
                (Some(p), Some(f)) if f == *host => p.clone(),
                _ => host.clone(),
            };
            let host = &host;
            if publisher.as_deref() != Some(host.as_str()) {
                return Err(job.failure(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameters",
                    format!("Invalid message: the source registry '{host}' could not be reached (the emulator imports only from the publisher registry '{}').", publisher.unwrap_or_default()),
                ));
            }
            let auth = match password {
                Some(p) => Auth::Basic { username: username.clone().unwrap_or_default(), password: p.clone() },
                None => Auth::None,
            };
            Registry::new(host, http_client(st, host).map_err(internal)?, auth, Side::Source)
        }
        Source::ResourceId(id) => {
            let ours = format!(
                "/subscriptions/{}/resourceGroups/{}/providers/{REGISTRY_TYPE}/{}",
                cfg.subscription_id, cfg.resource_group, cfg.customer_registry.name
            );
            if !id.trim_end_matches('/').eq_ignore_ascii_case(&ours) {
                return Err(job.failure(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameters",
                    format!("Invalid message: the source registry '{id}' was not found."),
                ));
            }
            scopes.push(format!("repository:{}:pull", job.image.repo));
            let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let token = crate::acr_auth::service_access_token(st, IMPORT_SUBJECT, &scope_refs);
            Registry::new(
                &target_server,
                http_client(st, &target_server).map_err(internal)?,
                Auth::Bearer(token),
                Side::Source,
            )
        }
    };
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = crate::acr_auth::service_access_token(st, IMPORT_SUBJECT, &scope_refs);
    let target = Registry::new(
        &target_server,
        http_client(st, &target_server).map_err(internal)?,
        Auth::Bearer(token),
        Side::Target,
    );

    // The check and the tag write are one step per target tag: a concurrent import to one of
    // them waits here, then sees this one's tag (NoForce: conflict; Force: overwrites it).
    let locks = st.imports.lock().target_locks(&job.tags);
    let mut held = Vec::with_capacity(locks.len());
    for lock in &locks {
        held.push(lock.lock().await);
    }

    // NoForce: any existing target tag fails the operation before any copying begins.
    if !job.force {
        for (repo, tag) in &job.tags {
            if target.manifest_exists(repo, tag).await.map_err(|e| job.copy_failure(e))? {
                return Err(job.failure(
                    StatusCode::CONFLICT,
                    "TagAlreadyExists",
                    format!("{repo}:{tag} Tag {repo}:{tag} already exists in target registry."),
                ));
            }
        }
    }

    let tree =
        oci_copy::read_tree(&source, &job.image.repo, &job.image.reference()).await.map_err(|e| job.copy_failure(e))?;
    let mut cache = HashMap::new();
    for repo in repos {
        let tags: Vec<String> = job.tags.iter().filter(|(r, _)| r == repo).map(|(_, t)| t.clone()).collect();
        oci_copy::write_tree(&source, &job.image.repo, &tree, &target, repo, &tags, &mut cache)
            .await
            .map_err(|e| job.copy_failure(e))?;
    }
    drop(held);
    Ok(tree.top.digest.clone())
}
