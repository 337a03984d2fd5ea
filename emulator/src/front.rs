//! A front: a listener of the emulator's that stands before a real component of the stack
//! (the publisher registry, Azurite), answers what that component lacks itself and forwards
//! everything else unchanged. `referrers.rs` adds the OCI referrers API to the publisher
//! registry; `storage_front.rs` adds Azure RBAC to Azurite's Blob service. The request passes the
//! emulator's middleware first, so the journal, faults and the grant table apply to it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use crate::state::Shared;

/// A front's router: the control API, and `handler` for everything else, behind the one
/// middleware (journal, faults, grants).
pub fn router<H, T>(state: Shared, handler: H) -> axum::Router
where
    H: axum::handler::Handler<T, Shared>,
    T: 'static,
{
    axum::Router::new()
        .merge(crate::control::routes())
        .fallback(handler)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::middleware::observe))
        .with_state(state)
}

/// A client that trusts the stack's CA only (the components behind a front serve its
/// certificates) and follows no redirect (the caller sees the component's own).
pub fn client(st: &Shared) -> Result<reqwest::Client, String> {
    let ca = st.config.ca_file.as_ref().ok_or("the emulator has no caFile to trust the stack's components with")?;
    let pem = std::fs::read(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("CA file: {e}"))?;
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

const HOP: &[HeaderName] = &[header::HOST, header::CONNECTION, header::TRANSFER_ENCODING, header::UPGRADE];

/// Forwards the request to `https://{backend}` as is (body streamed) and the answer back, with
/// a `Location` that names the backend rewritten to the front. `unreachable` shapes the answer
/// when the backend cannot be reached, in the backend's own error format.
pub async fn forward(
    client: &reqwest::Client,
    backend: &str,
    req: Request,
    unreachable: fn(StatusCode, String) -> Response,
) -> Response {
    let front = crate::http::origin(req.headers(), req.uri());
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers.clone();
    for h in HOP {
        headers.remove(h);
    }
    let upstream = client
        .request(parts.method.clone(), format!("https://{backend}{pq}"))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let resp = match upstream {
        Ok(r) => r,
        Err(e) => return unreachable(StatusCode::BAD_GATEWAY, format!("{backend}: {e}")),
    };
    let mut out = Response::builder().status(resp.status());
    let backend_origin = format!("https://{backend}");
    for (k, v) in resp.headers() {
        if HOP.contains(k) {
            continue;
        }
        let v = match (k == header::LOCATION, v.to_str()) {
            (true, Ok(loc)) if loc.starts_with(&backend_origin) => {
                HeaderValue::from_str(&format!("{front}{}", &loc[backend_origin.len()..])).unwrap_or_else(|_| v.clone())
            }
            _ => v.clone(),
        };
        out = out.header(k, v);
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|e| unreachable(StatusCode::BAD_GATEWAY, format!("building the answer: {e}")))
}
