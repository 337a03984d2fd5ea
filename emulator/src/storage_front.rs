//! The `storageFront` listener: Azure RBAC in front of Azurite's Blob service.
//!
//! Azurite checks a bearer token's issuer and audience but no role: every valid token may do
//! everything. Behind this front a Blob request with a bearer token is authorised by the grant
//! table like every other emulated service (`grants::required` derives the action or data action
//! Microsoft's "Authorize data operations" table names), and one the identity lacks gets Blob's
//! own `403 AuthorizationPermissionMismatch` (`faults::denied`). Everything else (a granted
//! request, Shared Key or SAS, which RBAC does not govern) goes to Azurite unchanged, so what is
//! stored is Azurite's. The backend is `inventory.ports.blob` on `inventory.endpointIp`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;

use crate::state::Shared;

pub fn router(state: Shared) -> Router {
    crate::front::router(state, front)
}

async fn front(State(st): State<Shared>, req: Request) -> Response {
    let Some(port) = st.config.inventory.ports.get("blob") else {
        return blob_error(StatusCode::SERVICE_UNAVAILABLE, "no inventory.ports.blob configured".into());
    };
    let backend = format!("{}:{port}", st.config.inventory.endpoint_ip);
    match crate::front::client(&st) {
        Ok(client) => crate::front::forward(&client, &backend, req, blob_error).await,
        Err(e) => blob_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// An answer in Blob's error format (an XML body and `x-ms-error-code`).
pub fn blob_error(status: StatusCode, message: String) -> Response {
    let code = if status == StatusCode::FORBIDDEN { "AuthorizationPermissionMismatch" } else { "ServerBusy" };
    crate::faults::blob_error(status, code, &message)
}
