//! Tokens for the user-assigned managed identity.
//!
//! `azure_identity::ManagedIdentityCredential` does the protocol work: IMDS in a deploymentScripts
//! container, `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` in Functions and on the local stack. We wrap it
//! only to be able to throw its cache away: right after a role assignment ARM authorizes per token,
//! so waiting out RBAC propagation needs a token fetched anew, not the cached one.

use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};

use super::AzureError;

/// Which user-assigned identity to ask tokens for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRef {
    ClientId(String),
    ResourceId(String),
}

/// A string that must never be logged. `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

type Factory = Box<dyn Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync>;

/// The identity's token source, shared by every client in a run.
pub struct Tokens {
    factory: Factory,
    current: Mutex<Arc<dyn TokenCredential>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    /// The user-assigned managed identity, fetched through `http` (so a named local CA applies to
    /// an HTTPS identity endpoint too).
    pub fn managed_identity(identity: &IdentityRef, http: reqwest::Client) -> Result<Arc<Tokens>, AzureError> {
        let id = match identity {
            IdentityRef::ClientId(id) => UserAssignedId::ClientId(id.clone()),
            IdentityRef::ResourceId(id) => UserAssignedId::ResourceId(id.clone()),
        };
        let factory: Factory = Box::new(move || {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: Some(id.clone()),
                client_options: ClientOptions {
                    transport: Some(Transport::new(Arc::new(http.clone()))),
                    ..Default::default()
                },
            };
            ManagedIdentityCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>)
        });
        Self::from_factory(factory)
    }

    pub fn from_factory(factory: Factory) -> Result<Arc<Tokens>, AzureError> {
        let first = factory()
            .map_err(|e| AzureError::Credential { scope: "managed identity".into(), detail: e.to_string() })?;
        Ok(Arc::new(Tokens { factory, current: Mutex::new(first) }))
    }

    /// A bearer token for `scope` (e.g. `https://management.azure.com/.default`).
    pub async fn token(&self, scope: &str) -> Result<Secret, AzureError> {
        let cred = self.current.lock().expect("token lock").clone();
        cred.get_token(&[scope], None)
            .await
            .map(|t| Secret(t.token.secret().to_owned()))
            .map_err(|e| AzureError::Credential { scope: scope.to_owned(), detail: first_line(&e.to_string()) })
    }

    /// Drops cached tokens so the next request asks the identity endpoint again.
    pub fn refresh(&self) {
        if let Ok(fresh) = (self.factory)() {
            *self.current.lock().expect("token lock") = fresh;
        }
    }
}

/// SDK clients (Blob, Key Vault) take a `TokenCredential`; handing them `Tokens` means a refresh
/// reaches them too.
#[async_trait::async_trait]
impl TokenCredential for Tokens {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let cred = self.current.lock().expect("token lock").clone();
        cred.get_token(scopes, options).await
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().chars().take(300).collect()
}
