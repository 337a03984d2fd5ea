//! Key Vault secrets through `azure_security_keyvault_secrets`.
//!
//! Values are handed out as [`Secret`] so they cannot end up in a log line by accident.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::{RequestContent, StatusCode};
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use url::Url;

use super::blob::sdk_error;
use super::identity::{Secret, Tokens};
use super::permission::{declare, Permission};
use super::retry::{Poll, RetryPolicy};
use super::AzureError;

const VAULT: &str = "Microsoft.KeyVault/vaults";

/// [`Vault::get`], [`Vault::get_opt`], and the wait for a recovered secret.
pub const GET_SECRET: Permission = Permission::data("Microsoft.KeyVault/vaults/secrets/getSecret/action", VAULT);
/// [`Vault::probe`]: names only, no values.
pub const READ_METADATA: Permission = Permission::data("Microsoft.KeyVault/vaults/secrets/readMetadata/action", VAULT);
/// [`Vault::set`].
pub const SET_SECRET: Permission = Permission::data("Microsoft.KeyVault/vaults/secrets/setSecret/action", VAULT);
/// [`Vault::set`]'s recovery of a soft-deleted name.
pub const RECOVER: Permission = Permission::data("Microsoft.KeyVault/vaults/secrets/recover/action", VAULT);

/// How long a recovered secret may take to become readable.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(45);

#[derive(Clone)]
pub struct Vault {
    client: Arc<SecretClient>,
    url: Url,
}

impl Vault {
    /// `verify_challenge_resource` stays true except for a vault outside the cloud's vault domain.
    pub fn new(
        url: &Url,
        verify_challenge_resource: bool,
        http: &reqwest::Client,
        policy: &RetryPolicy,
        tokens: &Arc<Tokens>,
    ) -> Result<Vault, AzureError> {
        let options = SecretClientOptions {
            client_options: super::sdk::client_options(http, policy, tokens),
            verify_challenge_resource: Some(verify_challenge_resource),
            ..Default::default()
        };
        let client =
            SecretClient::new(url.as_str(), tokens.clone(), Some(options)).map_err(|e| sdk_error(url.as_str(), e))?;
        Ok(Vault { client: Arc::new(client), url: url.clone() })
    }

    fn resource(&self, name: &str) -> String {
        format!("{}secrets/{name}", self.url)
    }

    /// The current value of a secret.
    pub async fn get(&self, name: &str) -> Result<Secret, AzureError> {
        let resp = declare(&GET_SECRET, self.client.get_secret(name, None))
            .await
            .map_err(|e| sdk_error(&self.resource(name), e))?;
        let secret = resp.into_model().map_err(|e| sdk_error(&self.resource(name), e))?;
        secret
            .value
            .map(Secret::new)
            .ok_or_else(|| AzureError::Decode { resource: self.resource(name), detail: "secret has no value".into() })
    }

    /// The current value of a secret, or `None` when the vault has no secret of that name.
    pub async fn get_opt(&self, name: &str) -> Result<Option<Secret>, AzureError> {
        match self.get(name).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Proves the vault is reachable and readable by listing one page of secret names (no values).
    pub async fn probe(&self) -> Result<(), AzureError> {
        use futures::StreamExt;
        let mut pager = self.client.list_secret_properties(None).map_err(|e| sdk_error(self.url.as_str(), e))?;
        match declare(&READ_METADATA, pager.next()).await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(sdk_error(self.url.as_str(), e)),
        }
    }

    /// Sets a secret. A name that is soft-deleted (a redeploy after a delete) is recovered first,
    /// since Key Vault refuses to reuse it and purge protection forbids purging it.
    pub async fn set(&self, name: &str, value: &Secret) -> Result<(), AzureError> {
        match self.put(name, value).await {
            // The SDK surfaces the outer code (`Conflict`); the inner `ObjectIsDeletedButRecoverable`
            // is in the body it does not parse. Any 409 on a set means the name is taken by a
            // deleted secret (or one being deleted), so try to recover it; if there is nothing to
            // recover, the original error stands.
            Err(conflict @ AzureError::Service { status: 409, .. }) => {
                tracing::info!(secret = name, "secret name is soft-deleted; recovering it before setting it");
                if let Err(e) = declare(&RECOVER, self.client.recover_deleted_secret(name, None)).await {
                    tracing::warn!(secret = name, error = %sdk_error(&self.resource(name), e), "recovery failed");
                    return Err(conflict);
                }
                self.wait_visible(name).await?;
                self.put(name, value).await
            }
            other => other,
        }
    }

    async fn put(&self, name: &str, value: &Secret) -> Result<(), AzureError> {
        let params = SetSecretParameters { value: Some(value.expose().to_owned()), ..Default::default() };
        let content: RequestContent<SetSecretParameters> =
            params.try_into().map_err(|e| sdk_error(&self.resource(name), e))?;
        declare(&SET_SECRET, self.client.set_secret(name, content, None))
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&self.resource(name), e))
    }

    /// A recovered secret is not readable at once; Key Vault documents polling until it is.
    async fn wait_visible(&self, name: &str) -> Result<(), AzureError> {
        let started = std::time::Instant::now();
        let mut poll = Poll::new(RECOVERY_DEADLINE, Duration::from_millis(100), Duration::from_secs(2));
        loop {
            match declare(&GET_SECRET, self.client.get_secret(name, None)).await {
                Ok(_) => return Ok(()),
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => match poll.next(started.elapsed(), None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => {
                        return Err(AzureError::Timeout { resource: self.resource(name), after: started.elapsed() })
                    }
                },
                Err(e) => return Err(sdk_error(&self.resource(name), e)),
            }
        }
    }
}
