//! The Automation Account's runbooks and runtime environments, over ARM (api-version 2024-10-23,
//! the first stable version with `runtimeEnvironment`; shapes in azure-reference/specs/automation.md).
//!
//! Content goes in through the draft (PUT with `draft: {}`, PUT `draft/content`, POST `publish`)
//! rather than `publishContentLink`, which needs a URL the Automation service can fetch — a
//! public or SAS link we do not want to mint for scripts held in a private artifact store.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::arm::Arm;
use super::permission::Permission;
use super::pipeline::Request;
use super::AzureError;

pub const API_VERSION: &str = "2024-10-23";

const ACCOUNT: &str = "Microsoft.Automation/automationAccounts";

/// [`Automation::account`].
pub const ACCOUNT_READ: Permission = Permission::action("Microsoft.Automation/automationAccounts/read", ACCOUNT);
/// [`Automation::runbooks`], [`Automation::runbook`].
pub const RUNBOOK_READ: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/read", ACCOUNT);
/// [`Automation::published_content`] (`Runbook_GetContent`).
pub const CONTENT_READ: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/content/read", ACCOUNT).unconfirmed();
/// [`Automation::put_draft_runbook`].
pub const RUNBOOK_WRITE: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/write", ACCOUNT);
/// [`Automation::put_draft_content`].
pub const DRAFT_CONTENT_WRITE: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/draft/content/write", ACCOUNT);
/// Polling the draft-content operation.
pub const DRAFT_POLL: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/draft/operationResults/read", ACCOUNT);
/// [`Automation::publish`].
pub const PUBLISH: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/publish/action", ACCOUNT);
/// Polling the publish operation.
pub const PUBLISH_POLL: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runbooks/operationResults/read", ACCOUNT);
/// [`Automation::runtime_environment`]: not listed in Microsoft's operations page (2026-02).
pub const RUNTIME_READ: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runtimeEnvironments/read", ACCOUNT).unconfirmed();
/// [`Automation::create_runtime_environment`]: not listed either; `automationAccounts/*` grants it.
pub const RUNTIME_WRITE: Permission =
    Permission::action("Microsoft.Automation/automationAccounts/runtimeEnvironments/write", ACCOUNT).unconfirmed();

/// The media type the spec declares for draft content. The Az SDKs send it for Python runbooks
/// too, so we do the same.
const CONTENT_TYPE: &str = "text/powershell";

/// Published scripts are small; an answer bigger than this is not a runbook's content.
const MAX_CONTENT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Runbook {
    pub name: String,
    #[serde(default)]
    pub properties: RunbookProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunbookProperties {
    #[serde(default)]
    pub runbook_type: Option<String>,
    #[serde(default)]
    pub runtime_environment: Option<String>,
    /// `New`, `Edit` or `Published`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub publish_content_link: Option<ContentLink>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentLink {
    #[serde(default)]
    pub content_hash: Option<ContentHash>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentHash {
    pub algorithm: String,
    pub value: String,
}

impl Runbook {
    pub fn state(&self) -> &str {
        self.properties.state.as_deref().unwrap_or("")
    }

    pub fn is_published(&self) -> bool {
        self.state().eq_ignore_ascii_case("Published")
    }

    /// `sha256:<hex>` from `publishContentLink.contentHash`, when the service gives a SHA256 one.
    pub fn published_hash(&self) -> Option<String> {
        let h = self.properties.publish_content_link.as_ref()?.content_hash.as_ref()?;
        h.algorithm.eq_ignore_ascii_case("SHA256").then(|| format!("sha256:{}", h.value.to_ascii_lowercase()))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeEnvironment {
    pub name: String,
    #[serde(default)]
    pub properties: RuntimeEnvironmentProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeEnvironmentProperties {
    #[serde(default)]
    pub runtime: Option<Runtime>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Runtime {
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub version: String,
}

impl RuntimeEnvironment {
    pub fn runtime(&self) -> Runtime {
        self.properties.runtime.clone().unwrap_or_default()
    }
}

/// What a runbook is created or reconfigured with.
#[derive(Debug, Clone)]
pub struct RunbookSpec<'a> {
    pub runbook_type: &'a str,
    pub runtime_environment: &'a str,
    pub location: Option<&'a str>,
    pub description: &'a str,
}

#[derive(Clone)]
pub struct Automation {
    arm: Arm,
    id: String,
}

impl Automation {
    pub fn new(arm: Arm, subscription: &str, resource_group: &str, account: &str) -> Automation {
        let id = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Automation/automationAccounts/{account}");
        Automation { arm, id }
    }

    /// The account's ARM id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn runbook_id(&self, name: &str) -> String {
        format!("{}/runbooks/{name}", self.id)
    }

    fn runtime_environment_id(&self, name: &str) -> String {
        format!("{}/runtimeEnvironments/{name}", self.id)
    }

    pub async fn account(&self) -> Result<Account, AzureError> {
        self.arm.get(&self.id, API_VERSION, &ACCOUNT_READ).await
    }

    /// Every runbook in the account, following `nextLink`.
    pub async fn runbooks(&self) -> Result<Vec<Runbook>, AzureError> {
        self.arm.list(&format!("{}/runbooks", self.id), API_VERSION, &RUNBOOK_READ).await
    }

    pub async fn runbook(&self, name: &str) -> Result<Option<Runbook>, AzureError> {
        self.arm.get_opt(&self.runbook_id(name), API_VERSION, &RUNBOOK_READ).await
    }

    /// The published script (`Runbook_GetContent`), or `None` when nothing is published.
    pub async fn published_content(&self, name: &str) -> Result<Option<Bytes>, AzureError> {
        let path = format!("{}/content", self.runbook_id(name));
        let req = Request::new(Method::GET, self.arm.url(&path, API_VERSION), &path, &CONTENT_READ);
        let resp = match self.arm.send(req).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes =
            resp.bytes().await.map_err(|e| AzureError::Decode { resource: path.clone(), detail: e.to_string() })?;
        if bytes.len() > MAX_CONTENT_BYTES {
            return Err(AzureError::Decode { resource: path, detail: format!("content of {} bytes", bytes.len()) });
        }
        Ok(Some(bytes))
    }

    /// Creates or replaces the runbook as an empty draft (`state: New`) of the given type and
    /// runtime environment (`Runbook_CreateOrUpdate`, synchronous).
    pub async fn put_draft_runbook(&self, name: &str, spec: &RunbookSpec<'_>) -> Result<(), AzureError> {
        let id = self.runbook_id(name);
        let mut body = json!({
            "name": name,
            "properties": {
                "runbookType": spec.runbook_type,
                "runtimeEnvironment": spec.runtime_environment,
                "description": spec.description,
                "logProgress": false,
                "logVerbose": false,
                "draft": {},
            },
        });
        if let Some(location) = spec.location {
            body["location"] = location.into();
        }
        let req = Request::new(Method::PUT, self.arm.url(&id, API_VERSION), &id, &RUNBOOK_WRITE)
            .json(&body)
            .polled_with(&RUNBOOK_READ);
        self.arm.call(req, Duration::from_secs(60)).await.map(|_| ())
    }

    /// Replaces the draft's script (`RunbookDraft_ReplaceContent`: 200, or 202 and a
    /// long-running operation, waited for within `deadline`).
    pub async fn put_draft_content(&self, name: &str, script: Bytes, deadline: Duration) -> Result<(), AzureError> {
        let path = format!("{}/draft/content", self.runbook_id(name));
        let req =
            Request::new(Method::PUT, self.arm.url(&path, API_VERSION), self.runbook_id(name), &DRAFT_CONTENT_WRITE)
                .body(script, CONTENT_TYPE)
                .polled_with(&DRAFT_POLL);
        self.arm.call(req, deadline).await.map(|_| ())
    }

    /// Publishes the draft (`Runbook_Publish`: 202 and `Location`, polled until done within
    /// `deadline`). A failed operation is [`AzureError::OperationFailed`] with its code.
    ///
    /// Not marked idempotent: after an ambiguous transport failure the caller checks the state
    /// rather than publishing blindly again.
    pub async fn publish(&self, name: &str, deadline: Duration) -> Result<(), AzureError> {
        let path = format!("{}/publish", self.runbook_id(name));
        let req = Request::new(Method::POST, self.arm.url(&path, API_VERSION), self.runbook_id(name), &PUBLISH)
            .polled_with(&PUBLISH_POLL);
        self.arm.call(req, deadline).await.map(|_| ())
    }

    pub async fn runtime_environment(&self, name: &str) -> Result<Option<RuntimeEnvironment>, AzureError> {
        self.arm.get_opt(&self.runtime_environment_id(name), API_VERSION, &RUNTIME_READ).await
    }

    /// Creates a runtime environment (synchronous PUT). Language and version are immutable once
    /// it exists, so this is only called for missing ones.
    pub async fn create_runtime_environment(
        &self,
        name: &str,
        runtime: &Runtime,
        location: Option<&str>,
    ) -> Result<(), AzureError> {
        let id = self.runtime_environment_id(name);
        let mut body = json!({"name": name, "properties": {"runtime": {"language": runtime.language, "version": runtime.version}}});
        if let Some(location) = location {
            body["location"] = location.into();
        }
        let req = Request::new(Method::PUT, self.arm.url(&id, API_VERSION), &id, &RUNTIME_WRITE)
            .json(&body)
            .polled_with(&RUNTIME_READ);
        self.arm.call(req, Duration::from_secs(60)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbook_state_and_hash_follow_the_spec_shape() {
        let rb: Runbook = serde_json::from_value(json!({
            "name": "Rotate-Keys",
            "properties": {"runbookType": "PowerShell", "runtimeEnvironment": "PowerShell-7.4", "state": "Published",
                           "publishContentLink": {"contentHash": {"algorithm": "SHA256", "value": "ABCDEF"}}}
        }))
        .unwrap();
        assert!(rb.is_published());
        assert_eq!(rb.published_hash().as_deref(), Some("sha256:abcdef"));
        let bare: Runbook = serde_json::from_value(json!({"name": "x", "properties": {"state": "New"}})).unwrap();
        assert!(!bare.is_published());
        assert_eq!(bare.published_hash(), None);
        let md5: Runbook = serde_json::from_value(json!({"name": "x", "properties": {"publishContentLink": {"contentHash": {"algorithm": "MD5", "value": "1"}}}})).unwrap();
        assert_eq!(md5.published_hash(), None, "only a SHA256 hash is comparable with ours");
    }

    #[test]
    fn runtime_environment_shape() {
        let env: RuntimeEnvironment = serde_json::from_value(
            json!({"name": "PowerShell-7.4", "properties": {"runtime": {"language": "PowerShell", "version": "7.4"}}}),
        )
        .unwrap();
        assert_eq!(env.runtime(), Runtime { language: "PowerShell".into(), version: "7.4".into() });
    }
}
