//! The components the stack does not run — the web apps and the Function app, the App Gateway,
//! AKS's API server, AI Search, AI Foundry, Automation's webhook host — answered by one HTTPS
//! listener (`crate::listeners::APPS`, P+11). Each component answers for its inventory host names (chosen
//! by `Host`, or `:authority` on HTTP/2): `GET /health`, `/healthz`, `/livez`, `/readyz`,
//! `/api/health` → 200 `{"status":"Healthy"}`.
//!
//! Tests turn a component's answer with the control API (`PUT /_emulator/apps/{name}`):
//! `Healthy`, `Degraded` (200, as ASP.NET Core answers a degraded check), `Unhealthy` (503),
//! `reset` (the connection closes without an answer) or `tls-fail` (the TLS handshake for its
//! host names is refused: the certificate resolver sees the SNI).

use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::arm::endpoints::Component;
use crate::arm::inventory;
use crate::config::{CertAndKey, Config};
use crate::http::json;
use crate::server::ConnCtx;
use crate::state::Shared;

/// The paths a health probe may use (App Service's `healthCheckPath`, kube-apiserver's).
const PROBE_PATHS: &[&str] = &["/health", "/healthz", "/livez", "/readyz", "/api/health"];

/// What a component answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Degraded,
    Unhealthy,
    #[serde(rename = "reset")]
    Reset,
    #[serde(rename = "tls-fail")]
    TlsFail,
}

struct Entry {
    component: Component,
    health: Health,
    probes: u64,
    last_probe: Option<String>,
}

/// The components and what each answers; shared with the TLS certificate resolver.
pub struct AppsState {
    entries: Mutex<Vec<Entry>>,
}

impl AppsState {
    pub fn new(cfg: &Config) -> Arc<AppsState> {
        let entries = inventory::build(cfg)
            .components
            .into_iter()
            .map(|component| Entry { component, health: Health::Healthy, probes: 0, last_probe: None })
            .collect();
        Arc::new(AppsState { entries: Mutex::new(entries) })
    }

    fn answers_for(e: &Entry, host: &str) -> bool {
        e.component.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether the TLS handshake for this SNI must fail.
    fn refuses_tls(&self, sni: &str) -> bool {
        self.entries.lock().unwrap().iter().any(|e| e.health == Health::TlsFail && Self::answers_for(e, sni))
    }

    pub fn view(&self) -> Value {
        let entries = self.entries.lock().unwrap();
        json!(entries
            .iter()
            .map(|e| json!({
                "name": e.component.name,
                "resourceId": e.component.resource_id,
                "type": e.component.resource_type,
                "hosts": e.component.hosts,
                "probePath": e.component.probe_path,
                "health": e.health,
                "probes": e.probes,
                "lastProbe": e.last_probe,
            }))
            .collect::<Vec<_>>())
    }
}

/// The apps listener's TLS: the stack's certificate for every SNI, except the host names of a
/// component set to `tls-fail` (no certificate: rustls aborts the handshake).
struct Resolver {
    key: Arc<CertifiedKey>,
    apps: Arc<AppsState>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("apps::Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = hello.server_name() {
            if self.apps.refuses_tls(sni) {
                tracing::info!(listener = "apps", sni, "TLS refused (tls-fail)");
                return None;
            }
        }
        Some(self.key.clone())
    }
}

pub fn tls_acceptor(tls: &CertAndKey, apps: Arc<AppsState>) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("reading {}", tls.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).with_context(|| format!("reading {}", tls.key.display()))?;
    let builder = ServerConfig::builder();
    let key = Arc::new(CertifiedKey::from_der(certs, key, builder.crypto_provider())?);
    let mut config = builder.with_no_client_auth().with_cert_resolver(Arc::new(Resolver { key, apps }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The apps listener's router: the control API (so readiness checks work on this port too)
/// and the components' health endpoints.
pub fn router(state: Shared) -> Router {
    Router::new()
        .merge(crate::control::routes())
        .merge(control_routes())
        .fallback(serve)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::middleware::observe))
        .with_state(state)
}

/// `GET /_emulator/inventory`, `GET|DELETE /_emulator/apps`, `PUT /_emulator/apps/{name}`.
pub fn control_routes() -> Router<Shared> {
    Router::new()
        .route("/_emulator/inventory", get(inventory_view))
        .route("/_emulator/apps", get(list).delete(reset_all))
        .route("/_emulator/apps/{name}", get(show).put(set))
}

async fn inventory_view(State(st): State<Shared>) -> Json<Value> {
    Json(inventory::build(&st.config).view(&st.config))
}

async fn list(State(st): State<Shared>) -> Json<Value> {
    Json(st.apps.view())
}

async fn show(State(st): State<Shared>, Path(name): Path<String>) -> Response {
    let view = st.apps.view();
    match view
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&name))))
    {
        Some(c) => Json(c.clone()).into_response(),
        None => unknown_component(&name),
    }
}

#[derive(Deserialize)]
struct SetHealth {
    health: Health,
}

async fn set(State(st): State<Shared>, Path(name): Path<String>, Json(body): Json<SetHealth>) -> Response {
    {
        let mut entries = st.apps.entries.lock().unwrap();
        let Some(e) = entries.iter_mut().find(|e| e.component.name.eq_ignore_ascii_case(&name)) else {
            drop(entries);
            return unknown_component(&name);
        };
        e.health = body.health;
    }
    show(State(st), Path(name)).await
}

async fn reset_all(State(st): State<Shared>) -> StatusCode {
    for e in st.apps.entries.lock().unwrap().iter_mut() {
        e.health = Health::Healthy;
        e.probes = 0;
        e.last_probe = None;
    }
    StatusCode::NO_CONTENT
}

fn unknown_component(name: &str) -> Response {
    json(
        StatusCode::NOT_FOUND,
        json!({"error": {"code": "NotFound", "message": format!("No component named '{name}' (see GET /_emulator/apps).")}}),
    )
}

/// A request to a component's host name.
async fn serve(State(st): State<Shared>, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h).to_ascii_lowercase();
    let path = req.uri().path().to_owned();
    let health = {
        let mut entries = st.apps.entries.lock().unwrap();
        let Some(e) = entries.iter_mut().find(|e| AppsState::answers_for(e, &host)) else {
            // App Service's answer for a host name it does not know.
            return json(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "NotFound", "message": format!("No component answers for host '{host}'.")}}),
            );
        };
        if !PROBE_PATHS.contains(&path.as_str()) {
            return json(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "NotFound", "message": format!("'{}' serves only {} here.", e.component.name, PROBE_PATHS.join(", "))}}),
            );
        }
        e.probes += 1;
        e.last_probe = Some(crate::http::now_rfc3339());
        e.health
    };
    let (status, body) = match health {
        Health::Healthy | Health::TlsFail => (StatusCode::OK, "Healthy"),
        Health::Degraded => (StatusCode::OK, "Degraded"),
        Health::Unhealthy => (StatusCode::SERVICE_UNAVAILABLE, "Unhealthy"),
        Health::Reset => {
            if let Some(ctx) = req.extensions().get::<ConnCtx>() {
                ctx.abort.notify_one();
            }
            return std::future::pending().await;
        }
    };
    json(status, json!({"status": body, "host": host}))
}
