//! The HTTPS listeners: one TLS accept loop per configured port, all serving the same router.
//!
//! We run hyper ourselves instead of `axum::serve` for two reasons: TLS (rustls), and the
//! `reset` fault, which must drop a connection without any HTTP response. Each connection gets a
//! [`ConnCtx`] in its requests' extensions; firing its `abort` makes the connection task drop the
//! connection (and with it the socket) mid-request.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::CertAndKey;

/// Per-connection facts the request middleware needs.
#[derive(Clone)]
pub struct ConnCtx {
    /// The listener's name as the journal records it (`crate::listeners`).
    pub listener: &'static str,
    /// Notified to close the connection without answering (the `reset` fault).
    pub abort: Arc<Notify>,
}

pub fn tls_acceptor(tls: &CertAndKey) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("reading {}", tls.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).with_context(|| format!("reading {}", tls.key.display()))?;
    let mut config = ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds 127.0.0.1:`port` now (so "ready" is only printed once every port is bound) and returns
/// the accept loop to spawn.
pub async fn bind(
    name: &'static str,
    port: u16,
    tls: TlsAcceptor,
    app: Router,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding the {name} listener to 127.0.0.1:{port}"))?;
    Ok(accept_loop(name, listener, Some(tls), app))
}

/// Binds `addr` for plain HTTP, which only IMDS speaks (at 169.254.169.254:80, inside a network
/// namespace a test made: nothing else may bind outside 127.0.0.1).
pub async fn bind_plain(
    name: &'static str,
    addr: std::net::SocketAddr,
    app: Router,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the {name} listener to {addr}"))?;
    Ok(accept_loop(name, listener, None, app))
}

async fn accept_loop(name: &'static str, listener: TcpListener, tls: Option<TlsAcceptor>, app: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accept failed");
                continue;
            }
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return serve_connection(name, peer, tcp, app).await;
            };
            let stream = match tls.accept(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            serve_connection(name, peer, stream, app).await
        });
    }
}

async fn serve_connection<S>(name: &'static str, peer: std::net::SocketAddr, stream: S, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ctx = ConnCtx { listener: name, abort: Arc::new(Notify::new()) };
    let abort = ctx.abort.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ctx.clone());
        app.clone().oneshot(req)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
            }
        }
        // Dropping `conn` here closes the socket with the request unanswered.
        _ = abort.notified() => tracing::info!(listener = name, %peer, "connection reset by fault"),
    }
}
