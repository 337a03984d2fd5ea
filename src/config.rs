//! Typed configuration, validated before anything is mutated.
//!
//! Values come from `VIBEDATA_*` environment variables (what `deploymentScripts.environmentVariables`
//! and Function app settings provide) and optionally a JSON file whose keys are the same names.
//! The environment wins over the file. Every key is declared once in [`KEYS`]; the table drives
//! validation, `plan --json`'s `requiredConfig` and `--help`, so they cannot drift apart.
//!
//! Validation collects *every* problem before failing, so a template author fixes them all in one
//! round trip instead of one deployment per missing key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::cloud::Cloud;
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

const ARTIFACTS: &[Step] = &[Step::Artifacts];
const DB_USERS: &[Step] = &[Step::Database, Step::Registry, Step::Health];

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
    key("VIBEDATA_ACR_NAME", Need::Steps(ARTIFACTS), "the customer container registry"),
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
    // Runbook Bootstrap.
    key("VIBEDATA_AUTOMATION_ACCOUNT", Need::Steps(&[Step::Runbooks, Step::Health]), "the Automation Account"),
    key("VIBEDATA_RUNTIME_ENVIRONMENTS", Need::Optional,
        "runtime environments to ensure, as Name=Language:Version pairs (e.g. PowerShell-7.4=PowerShell:7.4,Python-3.10=Python:3.10)"),
    KeySpec { default: Some("1048576"), ..key("VIBEDATA_RUNBOOK_MAX_BYTES", Need::Optional, "largest runbook script accepted, in bytes") },
    // DB Deployment, Registry and Health.
    key("VIBEDATA_POSTGRES_HOST", Need::Steps(DB_USERS), "Postgres flexible server host"),
    KeySpec { default: Some("5432"), ..key("VIBEDATA_POSTGRES_PORT", Need::Optional, "Postgres port") },
    key("VIBEDATA_POSTGRES_DATABASE", Need::Steps(DB_USERS), "database name"),
    key("VIBEDATA_POSTGRES_USER", Need::Steps(DB_USERS), "role to connect as"),
    key("VIBEDATA_POSTGRES_PASSWORD_SECRET", Need::Optional, "Key Vault secret with the password (else an Entra token is used)"),
    KeySpec { default: Some("verify-full"), ..key("VIBEDATA_POSTGRES_SSLMODE", Need::Optional, "require or verify-full; TLS is never off") },
    KeySpec { default: Some("120"), ..key("VIBEDATA_DB_LOCK_TIMEOUT_SECS", Need::Optional, "how long a second migration runner waits for the migration lock") },
    key("VIBEDATA_HEALTH_CANARY_SECRET", Need::Steps(&[Step::Health]), "Key Vault secret the health probe reads"),
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

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// The configuration is incomplete or invalid. Lists every problem at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.iter().map(|p| format!("{} {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// Raw key/value pairs, environment over file.
#[derive(Debug, Clone, Default)]
pub struct Source {
    values: BTreeMap<String, String>,
}

impl Source {
    /// Reads the process environment and, when `VIBEDATA_CONFIG_FILE` or `file` names one, a JSON file.
    pub fn load(file: Option<&Path>) -> Result<Source, ConfigError> {
        Self::from_env(std::env::vars(), file)
    }

    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
        file: Option<&Path>,
    ) -> Result<Source, ConfigError> {
        let env: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("VIBEDATA_") || k.starts_with("AZ_SCRIPTS_"))
            .collect();
        let file = file.map(Path::to_path_buf).or_else(|| env.get("VIBEDATA_CONFIG_FILE").map(PathBuf::from));
        let mut values = match file {
            Some(path) => read_json_file(&path)?,
            None => BTreeMap::new(),
        };
        values.extend(env.into_iter().filter(|(_, v)| !v.is_empty()));
        Ok(Source { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

fn read_json_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let fail = |message: String| ConfigError {
        problems: vec![Problem { key: "VIBEDATA_CONFIG_FILE".into(), message }],
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("{} is not JSON: {e}", path.display())))?;
    let obj = doc.as_object().ok_or_else(|| fail(format!("{} must hold a JSON object", path.display())))?;
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for (k, v) in obj {
        if !KEYS.iter().any(|spec| spec.name == k) {
            unknown.push(k.clone());
            continue;
        }
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.insert(k.clone(), s);
    }
    if !unknown.is_empty() {
        return Err(fail(format!("{} has unknown keys: {}", path.display(), unknown.join(", "))));
    }
    Ok(out)
}

/// How `importImage` treats a target tag that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    NoForce,
    Force,
}

/// How images reach the customer registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMethod {
    /// ARM `importImage`: the ACR service copies; only ARM must be reachable from here.
    ImportImage,
    /// This binary copies over the registries' data planes.
    Copy,
}

/// Configuration of the Artifact Bootstrap step.
#[derive(Debug, Clone)]
pub struct ArtifactsConfig {
    pub acr_name: String,
    pub acr_login_server: String,
    pub acr_auth_endpoint: Url,
    pub publisher_registry: String,
    pub publisher_credential_secret: String,
    pub images: Vec<String>,
    pub manifest_repository: String,
    pub manifest_tag: String,
    pub concurrency: usize,
    pub mode: ImportMode,
    pub import_timeout: Duration,
    pub method: ImportMethod,
}

/// A runtime environment the Runbook Bootstrap ensures exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEnvironment {
    pub name: String,
    pub language: String,
    pub version: String,
}

/// Configuration of the Runbook Bootstrap step.
#[derive(Debug, Clone)]
pub struct RunbooksConfig {
    pub automation_account: String,
    /// Runtime environments named by configuration; the manifest names the one each runbook uses.
    pub runtime_environments: Vec<RuntimeEnvironment>,
    pub max_script_bytes: u64,
}

/// How the database phase authenticates to Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbAuth {
    /// The password is this Key Vault secret.
    KeyVaultSecret(String),
    /// An Entra access token for the cloud's `ossrdbms-aad` audience is the password.
    Entra,
}

/// Configuration of the steps that use Postgres (database, registry, health).
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub auth: DbAuth,
    /// `verify-full` (default) or `require`.
    pub verify_full: bool,
    pub lock_timeout: Duration,
}

/// Everything a run needs, typed and validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub cloud: Cloud,
    pub arm_endpoint: Url,
    pub blob_url: Url,
    pub key_vault_url: Url,
    pub verify_challenge_resource: bool,
    pub ca_file: Option<PathBuf>,
    pub subscription_id: String,
    pub resource_group: String,
    pub tenant_id: Option<String>,
    pub location: Option<String>,
    pub deployment_id: String,
    pub identity: IdentityRef,
    pub ledger_container: String,
    pub artifact_container: String,
    pub rbac_deadline: Duration,
    pub lock_wait: Duration,
    pub http_timeout: Duration,
    pub max_retries: u32,
    pub artifacts: Option<ArtifactsConfig>,
    pub runbooks: Option<RunbooksConfig>,
    pub database: Option<DatabaseConfig>,
}

/// Which user-assigned identity to ask tokens for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRef {
    ClientId(String),
    ResourceId(String),
}

impl Config {
    /// Validates `source` for running `steps` (an empty slice means "the shared keys only", as
    /// for `run preflight` of nothing in particular). Collects every problem before failing.
    pub fn validate(source: &Source, steps: &[Step]) -> Result<Config, ConfigError> {
        let mut v = Validator { source, problems: Vec::new() };
        for spec in KEYS {
            let needed = match spec.need {
                Need::Always => true,
                Need::Steps(s) => s.iter().any(|x| steps.contains(x)),
                Need::Optional => false,
            };
            if needed && v.raw(spec.name).is_none() && spec.alternatives.iter().all(|a| v.raw(a).is_none()) {
                let alt = if spec.alternatives.is_empty() {
                    String::new()
                } else {
                    format!(" (or {})", spec.alternatives.join(" or "))
                };
                v.problem(spec.name, format!("is missing{alt}: {}", spec.help));
            }
        }

        let cloud = match source.get("AZ_SCRIPTS_AZURE_ENVIRONMENT") {
            None => Cloud::AzureCloud,
            Some(name) => Cloud::parse(name).unwrap_or_else(|| {
                v.problem("AZ_SCRIPTS_AZURE_ENVIRONMENT", format!("is {name:?}; expected AzureCloud, AzureUSGovernment or AzureChinaCloud"));
                Cloud::AzureCloud
            }),
        };
        let arm_endpoint = v.url("VIBEDATA_ARM_ENDPOINT").unwrap_or_else(|| cloud.arm_endpoint());
        let blob_url = match v.url("VIBEDATA_STORAGE_BLOB_URL") {
            Some(u) => Some(u),
            None => v.name("VIBEDATA_STORAGE_ACCOUNT", 3, 24, |c| c.is_ascii_lowercase() || c.is_ascii_digit())
                .and_then(|n| Url::parse(&format!("https://{n}.blob.{}", cloud.storage_suffix())).ok()),
        };
        let key_vault_url = match v.url("VIBEDATA_KEY_VAULT_URL") {
            Some(u) => Some(u),
            None => v.name("VIBEDATA_KEY_VAULT_NAME", 3, 24, |c| c.is_ascii_alphanumeric() || c == '-')
                .and_then(|n| Url::parse(&format!("https://{n}.{}", cloud.vault_suffix())).ok()),
        };
        let identity = if let Some(id) = v.raw("VIBEDATA_IDENTITY_CLIENT_ID") {
            v.uuid("VIBEDATA_IDENTITY_CLIENT_ID", id);
            Some(IdentityRef::ClientId(id.to_owned()))
        } else {
            ["VIBEDATA_IDENTITY_RESOURCE_ID", "AZ_SCRIPTS_USER_ASSIGNED_IDENTITY"].iter().find_map(|k| {
                v.raw(k).map(|id| {
                    if !id.to_ascii_lowercase().contains("/providers/microsoft.managedidentity/userassignedidentities/") {
                        v.problem(k, format!("is {id:?}, which is not a user-assigned identity resource id"));
                    }
                    IdentityRef::ResourceId(id.to_owned())
                })
            })
        };
        if let Some(sub) = v.raw("VIBEDATA_SUBSCRIPTION_ID") {
            v.uuid("VIBEDATA_SUBSCRIPTION_ID", sub);
        }
        if let Some(t) = v.raw("VIBEDATA_TENANT_ID") {
            v.uuid("VIBEDATA_TENANT_ID", t);
        }
        let ca_file = v.raw("VIBEDATA_CA_FILE").map(PathBuf::from);
        if let Some(path) = &ca_file {
            match std::fs::read(path) {
                Ok(pem) if reqwest::Certificate::from_pem_bundle(&pem).map(|c| !c.is_empty()).unwrap_or(false) => {}
                Ok(_) => v.problem("VIBEDATA_CA_FILE", format!("{} holds no PEM certificate", path.display())),
                Err(e) => v.problem("VIBEDATA_CA_FILE", format!("cannot read {}: {e}", path.display())),
            }
        }
        let verify_challenge_resource = v.boolean("VIBEDATA_KEY_VAULT_VERIFY_CHALLENGE_RESOURCE");
        let resource_group = v.raw("VIBEDATA_RESOURCE_GROUP").unwrap_or_default().to_owned();
        let deployment_id = v.raw("VIBEDATA_DEPLOYMENT_ID").unwrap_or(&resource_group).to_owned();
        let ledger_container = v.container("VIBEDATA_LEDGER_CONTAINER");
        let artifact_container = v.container("VIBEDATA_ARTIFACT_CONTAINER");
        let rbac_deadline = Duration::from_secs(v.number("VIBEDATA_RBAC_DEADLINE_SECS", 0, 86_400));
        let lock_wait = Duration::from_secs(v.number("VIBEDATA_LOCK_WAIT_SECS", 0, 86_400));
        let http_timeout = Duration::from_secs(v.number("VIBEDATA_HTTP_TIMEOUT_SECS", 1, 3_600));
        let max_retries = v.number("VIBEDATA_MAX_RETRIES", 0, 100) as u32;

        let artifacts = if steps.contains(&Step::Artifacts) {
            Some(v.artifacts(&cloud))
        } else {
            None
        };

        let runbooks = if steps.contains(&Step::Runbooks) { Some(v.runbooks()) } else { None };
        let database = if steps.iter().any(|s| DB_USERS.contains(s)) { Some(v.database()) } else { None };

        if !v.problems.is_empty() {
            return Err(ConfigError { problems: v.problems });
        }
        Ok(Config {
            cloud,
            arm_endpoint,
            blob_url: blob_url.expect("validated"),
            key_vault_url: key_vault_url.expect("validated"),
            verify_challenge_resource,
            ca_file,
            subscription_id: v.raw("VIBEDATA_SUBSCRIPTION_ID").unwrap_or_default().to_owned(),
            resource_group,
            tenant_id: v.raw("VIBEDATA_TENANT_ID").map(str::to_owned),
            location: v.raw("VIBEDATA_LOCATION").map(str::to_owned),
            deployment_id,
            identity: identity.expect("validated"),
            ledger_container,
            artifact_container,
            rbac_deadline,
            lock_wait,
            http_timeout,
            max_retries,
            artifacts,
            runbooks,
            database,
        })
    }

    /// The resource group's ARM id, the scope most RBAC messages name.
    pub fn resource_group_id(&self) -> String {
        format!("/subscriptions/{}/resourceGroups/{}", self.subscription_id, self.resource_group)
    }
}

struct Validator<'a> {
    source: &'a Source,
    problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.source.get(name).map(str::trim).filter(|s| !s.is_empty())
    }

    fn or_default(&self, name: &str) -> String {
        self.raw(name)
            .map(str::to_owned)
            .or_else(|| KEYS.iter().find(|k| k.name == name).and_then(|k| k.default).map(str::to_owned))
            .unwrap_or_default()
    }

    fn problem(&mut self, key: &str, message: String) {
        self.problems.push(Problem { key: key.to_owned(), message });
    }

    fn url(&mut self, name: &str) -> Option<Url> {
        let raw = self.raw(name)?.trim_end_matches('/').to_owned();
        match Url::parse(&raw) {
            Ok(u) if u.scheme() == "https" => Some(u),
            Ok(_) => {
                self.problem(name, format!("is {raw:?}; only https endpoints are allowed"));
                None
            }
            Err(e) => {
                self.problem(name, format!("is {raw:?}, not a URL: {e}"));
                None
            }
        }
    }

    fn name(&mut self, key: &str, min: usize, max: usize, ok: impl Fn(char) -> bool) -> Option<String> {
        let n = self.raw(key)?.to_owned();
        if n.len() < min || n.len() > max || !n.chars().all(ok) {
            self.problem(key, format!("is {n:?}, not a valid name ({min}-{max} characters)"));
            return None;
        }
        Some(n)
    }

    fn uuid(&mut self, key: &str, value: &str) {
        if uuid::Uuid::parse_str(value).is_err() {
            self.problem(key, format!("is {value:?}, not a GUID"));
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        match self.or_default(key).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                self.problem(key, format!("is {other:?}; expected true or false"));
                true
            }
        }
    }

    fn number(&mut self, key: &str, min: u64, max: u64) -> u64 {
        let raw = self.or_default(key);
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(key, format!("is {raw:?}; expected a whole number from {min} to {max}"));
                min
            }
        }
    }

    fn container(&mut self, key: &str) -> String {
        let c = self.or_default(key);
        let valid = (3..=63).contains(&c.len())
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            && !c.starts_with('-')
            && !c.contains("--");
        if !valid {
            self.problem(key, format!("is {c:?}, not a valid blob container name"));
        }
        c
    }

    fn runbooks(&mut self) -> RunbooksConfig {
        let automation_account = self.raw("VIBEDATA_AUTOMATION_ACCOUNT").unwrap_or_default().to_owned();
        let mut runtime_environments = Vec::new();
        for item in self.raw("VIBEDATA_RUNTIME_ENVIRONMENTS").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=').and_then(|(n, lv)| lv.split_once(':').map(|(l, v)| (n, l, v))) {
                Some((n, l, v)) if crate::release::valid_runbook_name(n) && !l.is_empty() && !v.is_empty() => {
                    runtime_environments.push(RuntimeEnvironment { name: n.to_owned(), language: l.to_owned(), version: v.to_owned() })
                }
                _ => self.problem("VIBEDATA_RUNTIME_ENVIRONMENTS", format!("has {item:?}; expected Name=Language:Version")),
            }
        }
        let max_script_bytes = self.number("VIBEDATA_RUNBOOK_MAX_BYTES", 1, 64 * 1024 * 1024);
        RunbooksConfig { automation_account, runtime_environments, max_script_bytes }
    }

    fn database(&mut self) -> DatabaseConfig {
        let port = self.number("VIBEDATA_POSTGRES_PORT", 1, 65_535) as u16;
        let auth = match self.raw("VIBEDATA_POSTGRES_PASSWORD_SECRET") {
            Some(name) => DbAuth::KeyVaultSecret(name.to_owned()),
            None => DbAuth::Entra,
        };
        let verify_full = match self.or_default("VIBEDATA_POSTGRES_SSLMODE").as_str() {
            "verify-full" => true,
            "require" => false,
            other => {
                self.problem("VIBEDATA_POSTGRES_SSLMODE", format!("is {other:?}; expected verify-full or require (TLS cannot be turned off)"));
                true
            }
        };
        DatabaseConfig {
            host: self.raw("VIBEDATA_POSTGRES_HOST").unwrap_or_default().to_owned(),
            port,
            database: self.raw("VIBEDATA_POSTGRES_DATABASE").unwrap_or_default().to_owned(),
            user: self.raw("VIBEDATA_POSTGRES_USER").unwrap_or_default().to_owned(),
            auth,
            verify_full,
            lock_timeout: Duration::from_secs(self.number("VIBEDATA_DB_LOCK_TIMEOUT_SECS", 1, 3_600)),
        }
    }

    fn artifacts(&mut self, cloud: &Cloud) -> ArtifactsConfig {
        let acr_name = self.name("VIBEDATA_ACR_NAME", 5, 50, |c| c.is_ascii_alphanumeric()).unwrap_or_default();
        let acr_login_server = self
            .raw("VIBEDATA_ACR_LOGIN_SERVER")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}.{}", acr_name.to_ascii_lowercase(), cloud.acr_suffix()));
        let acr_auth_endpoint = self
            .url("VIBEDATA_ACR_AUTH_ENDPOINT")
            .or_else(|| Url::parse(&format!("https://{acr_login_server}")).ok())
            .unwrap_or_else(|| Url::parse("https://invalid.invalid").expect("static url"));
        let publisher_registry = self.raw("VIBEDATA_PUBLISHER_REGISTRY").unwrap_or_default().to_owned();
        if publisher_registry.contains('/') {
            self.problem("VIBEDATA_PUBLISHER_REGISTRY", format!("is {publisher_registry:?}; give a login server (host[:port]) without a scheme or path"));
        }
        let publisher_credential_secret = self.raw("VIBEDATA_PUBLISHER_CREDENTIAL_SECRET").unwrap_or_default().to_owned();
        if !publisher_credential_secret.is_empty() && !publisher_credential_secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            self.problem("VIBEDATA_PUBLISHER_CREDENTIAL_SECRET", format!("is {publisher_credential_secret:?}, not a Key Vault secret name"));
        }
        let images: Vec<String> = self
            .raw("VIBEDATA_IMAGES")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for image in &images {
            if !crate::oci::reference::valid_repository(image) {
                self.problem("VIBEDATA_IMAGES", format!("lists {image:?}, not a repository name"));
            }
        }
        let manifest = self.or_default("VIBEDATA_RELEASE_MANIFEST");
        let (manifest_repository, manifest_tag) = match manifest.rsplit_once(':') {
            Some((r, t)) if crate::oci::reference::valid_repository(r) && crate::oci::reference::valid_tag(t) => (r.to_owned(), t.to_owned()),
            _ => {
                self.problem("VIBEDATA_RELEASE_MANIFEST", format!("is {manifest:?}; expected repository:tag"));
                (String::new(), String::new())
            }
        };
        let concurrency = self.number("VIBEDATA_IMPORT_CONCURRENCY", 1, 64) as usize;
        let mode = match self.or_default("VIBEDATA_IMPORT_MODE").as_str() {
            "NoForce" => ImportMode::NoForce,
            "Force" => ImportMode::Force,
            other => {
                self.problem("VIBEDATA_IMPORT_MODE", format!("is {other:?}; expected NoForce or Force"));
                ImportMode::NoForce
            }
        };
        let import_timeout = Duration::from_secs(self.number("VIBEDATA_IMPORT_TIMEOUT_SECS", 1, 86_400));
        let method = match self.or_default("VIBEDATA_IMPORT_METHOD").as_str() {
            "import-image" => ImportMethod::ImportImage,
            "copy" => ImportMethod::Copy,
            other => {
                self.problem("VIBEDATA_IMPORT_METHOD", format!("is {other:?}; expected import-image or copy"));
                ImportMethod::ImportImage
            }
        };
        ArtifactsConfig {
            acr_name,
            acr_login_server,
            acr_auth_endpoint,
            publisher_registry,
            publisher_credential_secret,
            images,
            manifest_repository,
            manifest_tag,
            concurrency,
            mode,
            import_timeout,
            method,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(pairs: &[(&str, &str)]) -> Source {
        Source::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())), None).unwrap()
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("VIBEDATA_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001"),
        ("VIBEDATA_RESOURCE_GROUP", "mrg"),
        ("VIBEDATA_IDENTITY_CLIENT_ID", "00000000-0000-0000-0000-000000000002"),
        ("VIBEDATA_STORAGE_ACCOUNT", "stvibedata"),
        ("VIBEDATA_KEY_VAULT_NAME", "kv-vibedata"),
    ];

    #[test]
    fn minimal_config_derives_endpoints_from_the_cloud() {
        let c = Config::validate(&src(MINIMAL), &[]).unwrap();
        assert_eq!(c.blob_url.as_str(), "https://stvibedata.blob.core.windows.net/");
        assert_eq!(c.key_vault_url.as_str(), "https://kv-vibedata.vault.azure.net/");
        assert_eq!(c.arm_endpoint.as_str(), "https://management.azure.com/");
        assert_eq!(c.deployment_id, "mrg");
        assert!(c.verify_challenge_resource);
        assert_eq!(c.rbac_deadline, Duration::from_secs(900));
    }

    #[test]
    fn government_cloud_changes_every_suffix() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("AZ_SCRIPTS_AZURE_ENVIRONMENT", "AzureUSGovernment"));
        let c = Config::validate(&src(&pairs), &[]).unwrap();
        assert_eq!(c.blob_url.host_str(), Some("stvibedata.blob.core.usgovcloudapi.net"));
        assert_eq!(c.key_vault_url.host_str(), Some("kv-vibedata.vault.usgovcloudapi.net"));
        assert_eq!(c.arm_endpoint.host_str(), Some("management.usgovcloudapi.net"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::validate(
            &src(&[
                ("VIBEDATA_SUBSCRIPTION_ID", "not-a-guid"),
                ("VIBEDATA_RBAC_DEADLINE_SECS", "soon"),
                ("VIBEDATA_ARM_ENDPOINT", "http://127.0.0.1:1"),
                ("AZ_SCRIPTS_AZURE_ENVIRONMENT", "Mars"),
            ]),
            &[Step::Artifacts],
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "VIBEDATA_RESOURCE_GROUP",
            "VIBEDATA_IDENTITY_CLIENT_ID",
            "VIBEDATA_STORAGE_ACCOUNT",
            "VIBEDATA_KEY_VAULT_NAME",
            "VIBEDATA_ACR_NAME",
            "VIBEDATA_PUBLISHER_REGISTRY",
            "VIBEDATA_IMAGES",
            "VIBEDATA_SUBSCRIPTION_ID",
            "VIBEDATA_RBAC_DEADLINE_SECS",
            "VIBEDATA_ARM_ENDPOINT",
            "AZ_SCRIPTS_AZURE_ENVIRONMENT",
        ] {
            assert!(keys.contains(&expected), "{expected} not reported in {keys:?}");
        }
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains("only https endpoints"), "{line}");
    }

    #[test]
    fn alternatives_satisfy_a_requirement() {
        let c = Config::validate(
            &src(&[
                ("VIBEDATA_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001"),
                ("VIBEDATA_RESOURCE_GROUP", "mrg"),
                ("AZ_SCRIPTS_USER_ASSIGNED_IDENTITY", "/subscriptions/x/resourceGroups/mrg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami"),
                ("VIBEDATA_STORAGE_BLOB_URL", "https://127.0.0.1:18404/devstoreaccount1/"),
                ("VIBEDATA_KEY_VAULT_URL", "https://127.0.0.1:18401"),
            ]),
            &[],
        )
        .unwrap();
        assert!(matches!(c.identity, IdentityRef::ResourceId(_)));
        // Azurite and the blob crate need the account URL without a trailing slash.
        assert_eq!(c.blob_url.as_str(), "https://127.0.0.1:18404/devstoreaccount1");
    }

    #[test]
    fn step_specific_keys_are_only_required_for_that_step() {
        assert!(Config::validate(&src(MINIMAL), &[Step::Runbooks]).is_err());
        assert!(Config::validate(&src(MINIMAL), &[Step::Registry]).is_err());
        assert!(Config::validate(&src(MINIMAL), &[]).is_ok());
        assert!(required_for(Step::Artifacts).contains(&"VIBEDATA_ACR_NAME"));
        assert!(!required_for(Step::Runbooks).contains(&"VIBEDATA_ACR_NAME"));
        assert!(required_for(Step::Runbooks).contains(&"VIBEDATA_SUBSCRIPTION_ID"));
    }

    #[test]
    fn artifacts_section_parses_lists_and_defaults() {
        let mut pairs = MINIMAL.to_vec();
        pairs.extend([
            ("VIBEDATA_ACR_NAME", "vibedatacustomer"),
            ("VIBEDATA_PUBLISHER_REGISTRY", "publisher.azurecr.io"),
            ("VIBEDATA_PUBLISHER_CREDENTIAL_SECRET", "publisher-pull"),
            ("VIBEDATA_IMAGES", "vibedata/api, vibedata/web"),
        ]);
        let a = Config::validate(&src(&pairs), &[Step::Artifacts]).unwrap().artifacts.unwrap();
        assert_eq!(a.images, ["vibedata/api", "vibedata/web"]);
        assert_eq!(a.acr_login_server, "vibedatacustomer.azurecr.io");
        assert_eq!(a.acr_auth_endpoint.as_str(), "https://vibedatacustomer.azurecr.io/");
        assert_eq!((a.manifest_repository.as_str(), a.manifest_tag.as_str()), ("vibedata/release-manifest", "latest"));
        assert_eq!(a.concurrency, 8);
        assert_eq!(a.mode, ImportMode::NoForce);
    }

    #[test]
    fn json_file_is_read_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"VIBEDATA_RESOURCE_GROUP": "from-file", "VIBEDATA_IMPORT_CONCURRENCY": 4, "VIBEDATA_IMAGES": ["a/b", "c/d"]}"#).unwrap();
        let s = Source::from_env([("VIBEDATA_RESOURCE_GROUP".to_string(), "from-env".to_string())], Some(&path)).unwrap();
        assert_eq!(s.get("VIBEDATA_RESOURCE_GROUP"), Some("from-env"));
        assert_eq!(s.get("VIBEDATA_IMPORT_CONCURRENCY"), Some("4"));
        assert_eq!(s.get("VIBEDATA_IMAGES"), Some("a/b,c/d"));

        std::fs::write(&path, r#"{"VIBEDATA_RESOURCE_GRUOP": "typo"}"#).unwrap();
        let err = Source::from_env([], Some(&path)).unwrap_err();
        assert!(err.to_string().contains("VIBEDATA_RESOURCE_GRUOP"), "{err}");
    }

    #[test]
    fn there_is_no_key_that_disables_tls_verification() {
        for k in KEYS {
            let n = k.name.to_ascii_lowercase();
            assert!(!n.contains("insecure") && !n.contains("skip_tls") && !n.contains("verify_tls"), "{}", k.name);
        }
    }
}
