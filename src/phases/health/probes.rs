//! Service-level probes: one per component kind, each a read that proves the service does its
//! job for this platform (a canary secret, a container listing, `select 1`, a registry token,
//! published runbooks, an HTTP health endpoint). Probes go where the runtime's own clients go —
//! the configured URLs — except the HTTP ones, which target the component's own host name.

use std::net::IpAddr;

use serde_json::Value;

use super::model::State;
use super::net;
use crate::azure::automation::Automation;
use crate::config::HealthConfig;
use crate::context::Context;
use crate::error::PhaseError;
use crate::oci::{AcrIdentity, Credentials, Registry, RegistryOptions};
use crate::stored_release::StoredRelease;

/// What a service probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    KeyVault,
    Blob,
    Postgres,
    Acr {
        login_server: String,
    },
    Automation,
    /// `GET https://{host}{path}`; a 2xx with a status word in its JSON body is that status.
    Http {
        host: String,
        path: String,
    },
    /// The service has no anonymous health API (AI Search, AI Foundry): optional, Unknown.
    NoApi,
}

/// The probe of a component with `role` and kept ARM `properties`, and whether it is required.
pub fn service_for(role: &str, properties: &Value) -> Option<(Service, bool)> {
    let s = |p: &str| properties.get(p).and_then(Value::as_str).map(str::to_owned);
    Some(match role {
        "key-vault" => (Service::KeyVault, true),
        "storage" => (Service::Blob, true),
        "postgres" => (Service::Postgres, true),
        "container-registry" => (Service::Acr { login_server: s("loginServer")? }, true),
        "automation" => (Service::Automation, true),
        "web-app" | "function-app" => match (s("defaultHostName"), s("healthCheckPath")) {
            (Some(host), Some(path)) => (Service::Http { host, path }, true),
            // No health check path configured: nothing to ask, so it cannot fail the platform.
            _ => (Service::NoApi, false),
        },
        "app-gateway" => {
            let host = s("frontendFqdn")?;
            let path = properties
                .get("probePaths")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_owned();
            (Service::Http { host, path }, true)
        }
        // kube-apiserver's readiness endpoint is anonymous.
        "kubernetes" => (Service::Http { host: s("fqdn")?, path: "/readyz".into() }, true),
        "search" | "ai-foundry" => (Service::NoApi, false),
        _ => return None,
    })
}

/// A probe's verdict.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: State,
    pub observed: Option<String>,
    pub reason: String,
    pub code: Option<String>,
}

impl Outcome {
    pub fn healthy(observed: impl Into<String>, reason: impl Into<String>) -> Outcome {
        Outcome { state: State::Healthy, observed: Some(observed.into()), reason: reason.into(), code: None }
    }

    pub fn unhealthy(reason: impl Into<String>, code: impl Into<String>) -> Outcome {
        Outcome { state: State::Unhealthy, observed: None, reason: reason.into(), code: Some(code.into()) }
    }

    pub fn azure(e: &crate::azure::AzureError) -> Outcome {
        Outcome::unhealthy(e.to_string(), e.code())
    }
}

/// Runs one service probe.
pub async fn run(ctx: &Context, cfg: &HealthConfig, service: &Service) -> Outcome {
    match service {
        Service::KeyVault => match ctx.vault.get(&cfg.canary_secret).await {
            // The value is dropped unread: only that it could be read matters.
            Ok(_) => Outcome::healthy("readable", format!("secret {} read", cfg.canary_secret)),
            Err(e) => Outcome::azure(&e),
        },
        Service::Blob => match ctx.container(&ctx.config.artifact_container) {
            Ok(c) => match c.list_page(5).await {
                Ok(n) => Outcome::healthy(
                    format!("{n} blobs on the first page"),
                    format!("container {} listed", ctx.config.artifact_container),
                ),
                Err(e) => Outcome::azure(&e),
            },
            Err(e) => Outcome::azure(&e),
        },
        Service::Postgres => postgres(ctx, cfg).await,
        Service::Acr { login_server } => acr(ctx, cfg, login_server).await,
        Service::Automation => automation(ctx, cfg).await,
        Service::Http { host, path } => http(ctx, cfg, host, path).await,
        Service::NoApi => Outcome {
            state: State::Unknown,
            observed: None,
            reason: "the service has no anonymous health API; only DNS, TCP and TLS are checked".into(),
            code: None,
        },
    }
}

async fn postgres(ctx: &Context, cfg: &HealthConfig) -> Outcome {
    let db = match crate::phases::database::connect_settings(ctx, &cfg.database).await {
        Ok(db) => db,
        Err(e) => return Outcome::unhealthy(e.to_string(), e.code_and_resource().0),
    };
    let mut conn = match db.connect("vibedata-bootstrap health").await {
        Ok(c) => c,
        Err(e) => return Outcome::unhealthy(e.to_string(), e.code()),
    };
    let one: Result<i32, _> = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await;
    let versions = |table: &'static str| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM vibedata_bootstrap.{table} WHERE success ORDER BY version"
        )))
    };
    let registry = versions("registry_migrations").fetch_all(&mut conn).await;
    let release = versions("release_migrations").fetch_all(&mut conn).await.unwrap_or_default();
    let _ = sqlx::Connection::close(conn).await;
    match (one, registry) {
        (Ok(1), Ok(applied)) => {
            let shipped: Vec<i64> = crate::db::migrations::embedded().migrations.iter().map(|m| m.version()).collect();
            let observed = format!(
                "select 1 = 1; registry schema {:?}; release migrations: {} (latest {})",
                applied,
                release.len(),
                release.last().map(|v| v.to_string()).unwrap_or_else(|| "none".into())
            );
            if shipped.iter().all(|v| applied.contains(v)) {
                Outcome::healthy(observed, format!("{} answers and its schema is current", db.target()))
            } else {
                Outcome { state: State::Degraded, observed: Some(observed), reason: format!("the registry schema lacks migrations this binary ships ({shipped:?}); run `vibedata-bootstrap run database`"), code: Some("RegistrySchemaBehind".into()) }
            }
        }
        (Ok(_), _) | (Err(_), _) => Outcome::unhealthy(
            format!("{} did not answer select 1 or has no migration tables", db.target()),
            "PostgresError",
        ),
    }
}

async fn acr(ctx: &Context, cfg: &HealthConfig, login_server: &str) -> Outcome {
    let auth_endpoint = match cfg
        .acr_auth_endpoint
        .clone()
        .map(Ok)
        .unwrap_or_else(|| url::Url::parse(&format!("https://{login_server}")))
    {
        Ok(u) => u,
        Err(e) => return Outcome::unhealthy(format!("{login_server}: {e}"), "BadLoginServer"),
    };
    let identity = AcrIdentity {
        tokens: ctx.tokens.clone(),
        aad_scope: ctx.config.cloud.arm_scope(),
        auth_endpoint,
        tenant: ctx.config.tenant_id.clone(),
    };
    let opts =
        RegistryOptions { ca_file: ctx.config.ca_file.clone(), timeout: Some(cfg.timeout), policy: ctx.policy.clone() };
    let registry = match Registry::new(login_server, Credentials::AcrIdentity(identity), ctx.http.clone(), &opts) {
        Ok(r) => r,
        Err(e) => return Outcome::unhealthy(e.to_string(), e.code()),
    };
    match registry.ping().await {
        Ok(()) => Outcome::healthy("GET /v2/ 200", format!("{login_server} accepted a registry token")),
        Err(e) => Outcome::unhealthy(e.to_string(), e.code()),
    }
}

/// The runbooks of the current release, from artifact storage, verified like every phase reads
/// it (`None` when there is none yet).
async fn manifest_runbooks(ctx: &Context) -> Result<Option<(String, Vec<String>)>, PhaseError> {
    Ok(StoredRelease::current(ctx)
        .await?
        .map(|r| (r.release, r.manifest.runbooks.into_iter().map(|rb| rb.name).collect())))
}

async fn automation(ctx: &Context, cfg: &HealthConfig) -> Outcome {
    let wanted = match manifest_runbooks(ctx).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            return Outcome {
                state: State::Unknown,
                observed: None,
                reason: "artifact storage holds no release, so no runbook is expected yet".into(),
                code: None,
            }
        }
        Err(e) => {
            return Outcome::unhealthy(format!("cannot read the release's runbook list: {e}"), "ReleaseUnreadable")
        }
    };
    let account = Automation::new(
        ctx.arm.clone(),
        &ctx.config.subscription_id,
        &ctx.config.resource_group,
        &cfg.automation_account,
    );
    let runbooks = match account.runbooks().await {
        Ok(r) => r,
        Err(e) => return Outcome::azure(&e),
    };
    let (release, names) = wanted;
    let not_published: Vec<String> = names
        .iter()
        .filter_map(|n| match runbooks.iter().find(|r| r.name.eq_ignore_ascii_case(n)) {
            Some(r) if r.is_published() => None,
            Some(r) => Some(format!("{n} ({})", r.state())),
            None => Some(format!("{n} (missing)")),
        })
        .collect();
    let observed = format!("{}/{} Published", names.len() - not_published.len(), names.len());
    if not_published.is_empty() {
        Outcome::healthy(observed, format!("every runbook of release {release} is Published"))
    } else {
        Outcome {
            state: State::Unhealthy,
            observed: Some(observed),
            reason: format!("not Published: {}", not_published.join(", ")),
            code: Some("RunbookNotPublished".into()),
        }
    }
}

async fn http(ctx: &Context, cfg: &HealthConfig, host: &str, path: &str) -> Outcome {
    let ip: IpAddr = match net::resolve(cfg.dns_server, host, cfg.timeout).await {
        Ok(ips) if !ips.is_empty() => ips[0],
        Ok(_) => return Outcome::unhealthy(format!("{host} has no address"), "DnsNoAddress"),
        Err(e) => return Outcome::unhealthy(format!("{host}: {e}"), "DnsFailed"),
    };
    let port = cfg.endpoint_ports.get(&host.to_ascii_lowercase()).copied().unwrap_or(443);
    match net::http_get(host, port, path, ip, ctx.config.ca_file.as_deref(), cfg.timeout).await {
        Ok((status, body)) => {
            let word = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned));
            let from_body = word.as_deref().and_then(State::from_word);
            let observed = format!("HTTP {status}{}", word.as_deref().map(|w| format!(" {w}")).unwrap_or_default());
            let state = match (status, from_body) {
                (200..=299, Some(s)) => s,
                (200..=299, None) => State::Healthy,
                (_, _) => State::Unhealthy,
            };
            let code = (state != State::Healthy).then(|| format!("Http{status}"));
            Outcome { state, observed: Some(observed), reason: format!("GET https://{host}{path}"), code }
        }
        Err(e) => Outcome::unhealthy(format!("GET https://{host}{path}: {e}"), "HttpFailed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_per_role() {
        assert_eq!(service_for("key-vault", &json!({})), Some((Service::KeyVault, true)));
        assert_eq!(
            service_for("web-app", &json!({"defaultHostName": "a.azurewebsites.net", "healthCheckPath": "/health"})),
            Some((Service::Http { host: "a.azurewebsites.net".into(), path: "/health".into() }, true))
        );
        assert_eq!(service_for("web-app", &json!({"defaultHostName": "a"})), Some((Service::NoApi, false)));
        assert_eq!(
            service_for("kubernetes", &json!({"fqdn": "k"})),
            Some((Service::Http { host: "k".into(), path: "/readyz".into() }, true))
        );
        assert_eq!(service_for("search", &json!({})), Some((Service::NoApi, false)));
        assert_eq!(service_for("identity", &json!({})), None);
    }
}
