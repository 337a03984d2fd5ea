//! Every configuration key, declared once. Validation, `plan --json`'s `requiredConfig` and the
//! README's table derive from this list.

use crate::sequence::Step;

/// Who needs a key.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Every imperative run, including `run preflight`.
    Always,
    /// Only these steps.
    Steps(&'static [Step]),
    /// Nobody; it has a default or is an override.
    Optional,
}

/// One configuration key.
#[derive(Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub help: &'static str,
    pub need: Need,
    /// Other keys that satisfy the requirement when this one is absent (e.g. a URL override
    /// instead of a name). The first present one wins.
    pub alternatives: &'static [&'static str],
    pub default: Option<&'static str>,
}

const fn key(name: &'static str, need: Need, help: &'static str) -> KeySpec {
    KeySpec { name, help, need, alternatives: &[], default: None }
}

pub(super) const ARTIFACTS: &[Step] = &[Step::Artifacts];
pub(super) const DB_USERS: &[Step] = &[Step::Database, Step::Airbyte, Step::Registry, Step::Health];

/// Every configuration key this binary reads.
pub static KEYS: &[KeySpec] = &[
    key("VIBEDATA_SUBSCRIPTION_ID", Need::Always, "subscription that holds the managed resource group"),
    key("VIBEDATA_RESOURCE_GROUP", Need::Always, "the managed resource group the template deploys into"),
    KeySpec {
        alternatives: &["VIBEDATA_IDENTITY_RESOURCE_ID", "AZ_SCRIPTS_USER_ASSIGNED_IDENTITY"],
        ..key("VIBEDATA_IDENTITY_CLIENT_ID", Need::Always, "client id of vibedata-UAMI (or its resource id in VIBEDATA_IDENTITY_RESOURCE_ID; deploymentScripts set AZ_SCRIPTS_USER_ASSIGNED_IDENTITY)")
    },
    KeySpec {
        alternatives: &["VIBEDATA_STORAGE_BLOB_URL"],
        ..key("VIBEDATA_STORAGE_ACCOUNT", Need::Always, "storage account holding the ledger and artifact storage (or its blob endpoint in VIBEDATA_STORAGE_BLOB_URL)")
    },
    KeySpec {
        alternatives: &["VIBEDATA_KEY_VAULT_URL"],
        ..key("VIBEDATA_KEY_VAULT_NAME", Need::Always, "Key Vault holding the platform's secrets (or its URL in VIBEDATA_KEY_VAULT_URL)")
    },
    key("VIBEDATA_TENANT_ID", Need::Optional, "tenant of the identity; sent with the ACR token exchange"),
    key("VIBEDATA_DEPLOYMENT_ID", Need::Optional, "names this deployment in the ledger (default: the resource group)"),
    key("VIBEDATA_LOCATION", Need::Optional, "Azure region of the deployment"),
    key("VIBEDATA_ARM_ENDPOINT", Need::Optional, "override the cloud's Resource Manager endpoint (local stack)"),
    key("VIBEDATA_STORAGE_BLOB_URL", Need::Optional, "override the blob endpoint, e.g. https://127.0.0.1:18404/devstoreaccount1"),
    key("VIBEDATA_KEY_VAULT_URL", Need::Optional, "override the Key Vault URL"),
    key("VIBEDATA_IDENTITY_RESOURCE_ID", Need::Optional, "resource id of vibedata-UAMI, instead of its client id"),
    key("VIBEDATA_CA_FILE", Need::Optional, "PEM file of an extra CA to trust (the local stack's); TLS is always verified"),
    KeySpec { default: Some("true"), ..key("VIBEDATA_KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", Need::Optional,
        "false only for a vault outside the cloud's vault domain (the local stack)") },
    KeySpec { default: Some("bootstrap-ledger"), ..key("VIBEDATA_LEDGER_CONTAINER", Need::Optional, "blob container for the run ledger and locks") },
    KeySpec { default: Some("artifacts"), ..key("VIBEDATA_ARTIFACT_CONTAINER", Need::Optional, "blob container for artifact storage") },
    KeySpec { default: Some("900"), ..key("VIBEDATA_RBAC_DEADLINE_SECS", Need::Optional,
        "how long 401/403 AuthorizationFailed is treated as role-assignment propagation and retried") },
    KeySpec { default: Some("600"), ..key("VIBEDATA_LOCK_WAIT_SECS", Need::Optional, "how long a second runner waits for a phase's lock") },
    KeySpec { default: Some("60"), ..key("VIBEDATA_HTTP_TIMEOUT_SECS", Need::Optional, "per-request timeout") },
    KeySpec { default: Some("8"), ..key("VIBEDATA_MAX_RETRIES", Need::Optional, "retries of a throttled or failed request before giving up") },
    // Artifact Bootstrap.
    key("VIBEDATA_ACR_NAME", Need::Steps(&[Step::Artifacts, Step::Airbyte, Step::Ai]), "the customer container registry"),
    key("VIBEDATA_ACR_LOGIN_SERVER", Need::Optional, "override the customer registry's login server (default <name>.azurecr.io)"),
    key("VIBEDATA_ACR_AUTH_ENDPOINT", Need::Optional, "override where the ACR token exchange is sent (default https://<login server>)"),
    key("VIBEDATA_PUBLISHER_REGISTRY", Need::Steps(ARTIFACTS), "login server of the publisher registry"),
    key("VIBEDATA_PUBLISHER_CREDENTIAL_SECRET", Need::Steps(ARTIFACTS), "Key Vault secret holding the publisher pull credential"),
    key("VIBEDATA_IMAGES", Need::Steps(ARTIFACTS), "comma-separated image repositories the template expects in the release"),
    KeySpec { default: Some("vibedata/release-manifest:latest"), ..key("VIBEDATA_RELEASE_MANIFEST", Need::Optional, "repository:tag of the release manifest") },
    KeySpec { default: Some("8"), ..key("VIBEDATA_IMPORT_CONCURRENCY", Need::Optional, "imports in flight at once") },
    KeySpec { default: Some("NoForce"), ..key("VIBEDATA_IMPORT_MODE", Need::Optional, "NoForce, or Force to move tags that point elsewhere") },
    KeySpec { default: Some("600"), ..key("VIBEDATA_IMPORT_TIMEOUT_SECS", Need::Optional, "deadline of one import") },
    KeySpec { default: Some("import-image"), ..key("VIBEDATA_IMPORT_METHOD", Need::Optional, "import-image (ARM) or copy (data plane)") },
    key("VIBEDATA_RELEASE_TRUST_STORE", Need::Optional,
        "PEM text of the publisher root certificate(s) the release manifest's Notary signature must chain to (required in strict mode; a one-line value may write newlines as \\n)"),
    key("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", Need::Optional,
        "JSON array of trusted signers, each \"x509.subject: C=.., O=.., CN=..\" (the leaf subject must hold every attribute of one)"),
    KeySpec { default: Some("strict"), ..key("VIBEDATA_RELEASE_VERIFICATION", Need::Optional,
        "strict (an unverified release is refused) or audit (verify, report, go on: rehearsals only, refused without explicit endpoints)") },
    // Runbook Bootstrap.
    key("VIBEDATA_AUTOMATION_ACCOUNT", Need::Steps(&[Step::Runbooks, Step::Health]), "the Automation Account"),
    key("VIBEDATA_RUNTIME_ENVIRONMENTS", Need::Optional,
        "runtime environments to ensure, as Name=Language:Version pairs (e.g. PowerShell74=PowerShell:7.4,Python310=Python:3.10; names without dots, as Automation requires of user-created environments)"),
    KeySpec { default: Some("1048576"), ..key("VIBEDATA_RUNBOOK_MAX_BYTES", Need::Optional, "largest runbook script accepted, in bytes") },
    KeySpec { default: Some("4"), ..key("VIBEDATA_RUNBOOK_CONCURRENCY", Need::Optional, "runbooks published at once (Automation throttles per account; 429s are waited out)") },
    // AI Deployment.
    key("VIBEDATA_SEARCH_SERVICE", Need::Steps(&[Step::Ai]), "the AI Search service the release's indexes go to"),
    key("VIBEDATA_SEARCH_ENDPOINT", Need::Optional, "override the Search endpoint (default https://<service>.search.windows.net)"),
    key("VIBEDATA_FOUNDRY_ACCOUNT", Need::Steps(&[Step::Ai]), "the Foundry resource (Microsoft.CognitiveServices/accounts, kind AIServices)"),
    key("VIBEDATA_FOUNDRY_PROJECT", Need::Steps(&[Step::Ai]), "the Foundry project the agents and index assets go to"),
    key("VIBEDATA_FOUNDRY_PROJECT_ENDPOINT", Need::Optional, "override the project endpoint (default: the project's endpoints[\"AI Foundry API\"])"),
    KeySpec { default: Some("300"), ..key("VIBEDATA_AI_HOSTED_TIMEOUT_SECS", Need::Optional, "how long a hosted agent version may take to become active") },
    // DB Deployment, Registry and Health.
    key("VIBEDATA_POSTGRES_HOST", Need::Steps(DB_USERS), "Postgres flexible server host"),
    KeySpec { default: Some("5432"), ..key("VIBEDATA_POSTGRES_PORT", Need::Optional, "Postgres port") },
    key("VIBEDATA_POSTGRES_DATABASE", Need::Steps(DB_USERS), "database name"),
    key("VIBEDATA_POSTGRES_USER", Need::Steps(DB_USERS), "role to connect as"),
    key("VIBEDATA_POSTGRES_PASSWORD_SECRET", Need::Optional, "Key Vault secret with the password (else an Entra token is used)"),
    KeySpec { default: Some("verify-full"), ..key("VIBEDATA_POSTGRES_SSLMODE", Need::Optional, "require or verify-full; TLS is never off") },
    KeySpec { default: Some("120"), ..key("VIBEDATA_DB_LOCK_TIMEOUT_SECS", Need::Optional, "how long a second migration runner waits for the migration lock") },
    key("VIBEDATA_HEALTH_CANARY_SECRET", Need::Steps(&[Step::Health]), "Key Vault secret the health probe reads"),
    // Airbyte Deployment.
    key("VIBEDATA_AKS_CLUSTER", Need::Steps(&[Step::Airbyte]), "the private AKS cluster Airbyte is installed on (through ARM runCommand)"),
    key("VIBEDATA_AIRBYTE_STORAGE_ACCOUNT", Need::Steps(&[Step::Airbyte]),
        "storage account for Airbyte's logs and state: the chart only takes a connection string, made from its keys (listKeys)"),
    key("VIBEDATA_AIRBYTE_STORAGE_BLOB_URL", Need::Optional, "override that account's blob endpoint (the local stack)"),
    KeySpec { default: Some("airbyte"), ..key("VIBEDATA_AIRBYTE_CHART", Need::Optional, "the release chart that is Airbyte") },
    KeySpec { default: Some("airbyte"), ..key("VIBEDATA_AIRBYTE_DATABASE", Need::Optional, "the Postgres database Airbyte gets (created when missing)") },
    KeySpec { default: Some("airbyte"), ..key("VIBEDATA_AIRBYTE_DB_USER", Need::Optional, "the Postgres role Airbyte connects as (created when missing)") },
    KeySpec { default: Some("airbyte-db-password"), ..key("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", Need::Optional,
        "Key Vault secret holding that role's password (generated when missing)") },
    KeySpec { default: Some("480"), ..key("VIBEDATA_AIRBYTE_INSTALL_TIMEOUT_SECS", Need::Optional,
        "helm --wait --timeout of the install; the command's own deadline is two minutes longer") },
    // Registry Bootstrap and Health Bootstrap.
    KeySpec { default: Some("8"), ..key("VIBEDATA_DISCOVERY_CONCURRENCY", Need::Optional, "ARM reads in flight at once during discovery") },
    key("VIBEDATA_DNS_SERVER", Need::Optional, "host:port of the DNS server the health checks resolve with (default: the system resolver)"),
    key("VIBEDATA_ENDPOINT_PORTS", Need::Optional, "fqdn=port,... where a name is served on another port than its service's (the local stack)"),
    KeySpec { default: Some("unhealthy"), ..key("VIBEDATA_HEALTH_FAIL_ON", Need::Optional, "exit 1 when the overall health is this bad: unhealthy, degraded or never") },
    KeySpec { default: Some("10"), ..key("VIBEDATA_HEALTH_TIMEOUT_SECS", Need::Optional, "deadline of one health check") },
    KeySpec { default: Some("16"), ..key("VIBEDATA_HEALTH_CONCURRENCY", Need::Optional, "health checks in flight at once") },
    key("VIBEDATA_CONFIG_FILE", Need::Optional, "JSON file with any of these keys; the environment wins"),
];

/// The keys a step requires, for `plan --json`.
pub fn required_for(step: Step) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| match k.need {
            Need::Always => true,
            Need::Steps(steps) => steps.contains(&step),
            Need::Optional => false,
        })
        .map(|k| k.name)
        .collect()
}
