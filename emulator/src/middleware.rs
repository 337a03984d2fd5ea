//! The one middleware every request passes: name the api, apply armed faults, journal, log.
//! `/_emulator` requests skip all of it, so tests can inspect the emulator without disturbing it.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::faults::{self, Action};
use crate::journal::Entry;
use crate::server::ConnCtx;
use crate::state::Shared;

pub async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/_emulator" || path.starts_with("/_emulator/") {
        return next.run(req).await;
    }
    let started = Instant::now();
    let ctx = req.extensions().get::<ConnCtx>().cloned();
    let listener = ctx.as_ref().map_or("unknown", |c| c.listener);
    let method = req.method().clone();
    let api = classify(&method, &path);
    let mut entry = Entry {
        seq: 0,
        time: crate::http::now_rfc3339(),
        listener,
        method: method.to_string(),
        path: path.clone(),
        query: req.uri().query().map(str::to_owned),
        api,
        status: None,
    };

    let decision = st.faults.decide(api, &path);
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
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

/// The api name of a request, as the contract lists them (`identity`, `keyvault`,
/// `arm.resourceGroups`, ...). ARM paths are case-insensitive, so this compares lowercased.
pub fn classify(method: &Method, path: &str) -> &'static str {
    let lower = path.to_ascii_lowercase();
    let segs: Vec<&str> = lower.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["msi", ..] => "identity",
        ["secrets", ..] | ["deletedsecrets", ..] => "keyvault",
        ["oauth2", "exchange"] => "acr.exchange",
        ["oauth2", "token"] => "acr.token",
        // The apps listener's health endpoints (`apps.rs`).
        ["health"] | ["healthz"] | ["livez"] | ["readyz"] | ["api", "health"] => "apps.health",
        ["subscriptions", ..] => classify_arm(method, &segs),
        _ => "unknown",
    }
}

fn classify_arm(_method: &Method, segs: &[&str]) -> &'static str {
    // importImage's own operation (Location) polls count as importImage, so one fault or one
    // journal filter covers the whole import.
    if let [_, _, "resourcegroups", _, "providers", "microsoft.containerregistry", "locations", _, "operationresults", ..] =
        segs
    {
        return "acr.importImage";
    }
    // Everything under Microsoft.Automation, its operation polls included, is `automation`,
    // so one fault or journal filter covers a whole draft/publish sequence.
    if let [_, _, "resourcegroups", _, "providers", "microsoft.automation", ..] = segs {
        return "automation";
    }
    if segs.iter().any(|s| *s == "operationresults" || *s == "operationstatuses") {
        return "arm.operations";
    }
    match segs {
        [_, _, "resourcegroups"] | [_, _, "resourcegroups", _] => "arm.resourceGroups",
        [_, _, "resourcegroups", _, "resources"] => "arm.resources",
        [_, _, "resourcegroups", _, "providers", "microsoft.resources", "deployments", ..] => "arm.deployments",
        [_, _, "resourcegroups", _, "providers", "microsoft.containerregistry", "registries", _, "importimage"] => {
            "acr.importImage"
        }
        [_, _, "resourcegroups", _, "providers", "microsoft.containerregistry", ..] => "acr.registries",
        _ => "arm.resources",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_contract_apis() {
        let get = Method::GET;
        assert_eq!(classify(&get, "/msi/token"), "identity");
        assert_eq!(classify(&get, "/secrets/x/abc"), "keyvault");
        assert_eq!(classify(&get, "/deletedsecrets/x"), "keyvault");
        assert_eq!(classify(&get, "/subscriptions/s/resourcegroups/rg"), "arm.resourceGroups");
        assert_eq!(classify(&get, "/subscriptions/s/resourceGroups/rg/resources"), "arm.resources");
        assert_eq!(
            classify(&get, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d"),
            "arm.deployments"
        );
        assert_eq!(
            classify(
                &get,
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d/operationStatuses/1"
            ),
            "arm.operations"
        );
        assert_eq!(classify(&get, "/subscriptions/s/operationresults/abc"), "arm.operations");
        assert_eq!(
            classify(&get, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r"),
            "acr.registries"
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r/importImage"
            ),
            "acr.importImage"
        );
        assert_eq!(
            classify(&get, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/locations/eastus/operationResults/operationStatuses/registries-1"),
            "acr.importImage"
        );
        assert_eq!(
            classify(&Method::PUT, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Automation/automationAccounts/a/runbooks/r/draft/content"),
            "automation"
        );
        assert_eq!(
            classify(&get, "/subscriptions/s/resourceGroups/rg/providers/microsoft.automation/automationAccounts/a/runbooks/r/publish/operationResults/1"),
            "automation"
        );
        assert_eq!(classify(&get, "/oauth2/exchange"), "acr.exchange");
        assert_eq!(classify(&get, "/oauth2/token"), "acr.token");
    }
}
