//! What each phase needs granted: the union of the permissions of the client methods its plan and
//! apply can call (LRO polls and recovery paths included), composed from the consts those
//! methods pass into the request loop (`azure::permission`). `plan --permissions` prints these;
//! `tests/permissions.rs` runs the phases with the recording on and fails on any call outside
//! its phase's set or declaring nothing.

use serde::Serialize;

use crate::azure::permission::Permission;
use crate::azure::{acr, aks, arm, automation, blob, discovery, foundry, keyvault, search, storage};
use crate::sequence::Step;

/// One permission on one resource, named by the configuration key that names the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Need {
    #[serde(flatten)]
    pub permission: Permission,
    /// The configuration key naming the resource the permission applies to (or what it is).
    pub resource: &'static str,
}

const fn on(permission: Permission, resource: &'static str) -> Need {
    Need { permission, resource }
}

const GROUP: &str = "VIBEDATA_RESOURCE_GROUP";
const LEDGER: &str = "VIBEDATA_LEDGER_CONTAINER";
const ARTIFACTS: &str = "VIBEDATA_ARTIFACT_CONTAINER";
const VAULT: &str = "VIBEDATA_KEY_VAULT_NAME";
const ACR: &str = "VIBEDATA_ACR_NAME";
const PUBLISHER: &str = "VIBEDATA_PUBLISHER_REGISTRY";
const AUTOMATION: &str = "VIBEDATA_AUTOMATION_ACCOUNT";
const AKS: &str = "VIBEDATA_AKS_CLUSTER";
const AIRBYTE_STORAGE: &str = "VIBEDATA_AIRBYTE_STORAGE_ACCOUNT";
const SEARCH: &str = "VIBEDATA_SEARCH_SERVICE";
const PROJECT: &str = "VIBEDATA_FOUNDRY_PROJECT";

/// Every run of any phase: preflight (the group, the ledger, the vault), the lock (a leased blob)
/// and the ledger record.
const SHARED: &[Need] = &[
    on(arm::GROUP_READ, GROUP),
    on(super::preflight::PERMISSIONS_READ, GROUP),
    on(blob::CONTAINER_READ, LEDGER),
    on(blob::CONTAINER_WRITE, LEDGER),
    on(blob::BLOB_READ, LEDGER),
    on(blob::BLOB_WRITE, LEDGER),
    on(keyvault::READ_METADATA, VAULT),
];

/// A phase after Artifact Bootstrap reads the release it wrote.
const STORED_RELEASE: &[Need] = &[on(blob::BLOB_READ, ARTIFACTS)];

/// The Airbyte step's command on the cluster (install, verify, probe), and the cluster read
/// that decides whether a cluster token is needed.
const RUN_COMMAND: &[Need] = &[on(aks::READ, AKS), on(aks::RUN_COMMAND, AKS), on(aks::COMMAND_RESULTS, AKS)];

const ARTIFACTS_PHASE: &[Need] = &[
    on(keyvault::GET_SECRET, VAULT),
    on(acr::CREDENTIALS, PUBLISHER),
    on(acr::READ, ACR),
    on(acr::IMPORT, ACR),
    on(acr::IMPORT_POLL, ACR),
    on(acr::PULL, ACR),
    // On a registry without the referrers API, the signature's tag-schema index is pushed.
    on(acr::PUSH, ACR),
    on(blob::CONTAINER_READ, ARTIFACTS),
    on(blob::CONTAINER_WRITE, ARTIFACTS),
    on(blob::BLOB_READ, ARTIFACTS),
    on(blob::BLOB_WRITE, ARTIFACTS),
];

const RUNBOOKS_PHASE: &[Need] = &[
    on(automation::ACCOUNT_READ, AUTOMATION),
    on(automation::RUNBOOK_READ, AUTOMATION),
    on(automation::CONTENT_READ, AUTOMATION),
    on(automation::RUNBOOK_WRITE, AUTOMATION),
    on(automation::DRAFT_CONTENT_WRITE, AUTOMATION),
    on(automation::DRAFT_POLL, AUTOMATION),
    on(automation::PUBLISH, AUTOMATION),
    on(automation::PUBLISH_POLL, AUTOMATION),
    on(automation::RUNTIME_READ, AUTOMATION),
    on(automation::RUNTIME_WRITE, AUTOMATION),
];

/// The Postgres password comes from the vault; the Entra token for Postgres needs no RBAC action.
const DATABASE_PHASE: &[Need] = &[on(keyvault::GET_SECRET, VAULT)];

/// A Helm release on the cluster (Airbyte, the AI step's hosted components): the chart from the
/// ACR, its secrets (kept in the vault, a soft-deleted name recovered), the storage key for its
/// values, and the artifact container its context is staged in.
const CLUSTER_RELEASE: &[Need] = &[
    on(keyvault::GET_SECRET, VAULT),
    on(keyvault::SET_SECRET, VAULT),
    on(keyvault::RECOVER, VAULT),
    on(storage::LIST_KEYS, AIRBYTE_STORAGE),
    on(acr::PULL, ACR),
    on(blob::CONTAINER_READ, ARTIFACTS),
    on(blob::CONTAINER_WRITE, ARTIFACTS),
];

/// The release objects the AI step writes, read back by the registry and health steps.
const RELEASE_OBJECTS_READ: &[Need] =
    &[on(search::INDEX_READ, SEARCH), on(foundry::AGENTS_READ, PROJECT), on(foundry::INDEXES_READ, PROJECT)];

/// The registry tables live in Postgres, whose password is in the vault.
const REGISTRY_PHASE: &[Need] = &[
    on(keyvault::GET_SECRET, VAULT),
    on(discovery::LIST, GROUP),
    on(discovery::READ_ANY, GROUP),
    on(discovery::ZONE_GROUPS, GROUP),
    on(discovery::NIC_READ, GROUP),
    on(discovery::APP_SETTINGS, GROUP),
    on(blob::CONTAINER_WRITE, ARTIFACTS),
    on(blob::BLOB_WRITE, ARTIFACTS),
];

/// The canary secret, the Blob listing and the day-0 report, the ACR ping, the runbooks.
const HEALTH_PHASE: &[Need] = &[
    on(keyvault::GET_SECRET, VAULT),
    on(blob::BLOB_WRITE, ARTIFACTS),
    on(acr::PULL, ACR),
    on(automation::RUNBOOK_READ, AUTOMATION),
];

const AI_PHASE: &[Need] = &[
    on(search::INDEX_WRITE, SEARCH),
    on(foundry::PROJECT_READ, PROJECT),
    on(foundry::AGENTS_WRITE, PROJECT),
    on(foundry::INDEXES_WRITE, PROJECT),
];

/// Everything a run of `step` can need, sorted, without repeats.
pub fn of(step: Step) -> Vec<Need> {
    let own: &[&[Need]] = match step {
        Step::Artifacts => &[ARTIFACTS_PHASE],
        Step::Runbooks => &[STORED_RELEASE, RUNBOOKS_PHASE],
        Step::Database => &[STORED_RELEASE, DATABASE_PHASE],
        Step::Airbyte => &[STORED_RELEASE, RUN_COMMAND, CLUSTER_RELEASE],
        Step::Registry => &[STORED_RELEASE, RUN_COMMAND, RELEASE_OBJECTS_READ, REGISTRY_PHASE],
        Step::Health => &[STORED_RELEASE, RUN_COMMAND, RELEASE_OBJECTS_READ, HEALTH_PHASE],
        Step::Ai => &[STORED_RELEASE, RUN_COMMAND, CLUSTER_RELEASE, RELEASE_OBJECTS_READ, AI_PHASE],
    };
    let mut all: Vec<Need> = SHARED.iter().chain(own.iter().flat_map(|s| s.iter())).copied().collect();
    all.sort();
    all.dedup();
    all
}
