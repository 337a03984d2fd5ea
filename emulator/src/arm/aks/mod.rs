//! AKS `runCommand` (`specs/aks-runcommand.md`): `POST .../managedClusters/{name}/runCommand`
//! answers `202` + `Location: .../commandResults/{id}` + `Retry-After`, runs the command in a
//! scratch folder holding the unpacked `context` with `helm`, `kubectl` and `curl` on its PATH,
//! and `GET .../commandResults/{id}` answers `202` with `{"id","properties":{"provisioningState":"Running"}}`
//! while it runs, then `200` with the `RunCommandResult`.
//!
//! No Kubernetes control plane runs here (see emulator/README.md, "AKS runCommand"): `helm
//! template`, `lint`, `show` and `version` are the real Helm; `helm upgrade --install`,
//! `status`, `get`, `rollback`, `uninstall` and `kubectl` are answered over the emulated cluster
//! of [`cluster`] (the shims of [`shim`], served by [`helm`] and [`kubectl`]).

mod args;
mod cluster;
mod context;
pub mod control;
mod exec;
mod helm;
mod kubectl;
mod readonly;
mod render;
mod shim;

pub use shim::shim_main;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::lro::{self, Operation, Operations, Plan};
use super::{groups, platform, resources, ArmRequest};
use crate::auth::check_aad;
use crate::config::Config;
use crate::faults::CommandFault;
use crate::http::arm_error;
use crate::journal::Note;
use crate::state::Shared;

/// Microsoft.ContainerService: 2025-10-01 is the spec version read (`specs/aks-runcommand.md`),
/// 2026-06-01 the default of `azure-mgmt-containerservice` 41.6 (what `az` 2.91 pins), 2026-08-01
/// the default of 41.8; the stable versions between, and the older ones the inventory GET took.
pub const AKS_API_VERSIONS: &[&str] = &[
    "2026-08-01",
    "2026-07-01",
    "2026-06-01",
    "2026-04-01",
    "2026-02-01",
    "2026-01-01",
    "2025-10-01",
    "2025-05-01",
    "2025-02-01",
    "2024-09-01",
    "2024-05-01",
    "2024-02-01",
    "2023-10-01",
];

/// The AKS AAD server application: the audience of `clusterToken` (the same id in every cloud).
pub const AAD_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// Knobs (`PUT /_emulator/aks`, config key `aks`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AksSettings {
    /// The real `helm` binary (scripts/setup installs it into `.tools/`).
    pub helm: Option<PathBuf>,
    /// How long after its pod template changes a Deployment becomes Available.
    pub ready_after_ms: u64,
    /// Waits (`--wait`, `kubectl wait`) on something that can never become ready give up after
    /// this long instead of their full `--timeout` (`null`: the full timeout, as Kubernetes).
    pub give_up_after_ms: Option<u64>,
    /// Request bodies above this get `413 Request Entity Too Large` (the limit is not
    /// documented; azure-cli#22870 hit it with a chart folder).
    pub max_request_bytes: usize,
    /// A command still running after this long is killed (exit 137).
    pub command_timeout_seconds: u64,
    /// Write `provisioningState` in lower case, as the spec's examples do (the service writes
    /// `Succeeded`/`Failed`).
    pub lowercase_states: bool,
    /// Keep each command's scratch folder after it ends (for debugging).
    pub keep_scratch: bool,
}

impl Default for AksSettings {
    fn default() -> Self {
        AksSettings {
            helm: None,
            ready_after_ms: 0,
            give_up_after_ms: None,
            max_request_bytes: 1024 * 1024,
            command_timeout_seconds: 1800,
            lowercase_states: false,
            keep_scratch: false,
        }
    }
}

/// One zip member as the journal and the command log show it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberDigest {
    pub name: String,
    pub size: usize,
    pub sha256: String,
}

/// One shim invocation inside a command.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    pub exit: i32,
}

/// One entry of `GET /_emulator/aks/commands`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    pub id: String,
    pub cluster: String,
    pub command: String,
    pub read_only: bool,
    pub members: Vec<MemberDigest>,
    /// Who called ARM (the bearer token's `oid`, `appid`, `tid`), and who the clusterToken names.
    pub caller: Value,
    pub api_version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `Running`, `Succeeded` or `Failed` (the provisioning state; a non-zero exit is `Succeeded`).
    pub status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub calls: Vec<Call>,
}

/// A stuck release armed through `POST /_emulator/aks/stuck`: the next install/upgrade of it
/// is killed after Helm recorded its `pending-*` revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckSpec {
    pub release: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub count: Option<u32>,
}

/// A Deployment made unavailable through `POST /_emulator/aks/unavailable`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnavailableSpec {
    pub namespace: String,
    pub deployment: String,
    #[serde(default = "default_unavailable_reason")]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

fn default_unavailable_reason() -> String {
    "CrashLoopBackOff".to_owned()
}

#[derive(Default)]
pub struct AksState {
    inner: Mutex<AksData>,
}

#[derive(Default)]
pub struct AksData {
    pub settings: AksSettings,
    ops: Operations<()>,
    pub commands: Vec<CommandRecord>,
    /// Lowercased cluster name → its emulated cluster.
    clusters: HashMap<String, cluster::Cluster>,
    pub stuck: Vec<StuckSpec>,
    pub unavailable: Vec<UnavailableSpec>,
    /// Shim token → the command it belongs to.
    running: HashMap<String, exec::Running>,
}

impl AksState {
    pub fn new(cfg: &Config) -> AksState {
        AksState { inner: Mutex::new(AksData { settings: cfg.aks.clone(), ..AksData::default() }) }
    }

    pub fn lock(&self) -> MutexGuard<'_, AksData> {
        self.inner.lock().unwrap()
    }
}

impl AksData {
    pub fn cluster(&mut self, name: &str) -> &mut cluster::Cluster {
        self.clusters.entry(name.to_ascii_lowercase()).or_insert_with(cluster::Cluster::fresh)
    }

    fn record(&mut self, id: &str) -> Option<&mut CommandRecord> {
        self.commands.iter_mut().find(|c| c.id.eq_ignore_ascii_case(id))
    }

    /// Every Deployment of `namespace` a test made unavailable, with its block.
    pub fn forced_in(&self, namespace: &str) -> Vec<(String, cluster::Block)> {
        self.unavailable
            .iter()
            .filter(|u| u.namespace == namespace)
            .filter_map(|u| self.forced(namespace, &u.deployment).map(|b| (u.deployment.clone(), b)))
            .collect()
    }

    /// The forced unavailability of a Deployment, if a test armed one.
    pub fn forced(&self, namespace: &str, deployment: &str) -> Option<cluster::Block> {
        self.unavailable.iter().find(|u| u.namespace == namespace && u.deployment == deployment).map(|u| {
            cluster::Block {
                reason: u.reason.clone(),
                message: if u.message.is_empty() {
                    format!("{} (armed by the emulator's control API)", u.reason)
                } else {
                    u.message.clone()
                },
            }
        })
    }

    fn state_word(&self, word: &'static str) -> String {
        if self.settings.lowercase_states {
            word.to_ascii_lowercase()
        } else {
            word.to_owned()
        }
    }
}

fn cluster_not_found(rg: &str, name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource '{}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            platform::AKS
        ),
    )
}

/// Checks the group and the cluster; returns the cluster's name as the inventory spells it and
/// whether its `aadProfile.managed` is set.
fn find_cluster(st: &Shared, req: &ArmRequest) -> Result<(String, bool), Response> {
    let (rg, name) = (req.param("resourceGroupName"), req.param("resourceName"));
    let arm = st.arm.lock();
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return Err(groups::not_found(rg));
    }
    let found = rg
        .eq_ignore_ascii_case(&st.config.resource_group)
        .then(|| arm.inventory.iter().find(|r| r.resource_type == platform::AKS && r.name.eq_ignore_ascii_case(name)))
        .flatten();
    match found {
        Some(r) => Ok((r.name.clone(), r.properties["aadProfile"]["managed"].as_bool().unwrap_or(false))),
        None => Err(cluster_not_found(rg, name)),
    }
}

/// `GET .../managedClusters/{resourceName}`: the inventory's cluster (`arm/platform.rs`).
pub fn get_cluster(st: &Shared, req: &ArmRequest) -> Response {
    resources::get(st, req)
}

fn bad_request(code: &str, message: impl Into<String>) -> Response {
    arm_error(StatusCode::BAD_REQUEST, code, message)
}

fn claims_view(claims: &crate::tokens::Claims) -> Value {
    json!({"oid": claims.get("oid"), "appid": claims.get("appid"), "tid": claims.get("tid")})
}

/// `POST .../managedClusters/{resourceName}/runCommand?api-version=..` with a `RunCommandRequest`.
pub fn run_command(st: &Shared, req: &ArmRequest) -> Response {
    let max = st.aks.lock().settings.max_request_bytes;
    if req.body.len() > max {
        // What ARM's front end answers (azure-cli#22870: "Operation returned an invalid status
        // 'Request Entity Too Large'"): no ARM error body.
        return (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large").into_response();
    }
    let (cluster, aad) = match find_cluster(st, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) if req.body.is_empty() => {
            return bad_request("InvalidRequestContent", "The request content is required: a RunCommandRequest.")
        }
        Ok(_) => {
            return bad_request("InvalidRequestContent", "The request content must be a RunCommandRequest object.")
        }
        Err(e) => {
            return bad_request(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        }
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let command = text("command");
    if command.trim().is_empty() {
        return bad_request("InvalidParameter", "The value of parameter command is invalid: it is required.");
    }
    let members = match text("context").trim() {
        "" => Vec::new(),
        encoded => match context::decode_base64(encoded).and_then(|zip| context::read_zip(&zip)) {
            Ok(m) => m,
            Err(e) => {
                return bad_request("InvalidParameter", format!("The value of parameter context is invalid: {e}."))
            }
        },
    };
    let token = text("clusterToken");
    if aad && token.is_empty() {
        return bad_request(
            "MissingAADClusterToken",
            "This cluster have Azure Active Directory enabled, .clusterToken is required.",
        );
    }
    // A bad token does not fail the POST: the command pod runs, and every call it makes to the
    // API server is refused (see the shims).
    let authorized = if aad {
        check_aad(st, Some(&token), &[AAD_SERVER_APP]).map_err(|f| format!("{f:?}"))
    } else {
        Ok(Default::default())
    };
    let fault = st.faults.take_command_fault("aks.runCommand", &req.segs.join("/"));
    if let Some(CommandFault::Refused { status, code }) = &fault {
        let message = match code.as_str() {
            "MissingAADClusterToken" => {
                "This cluster have Azure Active Directory enabled, .clusterToken is required.".to_owned()
            }
            other => format!("The request was refused: {other}."),
        };
        return arm_error(*status, code, message);
    }
    if let Some(CommandFault::KubernetesPerformance { status }) = &fault {
        let id = uuid::Uuid::new_v4().simple().to_string();
        return arm_error(
            *status,
            "KubernetesPerformanceError",
            format!(
                "Failed to run command due to cluster perf issue, container command-{id} in aks-command namespace did not start within 30s on your cluster, retry may helps. If issue persist, you may need to tune your cluster with better performance (larger node/paid tier)."
            ),
        );
    }

    let id = uuid::Uuid::new_v4().simple().to_string();
    let read_only = readonly::is_read_only(&command);
    let digests: Vec<MemberDigest> = members
        .iter()
        .filter(|m| !m.is_dir())
        .map(|m| MemberDigest { name: m.name.clone(), size: m.data.len(), sha256: sha256_hex(&m.data) })
        .collect();
    let mut caller = req.caller.as_ref().map(claims_view).unwrap_or(Value::Null);
    caller["clusterToken"] = match &authorized {
        Ok(c) if aad => claims_view(c),
        Ok(_) => Value::Null,
        Err(e) => json!({"invalid": e}),
    };
    let started = crate::http::now_rfc3339();
    // The command runs for real, and no result shows before one Retry-After: a command pod takes
    // seconds to start in Azure, so a client that polls at once must not see a quick command
    // done sooner than the path (`GET /_emulator/latency`) says it can be.
    let retry_after = st.arm.lock().lro.retry_after;
    let plan = Plan { polls: 0, min_duration: std::time::Duration::from_secs(u64::from(retry_after)) };
    let not_before = tokio::time::Instant::now() + plan.min_duration;
    crate::latency::record("aks", "runCommand", &cluster, plan, retry_after);
    {
        let mut aks = st.aks.lock();
        let mut op = Operation::new((), plan);
        let running = aks.state_word("Running");
        op.running_body = Some(json!({"id": id, "properties": {"provisioningState": running, "startedAt": started}}));
        aks.ops.insert(&id, op);
        aks.commands.push(CommandRecord {
            id: id.clone(),
            cluster: cluster.clone(),
            command: command.clone(),
            read_only,
            members: digests.clone(),
            caller: caller.clone(),
            api_version: req.api_version().to_owned(),
            started_at: started.clone(),
            finished_at: None,
            status: "Running".into(),
            exit_code: None,
            reason: None,
            calls: Vec::new(),
        });
    }
    tokio::spawn(exec::run(
        st.clone(),
        exec::Job {
            id: id.clone(),
            cluster: cluster.clone(),
            command: command.clone(),
            members,
            authorized: authorized.is_ok(),
            fault,
            started,
            not_before,
        },
    ));
    let location = format!(
        "{}/subscriptions/{}/resourcegroups/{}/providers/Microsoft.ContainerService/managedClusters/{}/commandResults/{id}?api-version={}",
        req.origin,
        st.config.subscription_id,
        req.param("resourceGroupName"),
        cluster,
        req.api_version()
    );
    let mut resp = lro::accepted(&location, st.arm.lock().lro.retry_after);
    resp.extensions_mut().insert(Note {
        mutating: Some(!read_only),
        detail: Some(
            json!({"commandId": id, "command": command, "members": digests, "caller": caller, "readOnly": read_only}),
        ),
    });
    resp
}

/// `GET .../managedClusters/{resourceName}/commandResults/{commandId}`.
pub fn command_result(st: &Shared, req: &ArmRequest) -> Response {
    if let Err(r) = find_cluster(st, req) {
        return r;
    }
    let id = req.param("commandId");
    let retry_after = st.arm.lock().lro.retry_after;
    let aks = st.aks.lock();
    let Some(op) = aks.ops.get(id) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Command '{id}' was not found on managed cluster '{}'.", req.param("resourceName")),
        );
    };
    let here = format!("{}/{}?api-version={}", req.origin, req.segs.join("/"), req.api_version());
    op.location_answer(&here, retry_after)
}

pub fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
