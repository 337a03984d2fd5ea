//! `vibedata-emulator --config DIR/emulator.json`: the local stand-in for the Azure services
//! that have no local equivalent (ARM, Key Vault, managed identity, the ACR token service).
//! See `emulator/README.md` and `docs/local-stack.md`.
//!
//! One router serves every listener; stdout carries exactly one line, `ready`, once all
//! listeners are bound. Logs go to stderr.

// Handlers return `Result<_, Response>` to answer early with the service's error shape; the
// large `Err` is the point, and none of this is a hot path.
#![allow(clippy::result_large_err)]

mod acr_auth;
mod ai_control;
mod apps;
mod arm;
mod auth;
mod config;
mod control;
mod faults;
mod foundry;
mod front;
mod grants;
mod http;
mod identity;
mod journal;
mod keyvault;
mod latency;
mod listeners;
mod middleware;
mod oci_copy;
mod providers;
mod referrers;
mod search;
mod server;
mod state;
mod storage_front;
mod tokens;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;

use crate::listeners::Served;
use crate::state::{AppState, Shared};

#[derive(Parser)]
#[command(version, about = "Local HTTPS stand-in for ARM, Key Vault, managed identity and ACR auth (test fixture)")]
struct Args {
    /// The emulator.json written by `scripts/stack`.
    #[arg(long)]
    config: PathBuf,
    /// Print the resource group's inventory (what `GET /_emulator/inventory` answers) as JSON
    /// and exit, without binding anything. `scripts/stack` reads it before starting the stack.
    #[arg(long)]
    inventory: bool,
    /// Print the listeners this config binds, one `NAME PORT` line each, and exit without
    /// binding anything. `scripts/stack` reads it for the ports it checks and waits on.
    #[arg(long, conflicts_with = "inventory")]
    listeners: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Started as a runCommand's `helm`, `kubectl` or `curl` (arm/aks/shim.rs).
    if let Some(code) = arm::aks::shim_main() {
        std::process::exit(code);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Logs usually land in DIR/logs/emulator.log: no colour codes there.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIBEDATA_EMULATOR_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = config::Config::load(&args.config)?;
    if args.inventory {
        let view = arm::inventory::build(&config).view(&config);
        writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&view)?)?;
        return Ok(());
    }
    if args.listeners {
        let mut out = std::io::stdout();
        for (listener, port) in config.listen.bound() {
            writeln!(out, "{} {port}", listener.name)?;
        }
        return Ok(());
    }
    let signer = tokens::Signer::load(&config.token_signing.cert, &config.token_signing.key)
        .context("loading the token-signing certificate and key")?;
    let tls = server::tls_acceptor(&config.tls).context("loading the TLS certificate and key")?;
    let grants = grants::Grants::load(config.grants.as_deref())?;
    let state: Shared = Arc::new(AppState::new(config.clone(), signer, grants));
    let app = router(state.clone());

    let mut loops = Vec::new();
    for &(listener, port) in config.listen.bound() {
        let (tls, app) = match listener.served {
            Served::Services => (tls.clone(), app.clone()),
            Served::Apps => (
                apps::tls_acceptor(&config.tls, state.apps.clone()).context("loading the TLS certificate and key")?,
                apps::router(state.clone()),
            ),
            Served::Registry => (tls.clone(), referrers::router(state.clone())),
            Served::Storage => (tls.clone(), storage_front::router(state.clone())),
        };
        loops.push(server::bind(listener.name, port, tls, app).await?);
        tracing::info!(listener = listener.name, port, "listening on https://127.0.0.1:{port}");
    }
    if let Some(addr) = config.identity.imds {
        tokio::spawn(server::bind_plain("imds", addr, identity::imds_router(state.clone())).await?);
        tracing::info!(listener = "imds", %addr, "listening on http://{addr}");
    }
    for accept_loop in loops {
        tokio::spawn(accept_loop);
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready")?;
    stdout.flush()?;

    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
}

fn router(state: Shared) -> Router {
    Router::new()
        .merge(control::routes())
        .merge(apps::control_routes())
        .merge(ai_control::routes())
        .merge(foundry::routes())
        .route("/metadata/endpoints", get(arm::subscriptions::metadata_endpoints))
        .route("/msi/token", get(identity::token))
        .merge(keyvault::routes())
        .route("/oauth2/exchange", post(acr_auth::exchange))
        .route("/oauth2/token", get(acr_auth::token_get).post(acr_auth::token_post))
        .fallback(arm_or_not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

/// ARM paths are case-insensitive, so they are not axum routes: everything under
/// `/subscriptions` (and `/tenants`) goes to the ARM dispatcher.
async fn arm_or_not_found(state: State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_ascii_lowercase();
    let path = path.trim_end_matches('/');
    if path == "/subscriptions" || path.starts_with("/subscriptions/") || path == "/tenants" {
        return arm::dispatch(state, req).await;
    }
    // Search's OData key segments (`/indexes('docs')`) are no axum routes either.
    if search::serves(req.uri().path()) {
        return search::handle(state, req).await;
    }
    http::json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": {"code": "NotFound", "message": format!("The emulator has no route for '{}'.", req.uri().path())}}),
    )
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
