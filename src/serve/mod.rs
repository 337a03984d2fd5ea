//! `vibedata-bootstrap serve`: the Azure Functions custom handler.
//!
//! The port (`FUNCTIONS_CUSTOMHANDLER_PORT`) is bound before anything else, so the host sees the
//! worker within its 60 s start-up limit even for the timer-only start (field-notes: "Waiting for
//! Httpworker to be initialized"); configuration is read per request, from app settings only.
//! Both host modes are served on the one port: envelopes on `/<function>`, proxied requests on
//! `/api/<function>/...`. SIGTERM stops running phases at a safe point, lets the runner record
//! the ledger and release the lease, and exits within [`STOP_WITHIN`].

pub mod envelope;
mod functions;
mod jobs;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures::StreamExt;
use serde_json::json;
use warp::http::{HeaderMap, Method, Response, StatusCode};
use warp::Filter;

use envelope::{HttpRequest, HttpResponse, Invocation, MAX_BODY, MAX_ENVELOPE};
use functions::Functions;

/// The host gives a worker about 10 s between SIGTERM and SIGKILL; the rest is our margin.
pub const STOP_WITHIN: Duration = Duration::from_secs(8);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub port: u16,
    pub config_file: Option<PathBuf>,
}

/// What stops the handler from serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The port is taken or not ours to bind.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let started = Instant::now();
    // The host talks to the worker on loopback; nothing else may reach it.
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { port: opts.port, source })?;
    tracing::info!(
        port = opts.port,
        bind_ms = started.elapsed().as_millis() as u64,
        version = crate::VERSION,
        "custom handler listening on {addr}"
    );
    let jobs = jobs::Jobs::new(opts.config_file.clone());
    let functions = Arc::new(Functions { jobs: jobs.clone(), config_file: opts.config_file.clone() });

    let routes =
        warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::stream())
            .and(warp::any().map(move || functions.clone()))
            .then(
                |method: Method,
                 path: warp::path::FullPath,
                 query: String,
                 headers: HeaderMap,
                 body,
                 f: Arc<Functions>| async move {
                    let limit = if path.as_str().starts_with("/api/") { MAX_BODY } else { MAX_ENVELOPE };
                    let res = match read_body(body, limit).await {
                        Ok(bytes) => route(&f, &method, path.as_str(), &query, &headers, bytes).await,
                        Err(res) => res,
                    };
                    Ok::<_, Infallible>(to_warp(res))
                },
            );

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = warp::serve(routes).incoming(listener).graceful(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(server.run());
    // A configuration problem is the operator's to see at once (requests get it named too); it
    // is checked once the port answers, so it never delays the host's first invocation.
    let config_file = opts.config_file.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = jobs::context(config_file.as_deref()) {
            tracing::warn!(error = %e, "the app settings are not complete yet; every phase will refuse to start until they are");
        }
    });
    terminated().await;
    let t = Instant::now();
    tracing::info!("stopping: ending running phases at a safe point");
    let clean = jobs.shutdown(STOP_WITHIN).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    tracing::info!(clean, stop_ms = t.elapsed().as_millis() as u64, "stopped");
    Ok(())
}

async fn terminated() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Reads at most `limit` bytes; a longer body is refused before it is all read.
async fn read_body<S, B>(mut body: S, limit: usize) -> Result<Bytes, HttpResponse>
where
    S: futures::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| HttpResponse::error(400, "BadBody", e.to_string()))?;
        if out.len() + chunk.remaining() > limit {
            return Err(HttpResponse::error(413, "BodyTooLarge", format!("the body is larger than {limit} bytes")));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(out))
}

fn query_map(raw: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

async fn route(
    f: &Functions,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> HttpResponse {
    if let Some((function, params)) = envelope::proxied_route(path) {
        // Proxied HTTP: the caller's own request.
        let req = HttpRequest {
            method: method.as_str().to_owned(),
            params,
            query: query_map(query),
            headers: headers
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned())))
                .collect(),
            body: body.to_vec(),
        };
        return http_function(f, &function, &req).await.unwrap_or_else(|| not_found(&function));
    }
    let function = path.trim_matches('/').to_ascii_lowercase();
    match (method, function.as_str()) {
        // Readiness: the host (and serve-local) wait for this before the first invocation.
        (&Method::GET, "") | (&Method::GET, "healthz") => {
            HttpResponse::json(200, &json!({"ready": true, "version": crate::VERSION}))
        }
        (&Method::POST, "phase" | "status" | "health") => {
            // The host names each invocation; the id ties this worker's log to the host's.
            let id = headers.get("x-azure-functions-invocationid").and_then(|v| v.to_str().ok()).unwrap_or("-");
            let started = Instant::now();
            let (res, answered) = invocation(f, &function, &body).await;
            tracing::info!(invocation_id = id, function = %function, status = answered, duration_ms = started.elapsed().as_millis() as u64, "invocation {id} of {function}: {answered}");
            res
        }
        (_, "phase" | "status" | "health") => {
            HttpResponse::error(405, "MethodNotAllowed", "the host invokes a function with POST")
                .with_header("Allow", "POST")
        }
        _ => not_found(&function),
    }
}

fn not_found(function: &str) -> HttpResponse {
    HttpResponse::error(
        404,
        "UnknownFunction",
        format!("no function {function:?}; the functions are phase, status and health"),
    )
}

async fn http_function(f: &Functions, function: &str, req: &HttpRequest) -> Option<HttpResponse> {
    match function {
        "phase" => Some(f.phase(req).await),
        "status" => Some(f.status_function(req).await),
        _ => None,
    }
}

/// An invocation envelope: the answer is always an envelope (HTTP 200) that carries the
/// function's own status code, since a non-2xx from the handler fails the invocation itself. Only
/// an envelope that cannot be read gets a bare 400.
/// Also returns the status the function answered (inside the envelope).
async fn invocation(f: &Functions, function: &str, body: &[u8]) -> (HttpResponse, u16) {
    match envelope::parse(function, body) {
        Err(e) => (HttpResponse::error(400, "BadInvocation", e.to_string()), 400),
        Ok(Invocation::Timer(_)) => {
            let (outcome, logs) = f.health_timer().await;
            (HttpResponse::json(200, &envelope::timer_result(&outcome, &logs)), 200)
        }
        Ok(Invocation::Http(req)) => {
            let res = match http_function(f, function, &req).await {
                Some(res) => res,
                None => {
                    HttpResponse::error(400, "BadInvocation", format!("{function} is the timer, not an HTTP function"))
                }
            };
            let logs = vec![format!("{} {function}/{} -> {}", req.method, req.params.join("/"), res.status)];
            (HttpResponse::json(200, &envelope::http_result(&res, &logs)), res.status)
        }
    }
}

fn to_warp(res: HttpResponse) -> Response<String> {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(res.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", res.content_type);
    for (k, v) in &res.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(res.body).expect("a valid response")
}
