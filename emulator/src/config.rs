//! `emulator.json`, exactly as `docs/local-stack.md` describes it.
//!
//! Unknown keys are ignored (the stack script may add more than this binary reads); missing
//! required keys fail at start-up with serde's message naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
// `stateDir` is part of the contract but nothing needs it yet (state is in memory); it is parsed
// so a malformed value still fails early.
#[allow(dead_code)]
pub struct Config {
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The listeners' ports (`crate::listeners`): `{"base": P}` and/or a port per name.
    pub listen: crate::listeners::Listen,
    pub tls: CertAndKey,
    pub token_signing: CertAndKey,
    pub tenant_id: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub identity: Identity,
    pub customer_registry: CustomerRegistry,
    /// The registry `importImage` copies from (the only `registryUri` it accepts).
    #[serde(default)]
    pub publisher_registry: Option<PublisherRegistry>,
    /// The CA that signed both registries' TLS certificates: the only root `importImage`
    /// trusts when it talks to them.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Not in the contract: optional defaults for the long-running-operation knobs, which the
    /// control API (`PUT /_emulator/lro`) can change at run time.
    #[serde(default)]
    pub lro: LroSettings,
    /// Not in the contract: the default of the `importImage` knobs, which the control API
    /// (`PUT /_emulator/import`) can change at run time.
    #[serde(default)]
    pub import: ImportSettings,
    /// The Automation account in the resource group (inventory and runbook API).
    #[serde(default = "default_automation_account")]
    pub automation_account: String,
    /// The Automation account's seeded runtime environments and the publish knobs.
    #[serde(default)]
    pub automation: AutomationConfig,
    /// The managed resource group's names, endpoint address and ports (`arm/inventory.rs`).
    #[serde(default)]
    pub inventory: crate::arm::inventory::InventoryConfig,
    /// The AI Search data plane: its admin key (`search/`).
    #[serde(default)]
    pub search: crate::search::SearchConfig,
    /// The Foundry project data plane's knobs (`foundry/`).
    #[serde(default)]
    pub foundry: crate::foundry::FoundryConfig,
    /// The stack identity's role assignments (`grants.rs`): a `vibedata_rbac::GrantsFile`
    /// (scripts/stack names infra/roles/bootstrap-grants.json). None: everything is granted.
    #[serde(default)]
    pub grants: Option<PathBuf>,
    /// AKS runCommand: the real `helm` and the knobs `PUT /_emulator/aks` changes at run time.
    #[serde(default)]
    pub aks: crate::arm::aks::AksSettings,
}

fn default_automation_account() -> String {
    "aa-vibedata-local".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutomationConfig {
    /// The runtime environments the account starts with (system-generated in Azure: they
    /// cannot be deleted). Data, not code: runtime versions change over time.
    pub runtime_environments: Vec<RuntimeEnvironmentSeed>,
    #[serde(flatten)]
    pub publish: PublishSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEnvironmentSeed {
    pub name: String,
    pub language: String,
    pub version: String,
    #[serde(default)]
    pub default_packages: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// How long a runbook publish runs; control API `PUT /_emulator/automation`.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PublishSettings {
    /// Polls (of the operation, or GETs of the runbook) answered "running" before the
    /// publish completes; `null` = `lro.polls`.
    pub publish_polls: Option<u32>,
    /// A publish also runs at least this long (ms) before it can complete.
    pub publish_duration_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CertAndKey {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub client_id: String,
    pub principal_id: String,
    pub resource_id: String,
    /// The secret the App Service protocol expects in `X-IDENTITY-HEADER`.
    pub header: String,
    /// Where to serve the IMDS protocol over plain HTTP (deploymentScripts' path; Azure's address
    /// is 169.254.169.254:80). Off unless given: only a test's own network namespace may bind it.
    #[serde(default)]
    pub imds: Option<std::net::SocketAddr>,
    /// A second identity: the deployer (the Marketplace deployment's principal, Owner of the
    /// managed resource group), whose tokens the grant table never restricts. Tests set up and
    /// inspect the platform with it, as the template would; the binary under test uses the
    /// bootstrap identity above.
    #[serde(default)]
    pub deployer: Option<Principal>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub client_id: String,
    pub principal_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRegistry {
    pub name: String,
    pub login_server: String,
    /// `auth.token.service` of the CNCF registry: the registry JWT's `aud`.
    pub service: String,
    /// `auth.token.issuer` of the CNCF registry: the registry JWT's `iss`.
    pub issuer: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherRegistry {
    /// `host:port`, no scheme.
    pub login_server: String,
    /// Its `storage.filesystem.rootdirectory`: the `publisherReferrers` front reads the stored
    /// manifests there (`referrers.rs`).
    #[serde(default)]
    pub storage: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImportSettings {
    /// Each import's operation stays running at least this long (the copy itself runs at once;
    /// the result is held back until then). 0 = report as soon as the copy is done.
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LroSettings {
    /// How many polls answer "still running" before an operation completes.
    pub polls: u32,
    /// The `Retry-After` (seconds) sent with 201/202 answers and running polls.
    pub retry_after: u32,
}

impl Default for LroSettings {
    fn default() -> Self {
        LroSettings { polls: 2, retry_after: 1 }
    }
}

impl Config {
    /// Reads the file and resolves relative paths against its folder, so a config written with
    /// relative paths works from any working directory.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut cfg: Config = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.tls.cert);
        fix(&mut cfg.tls.key);
        fix(&mut cfg.token_signing.cert);
        fix(&mut cfg.token_signing.key);
        if let Some(ca) = cfg.ca_file.as_mut() {
            fix(ca);
        }
        Ok(cfg)
    }

    /// The AAD v1 issuer: Azurite rejects the v2 form, and real managed-identity tokens are v1.
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id)
    }

    /// The last segment of the identity's resource id (`vibedata-uami`).
    pub fn identity_name(&self) -> &str {
        self.identity.resource_id.rsplit('/').next().unwrap_or("identity")
    }
}
