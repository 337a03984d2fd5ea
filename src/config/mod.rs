//! Typed configuration, validated before anything is mutated.
//!
//! Values come from `VIBEDATA_*` environment variables (what `deploymentScripts.environmentVariables`
//! and Function app settings provide) and optionally a JSON file whose keys are the same names.
//! The environment wins over the file. Every key is declared once in [`KEYS`]; the table drives
//! validation, `plan --json`'s `requiredConfig` and `--help`, so they cannot drift apart.
//!
//! Validation collects *every* problem before failing, so a template author fixes them all in one
//! round trip instead of one deployment per missing key.

mod keys;
mod sections;
mod source;
mod validator;

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

pub use crate::azure::identity::IdentityRef;
use crate::cloud::Cloud;
use crate::names;
use crate::sequence::Step;
pub use keys::{required_for, KeySpec, Need, KEYS};
pub use sections::{
    AiConfig, AirbyteConfig, ArtifactsConfig, DatabaseConfig, DbAuth, FailOn, HealthConfig, ImportMethod, ImportMode,
    RegistryConfig, ReleaseVerification, RunbooksConfig, RuntimeEnvironment, VerificationLevel,
};
pub use source::{ConfigError, Problem, Source};
pub use validator::Validator;

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
}

impl Config {
    /// Validates the shared keys of `source` for running `steps` (an empty slice means "the
    /// shared keys only"). Collects every problem before failing.
    pub fn validate(source: &Source, steps: &[Step]) -> Result<Config, ConfigError> {
        Config::validate_with(source, steps, |_, _| ()).map(|(c, ())| c)
    }

    /// Validates the shared keys, then lets `sections` read the selected phases' own sections
    /// through the same [`Validator`], so every problem of every selected phase is reported at
    /// once, before any phase runs.
    pub fn validate_with<T>(
        source: &Source,
        steps: &[Step],
        sections: impl FnOnce(&mut Validator<'_>, &Cloud) -> T,
    ) -> Result<(Config, T), ConfigError> {
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
                v.problem(
                    "AZ_SCRIPTS_AZURE_ENVIRONMENT",
                    format!("is {name:?}; expected AzureCloud, AzureUSGovernment or AzureChinaCloud"),
                );
                Cloud::AzureCloud
            }),
        };
        let arm_endpoint = v.url("VIBEDATA_ARM_ENDPOINT").unwrap_or_else(|| cloud.arm_endpoint());
        let blob_url = match v.url("VIBEDATA_STORAGE_BLOB_URL") {
            Some(u) => Some(u),
            None => v
                .named("VIBEDATA_STORAGE_ACCOUNT", &names::STORAGE_ACCOUNT)
                .and_then(|n| Url::parse(&format!("https://{n}.blob.{}", cloud.storage_suffix())).ok()),
        };
        let key_vault_url = match v.url("VIBEDATA_KEY_VAULT_URL") {
            Some(u) => Some(u),
            None => v
                .named("VIBEDATA_KEY_VAULT_NAME", &names::KEY_VAULT)
                .and_then(|n| Url::parse(&format!("https://{n}.{}", cloud.vault_suffix())).ok()),
        };
        let identity = if let Some(id) = v.raw("VIBEDATA_IDENTITY_CLIENT_ID") {
            v.uuid("VIBEDATA_IDENTITY_CLIENT_ID", id);
            Some(IdentityRef::ClientId(id.to_owned()))
        } else {
            ["VIBEDATA_IDENTITY_RESOURCE_ID", "AZ_SCRIPTS_USER_ASSIGNED_IDENTITY"].iter().find_map(|k| {
                v.raw(k).map(|id| {
                    if !id.to_ascii_lowercase().contains("/providers/microsoft.managedidentity/userassignedidentities/")
                    {
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
        // Both become parts of ARM paths and blob names.
        let resource_group = v.named("VIBEDATA_RESOURCE_GROUP", &names::RESOURCE_GROUP).unwrap_or_default();
        let deployment_id =
            v.named("VIBEDATA_DEPLOYMENT_ID", &names::DEPLOYMENT_ID).unwrap_or_else(|| resource_group.clone());
        let ledger_container = v.container("VIBEDATA_LEDGER_CONTAINER");
        let artifact_container = v.container("VIBEDATA_ARTIFACT_CONTAINER");
        let rbac_deadline = Duration::from_secs(v.number("VIBEDATA_RBAC_DEADLINE_SECS", 0, 86_400));
        let lock_wait = Duration::from_secs(v.number("VIBEDATA_LOCK_WAIT_SECS", 0, 86_400));
        let http_timeout = Duration::from_secs(v.number("VIBEDATA_HTTP_TIMEOUT_SECS", 1, 3_600));
        let max_retries = v.number("VIBEDATA_MAX_RETRIES", 0, 100) as u32;

        let sections = sections(&mut v, &cloud);

        if !v.problems.is_empty() {
            return Err(ConfigError { problems: v.problems });
        }
        let config = Config {
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
        };
        Ok((config, sections))
    }

    /// The resource group's ARM id, the scope most RBAC messages name.
    pub fn resource_group_id(&self) -> String {
        format!("/subscriptions/{}/resourceGroups/{}", self.subscription_id, self.resource_group)
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
            ("VIBEDATA_RELEASE_TRUST_STORE", ROOT_PEM),
            ("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", r#"["x509.subject: CN=CodeSigningLeaf"]"#),
        ]);
        let (_, a) = Config::validate_with(&src(&pairs), &[Step::Artifacts], |v, cloud| v.artifacts(cloud)).unwrap();
        assert_eq!(a.verification.level, VerificationLevel::Strict);
        assert_eq!(a.images, ["vibedata/api", "vibedata/web"]);
        assert_eq!(a.acr_login_server, "vibedatacustomer.azurecr.io");
        assert_eq!(a.acr_auth_endpoint.as_str(), "https://vibedatacustomer.azurecr.io/");
        assert_eq!((a.manifest_repository.as_str(), a.manifest_tag.as_str()), ("vibedata/release-manifest", "latest"));
        assert_eq!(a.concurrency, 8);
        assert_eq!(a.mode, ImportMode::NoForce);
    }

    const ROOT_PEM: &str = include_str!("../../tests/fixtures/notary/x509/rootCert.pem");

    #[test]
    fn release_verification_settings() {
        let escaped = ROOT_PEM.replace('\n', "\\n");
        let ids = r#"["x509.subject: CN=CodeSigningLeaf"]"#;
        // (extra keys, the problem's key or None, the level)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, VerificationLevel);
        let cases: &[Case] = &[
            (
                &[("VIBEDATA_RELEASE_TRUST_STORE", ROOT_PEM), ("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", ids)],
                None,
                VerificationLevel::Strict,
            ),
            (
                &[("VIBEDATA_RELEASE_TRUST_STORE", &escaped), ("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", ids)],
                None,
                VerificationLevel::Strict,
            ),
            (&[], Some("VIBEDATA_RELEASE_TRUST_STORE"), VerificationLevel::Strict),
            (
                &[("VIBEDATA_RELEASE_TRUST_STORE", "not pem"), ("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", ids)],
                Some("VIBEDATA_RELEASE_TRUST_STORE"),
                VerificationLevel::Strict,
            ),
            (
                &[("VIBEDATA_RELEASE_TRUST_STORE", ROOT_PEM)],
                Some("VIBEDATA_RELEASE_TRUSTED_IDENTITIES"),
                VerificationLevel::Strict,
            ),
            (
                &[("VIBEDATA_RELEASE_TRUST_STORE", ROOT_PEM), ("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", r#"["CN=x"]"#)],
                Some("VIBEDATA_RELEASE_TRUSTED_IDENTITIES"),
                VerificationLevel::Strict,
            ),
            (
                &[("VIBEDATA_RELEASE_VERIFICATION", "audit")],
                Some("VIBEDATA_RELEASE_VERIFICATION"),
                VerificationLevel::Audit,
            ),
            (
                &[("VIBEDATA_RELEASE_VERIFICATION", "audit"), ("VIBEDATA_ARM_ENDPOINT", "https://127.0.0.1:1")],
                None,
                VerificationLevel::Audit,
            ),
            (
                &[("VIBEDATA_RELEASE_VERIFICATION", "lenient")],
                Some("VIBEDATA_RELEASE_VERIFICATION"),
                VerificationLevel::Strict,
            ),
        ];
        for (extra, problem, level) in cases {
            let mut pairs = MINIMAL.to_vec();
            pairs.extend([
                ("VIBEDATA_ACR_NAME", "vibedatacustomer"),
                ("VIBEDATA_PUBLISHER_REGISTRY", "publisher.azurecr.io"),
                ("VIBEDATA_PUBLISHER_CREDENTIAL_SECRET", "publisher-pull"),
                ("VIBEDATA_IMAGES", "vibedata/api"),
            ]);
            pairs.extend(extra.iter().copied());
            match (Config::validate_with(&src(&pairs), &[Step::Artifacts], |v, cloud| v.artifacts(cloud)), problem) {
                (Ok((_, a)), None) => assert_eq!(a.verification.level, *level, "{extra:?}"),
                (Err(e), Some(key)) => assert!(e.problems.iter().any(|p| p.key == *key), "{extra:?}: {e}"),
                (got, want) => panic!("{extra:?}: got {:?}, wanted a problem with {want:?}", got.map(|_| ())),
            }
        }
    }

    #[test]
    fn json_file_is_read_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"VIBEDATA_RESOURCE_GROUP": "from-file", "VIBEDATA_IMPORT_CONCURRENCY": 4, "VIBEDATA_IMAGES": ["a/b", "c/d"]}"#).unwrap();
        let s =
            Source::from_env([("VIBEDATA_RESOURCE_GROUP".to_string(), "from-env".to_string())], Some(&path)).unwrap();
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
