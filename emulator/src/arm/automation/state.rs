//! What the emulated Automation account holds: runbooks, runtime environments, operations.

use super::*;
use crate::arm::lro::{self, Failure, Operations, Outcome};

// ---------------------------------------------------------------------------------------------
// State.

/// Script bytes with their SHA-256 (uppercase hex, as `contentHash.value`).
#[derive(Debug, Clone)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Content {
    pub fn new(bytes: &[u8]) -> Content {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let hash = d.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Content { bytes: bytes.to_vec(), hash }
    }

    pub(super) fn link(&self) -> Value {
        json!({"contentHash": {"algorithm": "SHA256", "value": self.hash}})
    }
}

#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub runbook_type: String,
    pub runtime_environment: Option<String>,
    pub description: Option<String>,
    pub log_verbose: bool,
    pub log_progress: bool,
    pub log_activity_trace: i64,
    /// The draft's content; after a publish it equals the published content.
    pub draft: Option<Content>,
    pub in_edit: bool,
    pub draft_created: String,
    pub draft_modified: String,
    pub published: Option<Content>,
    pub created: String,
    pub modified: String,
    pub etag: String,
    /// Successful publishes (for "published exactly once" assertions).
    pub publish_count: u32,
    pub publish_failures: u32,
    pub last_published: Option<String>,
    pub last_publish_error: Option<Value>,
}

impl Runbook {
    pub fn state(&self) -> &'static str {
        if self.in_edit {
            "Edit"
        } else if self.published.is_some() {
            "Published"
        } else {
            "New"
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeEnvironment {
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub language: String,
    pub version: String,
    pub default_packages: Map<String, Value>,
    pub description: Option<String>,
    /// Seeded from the config: system-generated in Azure, so it cannot be deleted.
    pub system: bool,
}

/// What a runbook operation does when it completes.
#[derive(Debug, Clone)]
pub enum Action {
    Draft,
    Publish {
        content: Content,
        injected: Option<Failure>,
        /// `Microsoft.Automation/automationAccounts/{a}/runbooks/{n}` for a 404 message.
        resource: String,
        group: String,
    },
}

#[derive(Debug, Clone)]
pub struct RunbookOp {
    /// Lowercased runbook name.
    pub(super) runbook: String,
    pub(super) action: Action,
}

impl RunbookOp {
    pub(super) fn is_publish(&self) -> bool {
        matches!(self.action, Action::Publish { .. })
    }
}

/// One armed publish failure (`POST /_emulator/automation/fail-publish`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailPublish {
    /// A runbook name (case-insensitive) or `*` for any.
    pub runbook: String,
    /// How many publishes still fail (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub struct AutomationState {
    pub(super) inner: Mutex<AutomationData>,
}

pub struct AutomationData {
    /// Lowercased name → runbook.
    pub runbooks: BTreeMap<String, Runbook>,
    /// Lowercased name → runtime environment.
    pub runtime_environments: BTreeMap<String, RuntimeEnvironment>,
    pub(super) ops: Operations<RunbookOp>,
    pub settings: PublishSettings,
    pub fail_publish: Vec<FailPublish>,
    pub(super) last_etag: u64,
}

impl AutomationState {
    pub fn new(cfg: &Config) -> AutomationState {
        let runtime_environments = cfg
            .automation
            .runtime_environments
            .iter()
            .map(|seed| {
                (
                    seed.name.to_ascii_lowercase(),
                    RuntimeEnvironment {
                        name: seed.name.clone(),
                        location: cfg.location.clone(),
                        tags: json!({}),
                        language: seed.language.clone(),
                        version: seed.version.clone(),
                        default_packages: seed.default_packages.iter().map(|(k, v)| (k.clone(), json!(v))).collect(),
                        description: seed.description.clone(),
                        system: true,
                    },
                )
            })
            .collect();
        AutomationState {
            inner: Mutex::new(AutomationData {
                runbooks: BTreeMap::new(),
                runtime_environments,
                ops: Operations::default(),
                settings: cfg.automation.publish,
                fail_publish: Vec::new(),
                last_etag: 0,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, AutomationData> {
        self.inner.lock().unwrap()
    }
}

impl AutomationData {
    /// A new etag: .NET ticks, strictly increasing, quoted as the service sends it.
    pub(super) fn etag(&mut self) -> String {
        let ticks = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 100) as u64 + 621_355_968_000_000_000;
        self.last_etag = ticks.max(self.last_etag + 1);
        format!("\"{}\"", self.last_etag)
    }

    /// The test view (`GET /_emulator/automation/runbooks`): every runbook with its state,
    /// content hashes and publish counts. Not an observation of running publishes.
    pub fn view(&self) -> Value {
        Value::Array(
            self.runbooks
                .iter()
                .map(|(key, rb)| {
                    let publishing = self
                        .ops
                        .values()
                        .filter(|op| &op.kind.runbook == key && op.is_running() && op.kind.is_publish())
                        .count();
                    json!({
                        "name": rb.name,
                        "runbookType": rb.runbook_type,
                        "runtimeEnvironment": rb.runtime_environment,
                        "state": rb.state(),
                        "inEdit": rb.in_edit,
                        "draftContentHash": rb.draft.as_ref().map(|c| c.hash.clone()),
                        "publishedContentHash": rb.published.as_ref().map(|c| c.hash.clone()),
                        "publishCount": rb.publish_count,
                        "publishFailures": rb.publish_failures,
                        "publishing": publishing,
                        "lastPublished": rb.last_published,
                        "lastPublishError": rb.last_publish_error,
                        "created": rb.created,
                        "lastModified": rb.modified,
                    })
                })
                .collect(),
        )
    }

    /// Forgets every runbook and operation (runtime environments stay).
    pub fn clear_runbooks(&mut self) {
        self.runbooks.clear();
        self.ops.clear();
    }

    /// The failure armed for the next publish of `name`, consuming one count.
    pub(super) fn take_failure(&mut self, name: &str) -> Option<Failure> {
        let idx = self
            .fail_publish
            .iter()
            .position(|f| f.count.unwrap_or(1) > 0 && (f.runbook == "*" || f.runbook.eq_ignore_ascii_case(name)))?;
        let spec = &mut self.fail_publish[idx];
        let left = spec.count.unwrap_or(1) - 1;
        spec.count = Some(left);
        let failure = Failure::new(
            spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_REQUEST),
            spec.code.as_deref().unwrap_or("BadRequest"),
            spec.message.clone().unwrap_or_else(|| {
                format!("The runbook '{name}' could not be published: the publish failed (armed through the emulator's control API).")
            }),
        );
        if left == 0 {
            self.fail_publish.remove(idx);
        }
        Some(failure)
    }

    pub(super) fn finish_publish(
        &mut self,
        key: &str,
        content: Content,
        injected: Option<Failure>,
        resource: &str,
        group: &str,
    ) -> Result<(), Failure> {
        let etag = self.etag();
        let Some(rb) = self.runbooks.get_mut(key) else {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The Resource '{resource}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
            ));
        };
        if let Some(f) = injected {
            rb.publish_failures += 1;
            rb.last_publish_error = Some(f.error.clone());
            return Err(f);
        }
        let now = now_rfc3339();
        // A draft replaced while the publish ran stays in edit.
        if rb.draft.as_ref().is_none_or(|d| d.hash == content.hash) {
            rb.in_edit = false;
        }
        rb.published = Some(content);
        rb.publish_count += 1;
        rb.last_published = Some(now.clone());
        rb.last_publish_error = None;
        rb.modified = now;
        rb.etag = etag;
        Ok(())
    }

    /// GETs of a runbook count as observations of its running publishes (as GETs of a
    /// deployment do), so a client that only watches `state` also sees the publish end.
    pub(super) fn observe_runbook(&mut self, key: &str) {
        let ids = self.ops.ids_where(|op| op.kind.runbook == key && op.is_running() && op.kind.is_publish());
        for id in ids {
            lro::advance(self, &id);
        }
    }
}

impl lro::Owner for AutomationData {
    type Kind = RunbookOp;

    fn operations(&mut self) -> &mut Operations<RunbookOp> {
        &mut self.ops
    }

    fn complete(&mut self, op: &RunbookOp) -> Outcome {
        let result = match &op.action {
            Action::Draft => Ok(()),
            Action::Publish { content, injected, resource, group } => {
                self.finish_publish(&op.runbook, content.clone(), injected.clone(), resource, group)
            }
        };
        match result {
            Ok(()) => Outcome::Succeeded(None),
            Err(f) => Outcome::Failed(f),
        }
    }
}
