//! Blob storage through `azure_storage_blob`, over HTTPS with the identity's bearer token.
//!
//! Two containers use it: the run ledger (records and lock leases) and artifact storage.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientAcquireLeaseResultHeaders, BlobClientDownloadOptions,
    BlobClientUploadOptions,
};
use azure_storage_blob::{BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions};
use bytes::Bytes;
use url::Url;

use super::identity::Tokens;
use super::permission::{declare, Permission};
use super::retry::RetryPolicy;
use super::AzureError;

const ACCOUNT: &str = "Microsoft.Storage/storageAccounts";

/// [`Container::ensure`]: creating a container is a control-plane action, even over the Blob
/// endpoint.
pub const CONTAINER_WRITE: Permission =
    Permission::action("Microsoft.Storage/storageAccounts/blobServices/containers/write", ACCOUNT);
/// [`Container::exists`] (container properties).
pub const CONTAINER_READ: Permission =
    Permission::action("Microsoft.Storage/storageAccounts/blobServices/containers/read", ACCOUNT);
/// [`Container::get`], [`Container::blob_exists`], [`Container::list_page`].
pub const BLOB_READ: Permission =
    Permission::data("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", ACCOUNT);
/// [`Container::put`], [`Container::create_if_missing`], and the lease calls (the lock).
pub const BLOB_WRITE: Permission =
    Permission::data("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write", ACCOUNT);

#[derive(Clone)]
pub struct Container {
    client: Arc<BlobContainerClient>,
    url: Url,
    options: azure_core::http::ClientOptions,
    tokens: Arc<Tokens>,
    name: String,
}

/// A held lease on a blob: the lock of one phase.
#[derive(Debug, Clone)]
pub struct Lease {
    pub blob: String,
    pub id: String,
}

impl Container {
    pub fn new(
        account_url: &Url,
        name: &str,
        http: &reqwest::Client,
        policy: &RetryPolicy,
        tokens: &Arc<Tokens>,
    ) -> Result<Container, AzureError> {
        let url = Url::parse(&format!("{}/{name}", account_url.as_str().trim_end_matches('/')))
            .map_err(|e| AzureError::Decode { resource: name.into(), detail: e.to_string() })?;
        let options = super::sdk::client_options(http, policy, tokens);
        let client = BlobContainerClient::new(
            url.clone(),
            Some(tokens.clone() as Arc<dyn azure_core::credentials::TokenCredential>),
            Some(BlobContainerClientOptions { client_options: options.clone(), ..Default::default() }),
        )
        .map_err(|e| sdk_error(name, e))?;
        Ok(Container { client: Arc::new(client), url, options, tokens: tokens.clone(), name: name.to_owned() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn blob(&self, name: &str) -> Result<BlobClient, AzureError> {
        let url = Url::parse(&format!("{}/{}", self.url, name))
            .map_err(|e| AzureError::Decode { resource: name.into(), detail: e.to_string() })?;
        BlobClient::new(
            url,
            Some(self.tokens.clone() as Arc<dyn azure_core::credentials::TokenCredential>),
            Some(BlobClientOptions { client_options: self.options.clone(), ..Default::default() }),
        )
        .map_err(|e| sdk_error(name, e))
    }

    /// Creates the container unless it exists. Returns whether it was created.
    pub async fn ensure(&self) -> Result<bool, AzureError> {
        match declare(&CONTAINER_WRITE, self.client.create(None)).await {
            Ok(_) => Ok(true),
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(false),
            Err(e) => Err(denied(&CONTAINER_WRITE, &self.name, e)),
        }
    }

    pub async fn exists(&self) -> Result<bool, AzureError> {
        declare(&CONTAINER_READ, self.client.exists()).await.map_err(|e| denied(&CONTAINER_READ, &self.name, e))
    }

    /// Lists one page of at most `max` blobs and returns how many it held: the container exists
    /// and the identity may list it (the health probe's Blob check).
    pub async fn list_page(&self, max: i32) -> Result<usize, AzureError> {
        use futures::TryStreamExt;
        let options = azure_storage_blob::models::BlobContainerClientListBlobsOptions {
            maxresults: Some(max),
            ..Default::default()
        };
        let mut pages = self.client.list_blobs(Some(options)).map_err(|e| sdk_error(&self.name, e))?.into_pages();
        match declare(&BLOB_READ, pages.try_next()).await.map_err(|e| denied(&BLOB_READ, &self.name, e))? {
            Some(page) => Ok(page.into_model().map_err(|e| sdk_error(&self.name, e))?.blob_items.len()),
            None => Ok(0),
        }
    }

    /// Whether a blob exists (a HEAD: nothing is downloaded). Used by the OCI layout to skip
    /// content-addressed blobs it already holds.
    pub async fn blob_exists(&self, name: &str) -> Result<bool, AzureError> {
        declare(&BLOB_READ, self.blob(name)?.exists()).await.map_err(|e| denied(&BLOB_READ, name, e))
    }

    /// Reads a whole blob; `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, AzureError> {
        let blob = self.blob(name)?;
        let options =
            BlobClientDownloadOptions { parallel: Some(std::num::NonZero::new(1).expect("1")), ..Default::default() };
        match declare(&BLOB_READ, blob.download(Some(options))).await {
            Ok(r) => r.body.collect().await.map(Some).map_err(|e| sdk_error(name, e)),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(denied(&BLOB_READ, name, e)),
        }
    }

    /// Writes a whole blob. `lease` must be given when the blob is leased (the ledger record is
    /// written under its phase's lock).
    pub async fn put(
        &self,
        name: &str,
        content: Bytes,
        content_type: &str,
        lease: Option<&Lease>,
    ) -> Result<(), AzureError> {
        let blob = self.blob(name)?;
        let options = BlobClientUploadOptions {
            blob_content_type: Some(content_type.to_owned()),
            lease_id: lease.map(|l| l.id.clone()),
            ..Default::default()
        };
        declare(&BLOB_WRITE, blob.upload(RequestContent::from(content.to_vec()), Some(options)))
            .await
            .map(|_| ())
            .map_err(|e| denied(&BLOB_WRITE, name, e))
    }

    /// Creates an empty blob if there is none; an existing (possibly leased) blob is left alone.
    pub async fn create_if_missing(&self, name: &str) -> Result<(), AzureError> {
        let blob = self.blob(name)?;
        let options = BlobClientUploadOptions { if_none_match: Some("*".to_owned().into()), ..Default::default() };
        match declare(&BLOB_WRITE, blob.upload(RequestContent::from(Vec::new()), Some(options))).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.http_status(), Some(StatusCode::Conflict) | Some(StatusCode::PreconditionFailed)) => {
                Ok(())
            }
            Err(e) => Err(denied(&BLOB_WRITE, name, e)),
        }
    }

    /// Tries to take a lease. `None` when someone else holds it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        duration: Duration,
        proposed_id: &str,
    ) -> Result<Option<Lease>, AzureError> {
        let blob = self.blob(name)?;
        let options =
            BlobClientAcquireLeaseOptions { proposed_lease_id: Some(proposed_id.to_owned()), ..Default::default() };
        match declare(&BLOB_WRITE, blob.acquire_lease(duration.as_secs() as i32, Some(options))).await {
            Ok(resp) => {
                let id = resp.lease_id().ok().flatten().unwrap_or_else(|| proposed_id.to_owned());
                Ok(Some(Lease { blob: name.to_owned(), id }))
            }
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(None),
            Err(e) => Err(denied(&BLOB_WRITE, name, e)),
        }
    }

    pub async fn renew_lease(&self, lease: &Lease) -> Result<(), AzureError> {
        declare(&BLOB_WRITE, self.blob(&lease.blob)?.renew_lease(lease.id.clone(), None))
            .await
            .map(|_| ())
            .map_err(|e| denied(&BLOB_WRITE, &lease.blob, e))
    }

    pub async fn release_lease(&self, lease: &Lease) -> Result<(), AzureError> {
        declare(&BLOB_WRITE, self.blob(&lease.blob)?.release_lease(lease.id.clone(), None))
            .await
            .map(|_| ())
            .map_err(|e| denied(&BLOB_WRITE, &lease.blob, e))
    }
}

/// [`sdk_error`] for a call that declared `p`: a refusal that names no action (Blob's
/// `AuthorizationPermissionMismatch` never does) names `p`.
fn denied(p: &Permission, resource: &str, e: azure_core::Error) -> AzureError {
    sdk_error(resource, e).needing(Some(p.name))
}

/// Maps an SDK error onto ours, keeping the status and the service's error code.
pub fn sdk_error(resource: &str, e: azure_core::Error) -> AzureError {
    use azure_core::error::ErrorKind;
    match e.kind() {
        ErrorKind::HttpResponse { status, error_code, .. } => {
            let status = u16::from(*status);
            let code = error_code.clone().unwrap_or_else(|| format!("Http{status}"));
            let chain = super::pipeline::error_chain(&e);
            let mut message: String = chain.lines().next().unwrap_or_default().chars().take(300).collect();
            // Key Vault names the missing action on a later line of its message: keep it.
            if let Some(action) = super::error::action_in_message(&chain).filter(|a| !message.contains(a)) {
                message.push_str(&format!(" Action: '{action}'"));
            }
            if status == 401 || status == 403 {
                AzureError::Unauthorized {
                    status,
                    code,
                    message,
                    resource: resource.to_owned(),
                    waited: Duration::ZERO,
                }
            } else {
                AzureError::Service { status, code, message, resource: resource.to_owned() }
            }
        }
        ErrorKind::Credential => {
            AzureError::Credential { scope: resource.to_owned(), detail: super::pipeline::error_chain(&e) }
        }
        _ => AzureError::Transport {
            host: resource.to_owned(),
            detail: super::pipeline::error_chain(&e),
            resource: resource.to_owned(),
        },
    }
}
