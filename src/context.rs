//! Everything a phase needs to talk to Azure, built once per run from the validated configuration.

use std::sync::Arc;

use crate::azure::arm::Arm;
use crate::azure::blob::Container;
use crate::azure::identity::Tokens;
use crate::azure::keyvault::Vault;
use crate::azure::pipeline::Pipeline;
use crate::azure::retry::RetryPolicy;
use crate::azure::AzureError;
use crate::config::Config;
use crate::error::LocalError;
use crate::ledger::Ledger;

pub struct Context {
    pub config: Config,
    pub http: reqwest::Client,
    pub tokens: Arc<Tokens>,
    pub pipeline: Pipeline,
    pub arm: Arm,
    pub ledger: Ledger,
    pub vault: Vault,
    pub policy: RetryPolicy,
}

impl Context {
    pub fn new(config: Config) -> Result<Context, LocalError> {
        let http = crate::azure::http_client(config.ca_file.as_deref(), config.http_timeout)?;
        let policy = RetryPolicy {
            max_retries: config.max_retries,
            rbac_deadline: config.rbac_deadline,
            ..RetryPolicy::default()
        };
        let tokens = Tokens::managed_identity(&config.identity, http.clone()).map_err(|e| LocalError(e.to_string()))?;
        let pipeline = Pipeline::new(http.clone(), tokens.clone(), policy.clone());
        let arm = Arm::new(pipeline.clone(), config.arm_endpoint.clone(), config.cloud.arm_scope());
        let ledger_container = Container::new(&config.blob_url, &config.ledger_container, &http, &policy, &tokens)
            .map_err(|e| LocalError(e.to_string()))?;
        let ledger = Ledger::new(ledger_container, &config.deployment_id);
        let vault = Vault::new(&config.key_vault_url, config.verify_challenge_resource, &http, &policy, &tokens)
            .map_err(|e| LocalError(e.to_string()))?;
        Ok(Context { config, http, tokens, pipeline, arm, ledger, vault, policy })
    }

    /// A container of the configured storage account, on the run's transport and policy.
    pub fn container(&self, name: &str) -> Result<Container, AzureError> {
        Container::new(&self.config.blob_url, name, &self.http, &self.policy, &self.tokens)
    }
}
