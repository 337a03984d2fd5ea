//! Small clients for the Azure services this binary talks to, sharing one transport, one retry
//! policy and one error type.

pub mod acr;
pub mod aks;
pub mod arm;
pub mod automation;
pub mod blob;
pub mod discovery;
pub mod error;
pub mod foundry;
pub mod identity;
pub mod keyvault;
pub mod permission;
pub mod pipeline;
pub mod request_loop;
pub mod retry;
pub mod sdk;
pub mod search;
pub mod storage;

pub use error::AzureError;

use std::time::Duration;

/// The one HTTP client of a run. TLS is always verified; `extra_ca` (the local stack's CA) is
/// trusted in addition to the platform's roots, never instead of verification.
/// The HTTP client could not be built: an unreadable or empty CA file, a TLS setup failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

pub fn http_client(extra_ca: Option<&std::path::Path>, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("vibedata-bootstrap/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = extra_ca {
        let pem =
            std::fs::read(path).map_err(|e| ClientError(format!("cannot read CA file {}: {e}", path.display())))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ClientError(format!("CA file {}: {e}", path.display())))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| ClientError(format!("cannot build the HTTP client: {e}")))
}
