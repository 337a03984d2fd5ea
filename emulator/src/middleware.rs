//! The one middleware every request passes: look its row up in the provider table (api name,
//! mutating or not), apply armed faults, journal, log. The row travels on in the request's
//! extensions to the ARM dispatcher, which routes by it. `/_emulator` requests skip all of it,
//! so tests can inspect the emulator without disturbing it.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::faults::{self, Action};
use crate::journal::{Entry, Note};
use crate::providers;
use crate::server::ConnCtx;
use crate::state::Shared;

/// The `oid` of the bearer token a request presents (read, not verified: the service checks the
/// token itself; this only picks whose grants apply).
fn caller_oid(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims.get("oid")?.as_str().map(str::to_owned)
}

pub async fn observe(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/_emulator" || path.starts_with("/_emulator/") {
        return next.run(req).await;
    }
    let started = Instant::now();
    let ctx = req.extensions().get::<ConnCtx>().cloned();
    let listener = ctx.as_ref().map_or("unknown", |c| c.listener);
    let method = req.method().clone();
    let segs = providers::segments(&path);
    let matched = providers::find(&method, &segs.iter().map(String::as_str).collect::<Vec<_>>());
    let (api, mutating) = match &matched {
        Some(m) => (m.api.api, m.api.effect.mutating(&method)),
        None => (providers::UNKNOWN, providers::Effect::ByMethod.mutating(&method)),
    };
    let matched_api = matched.as_ref().map(|m| m.api.api);
    if let Some(m) = matched {
        req.extensions_mut().insert(m);
    }
    let mut entry = Entry {
        seq: 0,
        time: crate::http::now_rfc3339(),
        listener,
        method: method.to_string(),
        path: path.clone(),
        query: req.uri().query().map(str::to_owned),
        api,
        mutating,
        status: None,
        detail: None,
    };

    let mut decision = st.faults.decide(api, &path);
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    // A permission the grant table lacks: the service's own denial, as a missing role gets.
    let need = matched_api.and_then(|a| {
        crate::grants::required(&method, &segs.iter().map(String::as_str).collect::<Vec<_>>(), req.uri().query(), a)
    });
    // Only a caller that presented a credential is authorised: an anonymous request (Key
    // Vault's challenge round) gets the service's 401 as before. Storage authorises by RBAC
    // only a bearer token: Shared Key and SAS carry their own authority.
    let authorization = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authenticated = match authorization {
        Some(a) if api.starts_with("storage.") => a.starts_with("Bearer ") || a.starts_with("bearer "),
        Some(_) => true,
        None => false,
    };
    // An RBAC window refuses callers that present a credential: an anonymous request (Key
    // Vault's challenge round) still gets its 401 challenge, as in Azure, where authorisation
    // follows authentication.
    let anonymous = authorization.is_none() && !req.headers().contains_key("api-key");
    if matches!(decision.action, Some(Action::Rbac)) && anonymous {
        decision.action = None;
    }
    let caller = caller_oid(req.headers());
    let denied = need.filter(|n| authenticated && st.grants.denies(n, caller.as_deref(), &st.config));
    if decision.action.is_none() {
        if let Some(n) = denied {
            let response = faults::denied(api, &st.config, &method, &n.name, &path);
            entry.status = Some(response.status().as_u16());
            entry.detail = Some(serde_json::json!({"denied": n.name}));
            tracing::info!(listener, %method, path, api, action = %n.name, "denied by the grant table");
            st.journal.record(entry);
            return response;
        }
    }
    let response = match decision.action {
        Some(Action::Reset) => {
            st.journal.record(entry);
            tracing::info!(listener, %method, path, api, "fault: reset");
            if let Some(ctx) = ctx {
                ctx.abort.notify_one();
            }
            // The connection task drops this future together with the connection.
            return std::future::pending().await;
        }
        Some(action) => faults::respond(&action, api, &st.config, &method, &path),
        None => next.run(req).await,
    };

    entry.status = Some(response.status().as_u16());
    if let Some(note) = response.extensions().get::<Note>() {
        entry.mutating = note.mutating.unwrap_or(entry.mutating);
        entry.detail = note.detail.clone();
    }
    tracing::info!(
        listener,
        %method,
        path,
        api,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    st.journal.record(entry);
    response
}
