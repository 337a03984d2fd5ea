//! `Registries_ImportImage` (`specs/containerregistry.md` §A) into the customer registry, with
//! a real copy between the stack's two CNCF registries (`crate::oci_copy`).
//!
//! `POST .../registries/{name}/importImage` validates synchronously (ARM error bodies), then
//! answers `202` + `Location: .../locations/{location}/operationResults/operationStatuses/registries-{guid}`
//! and runs the import in its own task (imports run concurrently). The Location answers `202`
//! while the import runs, `200` with no body when it succeeded, or the failure's status with an
//! ARM error body (which the SDK pollers raise as `HttpResponseError`).
//!
//! Each operation stays running for at least `durationMs` (`PUT /_emulator/import`), the copy
//! itself happening at once; every import is logged for `GET /_emulator/imports` without its
//! password.

mod operation;
mod reference;

use operation::run;
#[cfg(test)]
use operation::trusted_services_blocked;
pub use reference::*;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::inventory::{RegistryNetwork, REGISTRY_TYPE};
use super::lro::{self, Failure, Operation, Operations, Outcome, Plan};
use super::{groups, ArmRequest};
use crate::config::{Config, ImportSettings};
use crate::http::arm_error;
use crate::state::Shared;

/// The subject of the registry tokens the import mints for itself.
const IMPORT_SUBJECT: &str = "acr-import";

/// One entry of `GET /_emulator/imports`: the parameters, never the password.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRecord {
    pub operation_id: String,
    pub started: String,
    pub registry_uri: Option<String>,
    pub resource_id: Option<String>,
    pub source_image: String,
    pub target_tags: Vec<String>,
    pub untagged_target_repositories: Vec<String>,
    pub mode: String,
    pub had_credentials: bool,
    pub api_version: String,
    /// `Running`, `Succeeded` or `Failed`.
    pub status: &'static str,
    /// The source manifest's digest, once resolved.
    pub digest: Option<String>,
    pub error: Option<Value>,
    pub ended: Option<String>,
}

#[derive(Default)]
pub struct ImportState {
    inner: Mutex<ImportData>,
}

#[derive(Default)]
pub struct ImportData {
    pub settings: ImportSettings,
    /// By operation id (`registries-{guid}`); each is finished by its import's task.
    ops: Operations<()>,
    log: Vec<ImportRecord>,
    /// One lock per target `repository:tag`, held from the NoForce existence check to the tag
    /// write, so two concurrent imports to one tag cannot both find it absent.
    targets: HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>,
}

impl ImportState {
    pub fn new(cfg: &Config) -> ImportState {
        ImportState { inner: Mutex::new(ImportData { settings: cfg.import, ..ImportData::default() }) }
    }

    pub fn lock(&self) -> MutexGuard<'_, ImportData> {
        self.inner.lock().unwrap()
    }
}

impl ImportData {
    pub fn log(&self) -> &[ImportRecord] {
        &self.log
    }

    /// Forgets the log (operations still answer their polls).
    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    fn finish(&mut self, id: &str, digest: Option<String>, outcome: Result<(), Failure>) {
        if let Some(rec) = self.log.iter_mut().find(|r| r.operation_id == id) {
            rec.digest = digest.or(rec.digest.take());
            rec.ended = Some(crate::http::now_rfc3339());
            match &outcome {
                Ok(()) => rec.status = "Succeeded",
                Err(f) => {
                    rec.status = "Failed";
                    rec.error = Some(f.error.clone());
                }
            }
        }
        if let Some(op) = self.ops.get_mut(id) {
            op.finish(match outcome {
                Ok(()) => Outcome::Succeeded(None),
                Err(f) => Outcome::Failed(f),
            });
        }
    }

    /// The locks of `targets`, in a fixed order (so two imports sharing tags cannot deadlock).
    fn target_locks(&mut self, targets: &[(String, String)]) -> Vec<Arc<tokio::sync::Mutex<()>>> {
        // Locks nobody holds or waits for are dropped, so the map stays small.
        self.targets.retain(|_, lock| Arc::strong_count(lock) > 1);
        let mut sorted: Vec<&(String, String)> = targets.iter().collect();
        sorted.sort();
        sorted.dedup();
        sorted.into_iter().map(|t| self.targets.entry(t.clone()).or_default().clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The POST.

fn invalid(message: impl Into<String>) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "InvalidParameters", message)
}

/// Where the image comes from.
#[derive(Debug, Clone)]
enum Source {
    /// `registryUri` + optional credentials; only the publisher is reachable.
    Uri { host: String, username: Option<String>, password: Option<String> },
    /// `resourceId`: only the customer registry itself exists in this emulator.
    ResourceId(String),
}

#[derive(Debug, Clone)]
struct Job {
    op_id: String,
    registry_id: String,
    source: Source,
    image: ImageRef,
    /// (repo, tag) pairs.
    tags: Vec<(String, String)>,
    untagged: Vec<String>,
    force: bool,
    network: RegistryNetwork,
    duration: Duration,
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(format!("The parameter '{key}' must be a string."))),
    }
}

fn str_list(v: &Value, key: &str) -> Result<Vec<String>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("The parameter '{key}' must be a list of strings.")))
            })
            .collect(),
        Some(_) => Err(invalid(format!("The parameter '{key}' must be a list of strings."))),
    }
}

/// `POST .../registries/{name}/importImage?api-version=..`.
pub fn start(st: &Shared, req: &ArmRequest) -> Response {
    let cfg = &st.config;
    let (rg, name) = (&req.segs[3], &req.segs[7]);
    if name.len() < 5 || name.len() > 50 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return invalid(format!(
            "The parameter registryName '{name}' is invalid: it must match '^[a-zA-Z0-9]*$' and be 5 to 50 characters long."
        ));
    }
    let network = {
        let arm = st.arm.lock();
        if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
            return groups::not_found(rg);
        }
        arm.registry_network.clone()
    };
    if !rg.eq_ignore_ascii_case(&cfg.resource_group) || !name.eq_ignore_ascii_case(&cfg.customer_registry.name) {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{REGISTRY_TYPE}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        );
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return invalid("The request body must be an ImportImageParameters object."),
        Err(_) if req.body.is_empty() => {
            return invalid("The request body is required: missing property 'parameters'.");
        }
        Err(e) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        }
    };
    let job = match parse_job(cfg, &body, network, st.imports.lock().settings) {
        Ok(job) => job,
        Err(r) => return r,
    };

    let (registry_uri, resource_id, had_credentials) = match &job.source {
        Source::Uri { host, password, .. } => (Some(host.clone()), None, password.is_some()),
        Source::ResourceId(id) => (None, Some(id.clone()), false),
    };
    let record = ImportRecord {
        operation_id: job.op_id.clone(),
        started: crate::http::now_rfc3339(),
        registry_uri,
        resource_id,
        source_image: body["source"]["sourceImage"].as_str().unwrap_or_default().to_owned(),
        target_tags: str_list(&body, "targetTags").unwrap_or_default(),
        untagged_target_repositories: job.untagged.clone(),
        mode: if job.force { "Force" } else { "NoForce" }.to_owned(),
        had_credentials,
        api_version: req.api_version().to_owned(),
        status: "Running",
        digest: None,
        error: None,
        ended: None,
    };
    // The copy runs for real; only the duration it is held to is simulated.
    let held = Plan { polls: 0, min_duration: job.duration };
    crate::latency::record("arm.import", "importImage", &record.source_image, held, st.arm.lock().lro.retry_after);
    {
        let mut imports = st.imports.lock();
        imports.ops.insert(&job.op_id, Operation::new((), Plan::default()));
        imports.log.push(record);
    }
    let location = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/locations/{}/operationResults/operationStatuses/{}?api-version={}",
        req.origin,
        cfg.subscription_id,
        cfg.resource_group,
        cfg.location,
        job.op_id,
        req.api_version()
    );
    tokio::spawn(run(st.clone(), job));
    lro::accepted(&location, st.arm.lock().lro.retry_after)
}

fn parse_job(cfg: &Config, body: &Value, network: RegistryNetwork, settings: ImportSettings) -> Result<Job, Response> {
    let Some(source) = body.get("source").filter(|s| s.is_object()) else {
        return Err(invalid("Missing property parameters.Source: the source of the image is required."));
    };
    let Some(source_image) = str_field(source, "sourceImage")? else {
        return Err(invalid("Missing property parameters.Source.SourceImage: the source image is required."));
    };
    let Some(image) = parse_image(source_image) else {
        return Err(invalid(format!(
            "The source image '{source_image}' is invalid: use 'repository', 'repository:tag' or 'repository@sha256:<digest>'."
        )));
    };
    let registry_uri = str_field(source, "registryUri")?;
    let resource_id = str_field(source, "resourceId")?;
    let credentials = match source.get("credentials") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => {
            let Some(password) = str_field(c, "password")? else {
                return Err(invalid(
                    "Missing property parameters.Source.Credentials.Password: a password is required with credentials.",
                ));
            };
            Some((str_field(c, "username")?.map(str::to_owned), password.to_owned()))
        }
        Some(_) => return Err(invalid("The parameter 'source.credentials' must be an object.")),
    };
    let source = match (registry_uri, resource_id) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Only one of parameters.Source.RegistryUri and parameters.Source.ResourceId may be specified.",
            ))
        }
        (None, None) => {
            return Err(invalid(
                "Either parameters.Source.RegistryUri or parameters.Source.ResourceId must be specified.",
            ))
        }
        (Some(uri), None) => {
            let host = uri
                .trim()
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_ascii_lowercase();
            if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                return Err(invalid(format!("The registry URI '{uri}' is invalid.")));
            }
            let (username, password) = match credentials {
                Some((u, p)) => (u, Some(p)),
                None => (None, None),
            };
            Source::Uri { host, username, password }
        }
        (None, Some(id)) => {
            let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
            let ok = segs.len() == 8
                && segs[0].eq_ignore_ascii_case("subscriptions")
                && segs[2].eq_ignore_ascii_case("resourceGroups")
                && segs[4].eq_ignore_ascii_case("providers")
                && segs[5].eq_ignore_ascii_case("Microsoft.ContainerRegistry")
                && segs[6].eq_ignore_ascii_case("registries");
            if !ok {
                return Err(invalid(format!("The source resource id '{id}' is not a container registry resource id.")));
            }
            Source::ResourceId(id.to_owned())
        }
    };
    let mut tags = Vec::new();
    for t in str_list(body, "targetTags")? {
        let parsed = parse_image(&t).filter(|r| r.digest.is_none());
        let Some(r) = parsed else {
            return Err(invalid(format!("The target tag '{t}' is invalid: use 'repository[:tag]'.")));
        };
        // When the tag is omitted, the source's is used (or 'latest').
        let tag = r.tag.or_else(|| image.tag.clone()).unwrap_or_else(|| "latest".to_owned());
        if !tags.contains(&(r.repo.clone(), tag.clone())) {
            tags.push((r.repo, tag));
        }
    }
    let mut untagged = Vec::new();
    for repo in str_list(body, "untaggedTargetRepositories")? {
        if !valid_repo(&repo) {
            return Err(invalid(format!("The target repository '{repo}' is invalid.")));
        }
        if !untagged.contains(&repo) {
            untagged.push(repo);
        }
    }
    if tags.is_empty() && untagged.is_empty() {
        return Err(invalid(
            "Missing property parameters.TargetTags: specify targetTags or untaggedTargetRepositories.",
        ));
    }
    let force = match str_field(body, "mode")? {
        None => false,
        Some(m) if m.eq_ignore_ascii_case("NoForce") => false,
        Some(m) if m.eq_ignore_ascii_case("Force") => true,
        Some(m) => {
            return Err(invalid(format!(
                "The value '{m}' of parameters.Mode is invalid: it must be 'NoForce' or 'Force'."
            )))
        }
    };
    let registry_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{REGISTRY_TYPE}/{}",
        cfg.subscription_id, cfg.resource_group, cfg.customer_registry.name
    );
    Ok(Job {
        op_id: format!("registries-{}", uuid::Uuid::new_v4()),
        registry_id,
        source,
        image,
        tags,
        untagged,
        force,
        network,
        duration: Duration::from_millis(settings.duration_ms),
    })
}

// ---------------------------------------------------------------------------------------------
// The poll.

/// `GET .../providers/Microsoft.ContainerRegistry/locations/{loc}/operationResults[/operationStatuses]/registries-{guid}`.
pub fn poll(st: &Shared, req: &ArmRequest) -> Response {
    let id = req.param("operationId");
    let retry_after = st.arm.lock().lro.retry_after;
    let imports = st.imports.lock();
    let Some(op) = imports.ops.get(id) else {
        return lro::not_found(id);
    };
    let here = format!("{}/{}?api-version={}", req.origin, req.segs.join("/"), req.api_version());
    op.location_answer(&here, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_image("vibedata/api").unwrap(),
            ImageRef { repo: "vibedata/api".into(), tag: None, digest: None }
        );
        assert_eq!(parse_image("vibedata/api:2026.11.0").unwrap().tag.as_deref(), Some("2026.11.0"));
        let r = parse_image(&format!("vibedata/api@{d}")).unwrap();
        assert_eq!((r.repo.as_str(), r.digest.as_deref()), ("vibedata/api", Some(d.as_str())));
        assert_eq!(r.reference(), d);
        assert_eq!(parse_image("hello-world").unwrap().reference(), "latest");
        assert!(parse_image("a__b/c-d.e").is_some());
        for bad in [
            "",
            "Upper/case",
            "repo:",
            "repo:bad/tag",
            "repo@sha256:abc",
            "repo@md5:0",
            "127.0.0.1:5000/repo",
            "/repo",
            "repo/",
            "a..b",
            "-a",
            "a:tag:tag",
        ] {
            assert!(parse_image(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn trusted_services() {
        let mut net = RegistryNetwork::default();
        assert!(!trusted_services_blocked(&net));
        net.network_rule_bypass_options = "None".into();
        assert!(!trusted_services_blocked(&net));
        net.public_network_access = "Disabled".into();
        assert!(trusted_services_blocked(&net));
        net.public_network_access = "Enabled".into();
        net.network_rule_set = serde_json::json!({"defaultAction": "Deny"});
        assert!(trusted_services_blocked(&net));
        net.network_rule_bypass_options = "AzureServices".into();
        assert!(!trusted_services_blocked(&net));
    }
}
