//! The typed sections of the steps that need more than the shared keys, and their validation.

use std::time::Duration;

use url::Url;

use super::validator::Validator;
use crate::cloud::Cloud;
use crate::names;

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
    pub verification: ReleaseVerification,
}

/// What a failed release signature does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationLevel {
    /// Nothing is imported unless one signature verifies.
    Strict,
    /// Failures are reported and the install goes on (rehearsals only).
    Audit,
}

impl VerificationLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationLevel::Strict => "strict",
            VerificationLevel::Audit => "audit",
        }
    }
}

/// How the release manifest's signature is checked.
#[derive(Debug, Clone)]
pub struct ReleaseVerification {
    pub level: VerificationLevel,
    /// Absent only in audit mode without a trust store.
    pub policy: Option<crate::notary::TrustPolicy>,
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
    /// Runbooks published at once.
    pub concurrency: usize,
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

/// Configuration of the Airbyte Deployment step.
#[derive(Debug, Clone)]
pub struct AirbyteConfig {
    pub cluster: String,
    pub acr_login_server: String,
    pub acr_auth_endpoint: Url,
    pub storage_account: String,
    pub storage_blob_url: Url,
    pub chart: String,
    pub database_name: String,
    pub database_user: String,
    pub password_secret: String,
    pub install_timeout: Duration,
    /// The platform's Postgres, where Airbyte's database and role are created.
    pub database: DatabaseConfig,
}

/// Configuration of the AI Deployment step.
#[derive(Debug, Clone)]
pub struct AiConfig {
    pub search_endpoint: Url,
    pub foundry_account: String,
    pub foundry_project: String,
    pub project_endpoint: Option<Url>,
    /// Where hosted agents' images are pulled from: the customer registry's login server.
    pub acr_login_server: String,
    pub hosted_timeout: Duration,
}

/// Configuration of the Registry Bootstrap step.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// ARM reads in flight at once while discovering.
    pub concurrency: usize,
    /// Where the registry lives.
    pub database: DatabaseConfig,
}

/// How bad the overall health must be for `run health` to fail (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Unhealthy,
    Degraded,
    Never,
}

/// Configuration of the Health Bootstrap step.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub canary_secret: String,
    pub automation_account: String,
    /// `None`: the system resolver (Azure's, inside the VNet).
    pub dns_server: Option<std::net::SocketAddr>,
    /// Lower-cased FQDN → the port it is served on, where that is not the service's own.
    pub endpoint_ports: std::collections::BTreeMap<String, u16>,
    pub fail_on: FailOn,
    pub timeout: Duration,
    pub concurrency: usize,
    /// Where the ACR token exchange goes (default: the registry's login server).
    pub acr_auth_endpoint: Option<Url>,
    /// Where the registry and the health records live.
    pub database: DatabaseConfig,
}

impl Validator<'_> {
    /// The customer registry: its name, login server and token exchange endpoint.
    pub fn customer_registry(&mut self, cloud: &Cloud) -> (String, String, Url) {
        let acr_name = self.named("VIBEDATA_ACR_NAME", &names::CONTAINER_REGISTRY).unwrap_or_default();
        let acr_login_server = self
            .raw("VIBEDATA_ACR_LOGIN_SERVER")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}.{}", acr_name.to_ascii_lowercase(), cloud.acr_suffix()));
        let acr_auth_endpoint = self
            .url("VIBEDATA_ACR_AUTH_ENDPOINT")
            .or_else(|| Url::parse(&format!("https://{acr_login_server}")).ok())
            .unwrap_or_else(|| Url::parse("https://invalid.invalid").expect("static url"));
        (acr_name, acr_login_server, acr_auth_endpoint)
    }

    pub fn airbyte(&mut self, cloud: &Cloud) -> AirbyteConfig {
        let (_, acr_login_server, acr_auth_endpoint) = self.customer_registry(cloud);
        let storage_account =
            self.named("VIBEDATA_AIRBYTE_STORAGE_ACCOUNT", &names::STORAGE_ACCOUNT).unwrap_or_default();
        let storage_blob_url = self
            .url("VIBEDATA_AIRBYTE_STORAGE_BLOB_URL")
            .or_else(|| Url::parse(&format!("https://{storage_account}.blob.{}", cloud.storage_suffix())).ok())
            .unwrap_or_else(|| Url::parse("https://invalid.invalid").expect("static url"));
        AirbyteConfig {
            cluster: self.named("VIBEDATA_AKS_CLUSTER", &names::AKS_CLUSTER).unwrap_or_default(),
            acr_login_server,
            acr_auth_endpoint,
            storage_account,
            storage_blob_url,
            chart: self.named_or_default("VIBEDATA_AIRBYTE_CHART", &names::HELM_CHART),
            database_name: self.named_or_default("VIBEDATA_AIRBYTE_DATABASE", &names::POSTGRES_NAME),
            database_user: self.named_or_default("VIBEDATA_AIRBYTE_DB_USER", &names::POSTGRES_NAME),
            password_secret: self.named_or_default("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", &names::SECRET),
            install_timeout: Duration::from_secs(self.number("VIBEDATA_AIRBYTE_INSTALL_TIMEOUT_SECS", 60, 3_600)),
            database: self.database(),
        }
    }

    pub fn ai(&mut self, cloud: &Cloud) -> AiConfig {
        let (_, acr_login_server, _) = self.customer_registry(cloud);
        let service = self.named("VIBEDATA_SEARCH_SERVICE", &names::SEARCH_SERVICE).unwrap_or_default();
        let search_endpoint = self
            .url("VIBEDATA_SEARCH_ENDPOINT")
            .or_else(|| Url::parse(&format!("https://{service}.{}", cloud.search_suffix())).ok())
            .unwrap_or_else(|| Url::parse("https://invalid.invalid").expect("static url"));
        AiConfig {
            search_endpoint,
            foundry_account: self.named("VIBEDATA_FOUNDRY_ACCOUNT", &names::COGNITIVE_ACCOUNT).unwrap_or_default(),
            foundry_project: self.named("VIBEDATA_FOUNDRY_PROJECT", &names::FOUNDRY_PROJECT).unwrap_or_default(),
            project_endpoint: self.url("VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"),
            acr_login_server,
            hosted_timeout: Duration::from_secs(self.number("VIBEDATA_AI_HOSTED_TIMEOUT_SECS", 10, 3_600)),
        }
    }

    pub fn registry(&mut self) -> RegistryConfig {
        RegistryConfig {
            concurrency: self.number("VIBEDATA_DISCOVERY_CONCURRENCY", 1, 64) as usize,
            database: self.database(),
        }
    }

    pub fn health(&mut self) -> HealthConfig {
        let canary_secret = self.named("VIBEDATA_HEALTH_CANARY_SECRET", &names::SECRET).unwrap_or_default();
        let dns_server = self.raw("VIBEDATA_DNS_SERVER").and_then(|raw| {
            let parsed = raw
                .parse::<std::net::SocketAddr>()
                .ok()
                .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()));
            if parsed.is_none() {
                self.problem("VIBEDATA_DNS_SERVER", format!("is {raw:?}; expected ip:port or ip"));
            }
            parsed
        });
        let mut endpoint_ports = std::collections::BTreeMap::new();
        for item in
            self.raw("VIBEDATA_ENDPOINT_PORTS").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty())
        {
            match item.split_once('=').map(|(n, p)| (n.trim(), p.trim().parse::<u16>())) {
                Some((n, Ok(p))) if !n.is_empty() && p > 0 => {
                    endpoint_ports.insert(n.trim_end_matches('.').to_ascii_lowercase(), p);
                }
                _ => self.problem("VIBEDATA_ENDPOINT_PORTS", format!("has {item:?}; expected fqdn=port")),
            }
        }
        let fail_on = match self.or_default("VIBEDATA_HEALTH_FAIL_ON").to_ascii_lowercase().as_str() {
            "unhealthy" => FailOn::Unhealthy,
            "degraded" => FailOn::Degraded,
            "never" => FailOn::Never,
            other => {
                self.problem("VIBEDATA_HEALTH_FAIL_ON", format!("is {other:?}; expected unhealthy, degraded or never"));
                FailOn::Unhealthy
            }
        };
        HealthConfig {
            canary_secret,
            automation_account: self
                .named("VIBEDATA_AUTOMATION_ACCOUNT", &names::AUTOMATION_ACCOUNT)
                .unwrap_or_default(),
            dns_server,
            endpoint_ports,
            fail_on,
            timeout: Duration::from_secs(self.number("VIBEDATA_HEALTH_TIMEOUT_SECS", 1, 600)),
            concurrency: self.number("VIBEDATA_HEALTH_CONCURRENCY", 1, 256) as usize,
            acr_auth_endpoint: self.url("VIBEDATA_ACR_AUTH_ENDPOINT"),
            database: self.database(),
        }
    }

    pub fn runbooks(&mut self) -> RunbooksConfig {
        let automation_account =
            self.named("VIBEDATA_AUTOMATION_ACCOUNT", &names::AUTOMATION_ACCOUNT).unwrap_or_default();
        let mut runtime_environments: Vec<RuntimeEnvironment> = Vec::new();
        for item in self
            .raw("VIBEDATA_RUNTIME_ENVIRONMENTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.split_once('=').and_then(|(n, lv)| lv.split_once(':').map(|(l, v)| (n, l, v))) {
                Some((n, l, v)) if !l.is_empty() && !v.is_empty() => match names::USER_RUNTIME_ENVIRONMENT.check(n) {
                    Err(e) => self.problem("VIBEDATA_RUNTIME_ENVIRONMENTS", format!("has {e}")),
                    // Automation names are case-insensitive: the same name twice is one environment
                    // configured two ways, or a copy-paste slip; either way the input is wrong.
                    Ok(()) if runtime_environments.iter().any(|e| e.name.eq_ignore_ascii_case(n)) => {
                        self.problem("VIBEDATA_RUNTIME_ENVIRONMENTS", format!("names {n:?} twice"))
                    }
                    Ok(()) => runtime_environments.push(RuntimeEnvironment {
                        name: n.to_owned(),
                        language: l.to_owned(),
                        version: v.to_owned(),
                    }),
                },
                _ => self
                    .problem("VIBEDATA_RUNTIME_ENVIRONMENTS", format!("has {item:?}; expected Name=Language:Version")),
            }
        }
        let max_script_bytes = self.number("VIBEDATA_RUNBOOK_MAX_BYTES", 1, 64 * 1024 * 1024);
        let concurrency = self.number("VIBEDATA_RUNBOOK_CONCURRENCY", 1, 16) as usize;
        RunbooksConfig { automation_account, runtime_environments, max_script_bytes, concurrency }
    }

    pub fn database(&mut self) -> DatabaseConfig {
        let port = self.number("VIBEDATA_POSTGRES_PORT", 1, 65_535) as u16;
        let auth = match self.raw("VIBEDATA_POSTGRES_PASSWORD_SECRET") {
            Some(_) => DbAuth::KeyVaultSecret(
                self.named("VIBEDATA_POSTGRES_PASSWORD_SECRET", &names::SECRET).unwrap_or_default(),
            ),
            None => DbAuth::Entra,
        };
        let verify_full = match self.or_default("VIBEDATA_POSTGRES_SSLMODE").as_str() {
            "verify-full" => true,
            "require" => false,
            other => {
                self.problem(
                    "VIBEDATA_POSTGRES_SSLMODE",
                    format!("is {other:?}; expected verify-full or require (TLS cannot be turned off)"),
                );
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

    pub fn artifacts(&mut self, cloud: &Cloud) -> ArtifactsConfig {
        let (acr_name, acr_login_server, acr_auth_endpoint) = self.customer_registry(cloud);
        let publisher_registry = self.raw("VIBEDATA_PUBLISHER_REGISTRY").unwrap_or_default().to_owned();
        if publisher_registry.contains('/') {
            self.problem(
                "VIBEDATA_PUBLISHER_REGISTRY",
                format!("is {publisher_registry:?}; give a login server (host[:port]) without a scheme or path"),
            );
        }
        let publisher_credential_secret =
            self.named("VIBEDATA_PUBLISHER_CREDENTIAL_SECRET", &names::SECRET).unwrap_or_default();
        let images: Vec<String> = self
            .raw("VIBEDATA_IMAGES")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for (i, image) in images.iter().enumerate() {
            if !crate::oci::reference::valid_repository(image) {
                self.problem("VIBEDATA_IMAGES", format!("lists {image:?}, not a repository name"));
            } else if images[..i].contains(image) {
                self.problem("VIBEDATA_IMAGES", format!("lists {image:?} twice"));
            }
        }
        let manifest = self.or_default("VIBEDATA_RELEASE_MANIFEST");
        let (manifest_repository, manifest_tag) = match manifest.rsplit_once(':') {
            Some((r, t)) if crate::oci::reference::valid_repository(r) && crate::oci::reference::valid_tag(t) => {
                (r.to_owned(), t.to_owned())
            }
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
        let verification = self.release_verification();
        ArtifactsConfig {
            verification,
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

impl Validator<'_> {
    /// `VIBEDATA_RELEASE_*`: the trust store and identities parse, strict has a trust store, and
    /// audit runs only against explicit endpoints (a rehearsal, never a customer install).
    fn release_verification(&mut self) -> ReleaseVerification {
        let level = match self.or_default("VIBEDATA_RELEASE_VERIFICATION").as_str() {
            "strict" => VerificationLevel::Strict,
            "audit" => VerificationLevel::Audit,
            other => {
                self.problem("VIBEDATA_RELEASE_VERIFICATION", format!("is {other:?}; expected strict or audit"));
                VerificationLevel::Strict
            }
        };
        if level == VerificationLevel::Audit && self.raw("VIBEDATA_ARM_ENDPOINT").is_none() {
            self.problem(
                "VIBEDATA_RELEASE_VERIFICATION",
                "is audit, which is for rehearsals only: it needs explicit endpoints (VIBEDATA_ARM_ENDPOINT, the local stack)".into(),
            );
        }
        let store = self.raw("VIBEDATA_RELEASE_TRUST_STORE").map(|s| s.trim()).filter(|s| !s.is_empty());
        let identities = self.raw("VIBEDATA_RELEASE_TRUSTED_IDENTITIES").map(str::to_owned);
        let Some(store) = store else {
            if level == VerificationLevel::Strict {
                self.problem(
                    "VIBEDATA_RELEASE_TRUST_STORE",
                    "is not set; strict release verification (the default) needs the publisher's root certificate(s) as PEM".into(),
                );
            }
            return ReleaseVerification { level, policy: None };
        };
        // A one-line value (an env file, an app setting) may carry its newlines escaped.
        let pem = if store.contains('\n') { store.to_owned() } else { store.replace("\\n", "\n") };
        let ids: Vec<String> = match identities.as_deref().map(serde_json::from_str::<Vec<String>>) {
            Some(Ok(ids)) if !ids.is_empty() => ids,
            Some(Ok(_)) | None => {
                self.problem(
                    "VIBEDATA_RELEASE_TRUSTED_IDENTITIES",
                    "is not set or empty; list the trusted signers with the trust store".into(),
                );
                return ReleaseVerification { level, policy: None };
            }
            Some(Err(e)) => {
                self.problem("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", format!("is not a JSON array of strings ({e})"));
                return ReleaseVerification { level, policy: None };
            }
        };
        match crate::notary::TrustPolicy::new(&pem, &ids) {
            Ok(p) => ReleaseVerification { level, policy: Some(p) },
            Err(e) => {
                let key = match e {
                    crate::notary::NotaryError::BadIdentity(_) => "VIBEDATA_RELEASE_TRUSTED_IDENTITIES",
                    _ => "VIBEDATA_RELEASE_TRUST_STORE",
                };
                self.problem(key, format!("is not usable: {e}"));
                ReleaseVerification { level, policy: None }
            }
        }
    }
}
