//! A private AKS cluster through ARM `runCommand`: its API server cannot be reached from a
//! deploymentScripts container, so commands run in a pod ARM starts inside the cluster
//! (`azure-reference/specs/aks-runcommand.md`).
//!
//! `POST …/managedClusters/{name}/runCommand` answers 202 with a `Location` naming
//! `commandResults/{id}`; the result is polled there (202 while running, 200 when done).
//! Success is `provisioningState` `Succeeded` in any case **and** `exitCode` 0.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use super::arm::{Arm, LroStyle};
use super::identity::Secret;
use super::permission::Permission;
use super::pipeline::Request;
use super::AzureError;

/// The api-version used for managedClusters (stable; the SDKs send newer ones, same shapes).
pub const API_VERSION: &str = "2025-10-01";

const CLUSTER: &str = "Microsoft.ContainerService/managedClusters";

/// [`Aks::get`].
pub const READ: Permission = Permission::action("Microsoft.ContainerService/managedClusters/read", CLUSTER);
/// [`Aks::submit`].
pub const RUN_COMMAND: Permission =
    Permission::action("Microsoft.ContainerService/managedClusters/runCommand/action", CLUSTER);
/// [`Aks::wait`]: not held by the Cluster Admin role (`Azure/AKS#3462`).
pub const COMMAND_RESULTS: Permission =
    Permission::action("Microsoft.ContainerService/managedClusters/commandResults/read", CLUSTER);

/// The AKS AAD server application: the audience of `clusterToken` for an Entra-enabled
/// cluster, the same id in every cloud.
pub const AAD_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// Logs are cut at 512 kB by the service; a summary line must come before that.
pub const LOG_LIMIT: usize = 512 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    #[serde(default)]
    pub properties: ClusterProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProperties {
    #[serde(default)]
    pub aad_profile: Option<AadProfile>,
    #[serde(default)]
    pub api_server_access_profile: Option<ApiServerAccess>,
    #[serde(default)]
    pub provisioning_state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AadProfile {
    #[serde(default)]
    pub managed: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerAccess {
    #[serde(default)]
    pub enable_private_cluster: Option<bool>,
    #[serde(default)]
    pub disable_run_command: Option<bool>,
}

impl Cluster {
    /// Whether runCommand needs a `clusterToken` (an Entra-enabled cluster).
    pub fn needs_cluster_token(&self) -> bool {
        self.properties.aad_profile.as_ref().is_some_and(|a| a.managed)
    }

    pub fn run_command_disabled(&self) -> bool {
        self.properties.api_server_access_profile.as_ref().and_then(|a| a.disable_run_command).unwrap_or(false)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunCommandRequest<'a> {
    command: &'a str,
    context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_token: Option<&'a str>,
}

/// A finished command.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommandResult {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub properties: CommandProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub logs: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl CommandResult {
    /// `Succeeded` in any case, and exit code 0.
    pub fn succeeded(&self) -> bool {
        self.properties.provisioning_state.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("Succeeded"))
            && self.properties.exit_code == Some(0)
    }

    pub fn logs(&self) -> &str {
        self.properties.logs.as_deref().unwrap_or("")
    }

    /// Whether the service cut the logs at its limit.
    pub fn logs_truncated(&self) -> bool {
        self.logs().len() >= LOG_LIMIT
    }
}

/// A submitted command: where its result is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub id: String,
    pub location: Url,
}

#[derive(Clone)]
pub struct Aks {
    arm: Arm,
    id: String,
}

impl Aks {
    pub fn new(arm: Arm, subscription: &str, group: &str, cluster: &str) -> Aks {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{cluster}"
        );
        Aks { arm, id }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub async fn get(&self) -> Result<Cluster, AzureError> {
        self.arm.get(&self.id, API_VERSION, &READ).await
    }

    /// Submits `command` with `context` (zip bytes) and returns where its result is polled,
    /// without waiting, so the caller can record the id first.
    pub async fn submit(
        &self,
        command: &str,
        context: &[u8],
        cluster_token: Option<&Secret>,
    ) -> Result<Submitted, AzureError> {
        let path = format!("{}/runCommand", self.id);
        let body = RunCommandRequest {
            command,
            context: base64::engine::general_purpose::STANDARD.encode(context),
            cluster_token: cluster_token.map(Secret::expose),
        };
        // A runCommand is not idempotent as a request (each POST starts a pod); the phase makes
        // it idempotent by state, so a POST lost in flight is not repeated blindly.
        let req = Request::new(Method::POST, self.arm.url(&path, API_VERSION), &path, &RUN_COMMAND)
            .json(&body)
            .polled_with(&COMMAND_RESULTS);
        let started = self.arm.start(req).await?;
        let location = match (&started.style, &started.location) {
            (LroStyle::Location(url), _) | (_, Some(url)) => url.clone(),
            _ => {
                return Err(AzureError::Decode {
                    resource: path,
                    detail: "runCommand answered without a Location to poll".into(),
                })
            }
        };
        let id = command_id(&location).ok_or_else(|| AzureError::Decode {
            resource: path.clone(),
            detail: format!("the Location {location} names no commandResults id"),
        })?;
        Ok(Submitted { id, location })
    }

    /// Polls a submitted command to its end. A command that ends `Failed` comes back as
    /// [`AzureError::OperationFailed`] with the service's `reason` as its code.
    pub async fn wait(&self, submitted: &Submitted, deadline: Duration) -> Result<CommandResult, AzureError> {
        let resource = format!("{}/commandResults/{}", self.id, submitted.id);
        let body = self.arm.follow(submitted.location.clone(), &resource, deadline, &COMMAND_RESULTS).await?;
        let body =
            body.ok_or_else(|| AzureError::Decode { resource: resource.clone(), detail: "no command result".into() })?;
        serde_json::from_value(body).map_err(|e| AzureError::Decode { resource, detail: e.to_string() })
    }

    /// The poll URL of a command an earlier run submitted, from its id.
    pub fn result_url(&self, id: &str) -> Url {
        self.arm.url(&format!("{}/commandResults/{id}", self.id), API_VERSION)
    }
}

/// The id in `…/commandResults/{id}?api-version=…` (the segment after `commandResults`).
pub fn command_id(location: &Url) -> Option<String> {
    let mut segs = location.path_segments()?;
    segs.by_ref().find(|s| s.eq_ignore_ascii_case("commandResults"))?;
    segs.next().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_come_from_the_location_in_any_case() {
        let u = Url::parse("https://m/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/c/commandResults/0e98?api-version=2025-10-01").unwrap();
        assert_eq!(command_id(&u).as_deref(), Some("0e98"));
        let u = Url::parse("https://m/x/commandresults/abc").unwrap();
        assert_eq!(command_id(&u).as_deref(), Some("abc"));
        assert_eq!(command_id(&Url::parse("https://m/x/operations/abc").unwrap()), None);
    }

    #[test]
    fn success_needs_succeeded_in_any_case_and_exit_code_zero() {
        let r = |state: &str, code: Option<i32>| CommandResult {
            id: None,
            properties: CommandProperties {
                provisioning_state: Some(state.into()),
                exit_code: code,
                logs: None,
                reason: None,
            },
        };
        assert!(r("Succeeded", Some(0)).succeeded());
        assert!(r("succeeded", Some(0)).succeeded());
        assert!(!r("Succeeded", Some(1)).succeeded());
        assert!(!r("Succeeded", None).succeeded());
        assert!(!r("Failed", Some(0)).succeeded());
    }
}
