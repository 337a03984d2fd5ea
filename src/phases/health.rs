//! Health Bootstrap (RFC-60 phase 15): check every component the registry recorded — DNS, TCP
//! and TLS per endpoint, then a service probe — and record the results, with history, and the
//! current status in the registry.
//!
//! The plan is the checks themselves (reads only); recording is the apply. `changes` counts
//! status transitions (DESIGN §3), so a rerun with the same results is `unchanged`. The run
//! fails (exit 1) when the overall status is at least as bad as `VIBEDATA_HEALTH_FAIL_ON`
//! (default Unhealthy); the outputs still carry the overall status and the failing checks.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::preflight::Check;
use super::{Env, Phase, Plan, Report};
use crate::cloud::Cloud;
use crate::config::{Config, FailOn, HealthConfig, Validator};
use crate::context::Context;
use crate::error::{Code, PhaseError};
use crate::sequence::Step;
use model::{CheckResult, State};
use probes::{Outcome, Service};
use record::{Endpoint, Target};

pub mod model;
pub mod net;
pub mod probes;
pub mod record;
pub mod release;

pub struct Health;

/// One check to run.
#[derive(Debug, Clone)]
enum Kind {
    Dns(Endpoint),
    Tcp(Endpoint),
    Tls(Endpoint),
    Service(Service),
    /// An object the release deployed inside the component, with the component's properties.
    Object(crate::phases::registry::model::ObjectRow, Value),
}

#[derive(Debug, Clone)]
struct Planned {
    component: String,
    name: String,
    required: bool,
    kind: Kind,
}

/// Pure: the checks of every component, in a stable order.
fn plan(targets: &[Target], cfg: &HealthConfig) -> Vec<Planned> {
    let mut out = Vec::new();
    for t in targets {
        let mut add = |name: String, required: bool, kind: Kind| {
            out.push(Planned { component: t.name.clone(), name, required, kind })
        };
        for e in &t.endpoints {
            let port = port(cfg, e);
            add(format!("dns:{}", e.fqdn), true, Kind::Dns(e.clone()));
            add(format!("tcp:{}:{port}", e.fqdn), true, Kind::Tcp(e.clone()));
            add(format!("tls:{}:{port}", e.fqdn), true, Kind::Tls(e.clone()));
        }
        if let Some((service, required)) = t.role.as_deref().and_then(|r| probes::service_for(r, &t.properties)) {
            let what = match &service {
                Service::KeyVault => "key-vault-canary",
                Service::Blob => "blob-list",
                Service::Postgres => "postgres-query",
                Service::Acr { .. } => "registry-token",
                Service::Automation => "runbooks-published",
                Service::Http { .. } => "http-health",
                Service::NoApi => "none",
            };
            add(format!("service:{what}"), required, Kind::Service(service));
        }
        for o in &t.objects {
            add(format!("{}:{}", o.kind, o.name), true, Kind::Object(o.clone(), t.properties.clone()));
        }
    }
    out
}

/// The port a name is served on: the override (the local stack's) or the registered one.
fn port(cfg: &HealthConfig, e: &Endpoint) -> u16 {
    cfg.endpoint_ports.get(&e.fqdn.to_ascii_lowercase()).copied().unwrap_or(e.port)
}

async fn run_one(
    ctx: &Context,
    cfg: &HealthConfig,
    tls: &Arc<tokio_rustls::rustls::ClientConfig>,
    p: &Planned,
) -> CheckResult {
    let started = Instant::now();
    // TCP and TLS go to the registered address, not the resolved one: a wrong DNS record is the
    // DNS check's finding, and must not turn every other check into a timeout.
    let addr = |e: &Endpoint| e.ip.map(|ip| SocketAddr::new(ip, port(cfg, e)));
    let work = async {
        match &p.kind {
            Kind::Dns(e) => dns(cfg, e).await,
            Kind::Tcp(e) => match addr(e) {
                Some(a) => match net::tcp(a, cfg.timeout).await {
                    Ok(_) => Outcome::healthy(a.to_string(), "connected"),
                    Err(err) => Outcome::unhealthy(format!("{a}: {err}"), "TcpConnectFailed"),
                },
                None => Outcome {
                    state: State::Unknown,
                    observed: None,
                    reason: "no registered address".into(),
                    code: None,
                },
            },
            Kind::Tls(e) => match addr(e) {
                Some(a) => {
                    let sni = public_name(&e.fqdn);
                    match net::tls(a, &sni, e.protocol == "postgres", tls.clone(), cfg.timeout).await {
                        Ok(version) => Outcome::healthy(version, format!("verified certificate for {sni}")),
                        Err(err) => Outcome::unhealthy(format!("{a} as {sni}: {err}"), "TlsHandshakeFailed"),
                    }
                }
                None => Outcome {
                    state: State::Unknown,
                    observed: None,
                    reason: "no registered address".into(),
                    code: None,
                },
            },
            Kind::Service(s) => probes::run(ctx, cfg, s).await,
            Kind::Object(o, host) => release::check(ctx, host, o).await,
        }
    };
    let limit = if matches!(p.kind, Kind::Object(..)) { release::LIMIT } else { cfg.timeout * 2 };
    let o = tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Outcome::unhealthy(format!("no verdict within {limit:?}"), "CheckTimedOut"));
    CheckResult {
        component: p.component.clone(),
        name: p.name.clone(),
        required: p.required,
        state: o.state,
        observed: o.observed,
        reason: o.reason,
        code: o.code,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The name a client presents for a private endpoint's address: the public one, which CNAMEs to
/// the `privatelink` record (runtime-contracts §5.3), since services' certificates name the
/// public host (`*.blob.core.windows.net`). It is the record's name without the `privatelink`
/// label, except Key Vault, whose zone `privatelink.vaultcore.<suffix>` serves `vault.<suffix>`.
fn public_name(fqdn: &str) -> String {
    match fqdn.split_once(".privatelink.") {
        Some((host, zone)) => format!(
            "{host}.{}",
            zone.strip_prefix("vaultcore.").map(|z| format!("vault.{z}")).unwrap_or_else(|| zone.to_owned())
        ),
        None => fqdn.to_owned(),
    }
}

async fn dns(cfg: &HealthConfig, e: &Endpoint) -> Outcome {
    match net::resolve(cfg.dns_server, &e.fqdn, cfg.timeout).await {
        Ok(ips) => {
            let observed = ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",");
            match e.ip {
                Some(want) if ips.contains(&want) => {
                    Outcome::healthy(observed, format!("resolves to the registered {want}"))
                }
                Some(want) => Outcome {
                    state: State::Unhealthy,
                    observed: Some(observed.clone()),
                    reason: format!(
                        "resolves to {}, the registry says {want}",
                        if observed.is_empty() { "nothing" } else { &observed }
                    ),
                    code: Some("DnsMismatch".into()),
                },
                None => Outcome {
                    state: State::Unknown,
                    observed: Some(observed),
                    reason: "no registered address to compare with".into(),
                    code: None,
                },
            }
        }
        Err(err) => {
            let code = if err == net::DnsError::NxDomain { "DnsNxDomain" } else { "DnsFailed" };
            Outcome {
                state: State::Unhealthy,
                observed: Some(err.to_string()),
                reason: format!("{} does not resolve: {err}", e.fqdn),
                code: Some(code.into()),
            }
        }
    }
}

/// What the plan hands the apply: the results, to be recorded.
pub struct Work {
    db: crate::db::Db,
    arm_ids: BTreeMap<String, String>,
    results: Vec<CheckResult>,
    components: Vec<model::Component>,
    overall: State,
    failing: Vec<Value>,
}

#[async_trait]
impl Phase for Health {
    type Config = HealthConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Health
    }

    fn configure(&self, v: &mut Validator<'_>, _cloud: &Cloud) -> HealthConfig {
        v.health()
    }

    fn scopes(&self, cfg: &HealthConfig, shared: &Config) -> Vec<String> {
        super::database::scopes(&cfg.database, shared)
    }

    async fn checks(&self, env: &Env<'_, HealthConfig>) -> Vec<Check> {
        // Before `run database` and `run registry` there is nothing to check yet; a preflight of
        // every phase runs first, so that is not a failure here (the run stops on it instead).
        let started = Instant::now();
        let name = "registry for health checks";
        vec![match super::registry::schema_present(env.ctx, &env.cfg.database).await {
            Ok((target, true)) => Check::pass(name, format!("{target} holds the registry"), started),
            Ok((target, false)) => Check::pass(
                name,
                format!("{target} has no registry yet; `run database` and `run registry` record it"),
                started,
            ),
            Err(e) => Check::failed(name, Code::PostgresUnreachable, "registry", e.to_string(), started),
        }]
    }

    /// The checks themselves are the plan: probes are reads, and the changes are the status
    /// transitions that recording their results would make.
    async fn plan(&self, env: &Env<'_, HealthConfig>) -> Result<Plan<Work>, PhaseError> {
        let (ctx, cfg) = (env.ctx, env.cfg);
        let db = super::database::connect_settings(ctx, &cfg.database).await?;
        let (target, present) = super::registry::schema_present(ctx, &cfg.database).await?;
        if !present {
            return Err(super::registry::schema_missing(&target));
        }
        let mut conn = db.connect("vibedata-bootstrap health").await?;
        let targets = record::targets(&mut conn).await?;
        if targets.is_empty() {
            return Err(PhaseError::failed(
                Code::RegistryEmpty,
                db.target(),
                "the registry holds no components; run `vibedata-bootstrap run registry` first",
            ));
        }
        let planned = plan(&targets, cfg);
        let tls = net::tls_config(ctx.config.ca_file.as_deref())
            .map_err(|e| PhaseError::failed(Code::LocalError, "tls", e.to_string()))?;
        tracing::info!(components = targets.len(), checks = planned.len(), resolver = %resolver(cfg), "running health checks");
        let total = planned.len();
        let mut done = 0usize;
        let runs: Vec<_> = planned.iter().map(|p| run_one(ctx, cfg, &tls, p)).collect();
        let mut stream = futures::stream::iter(runs).buffer_unordered(cfg.concurrency);
        let mut results = Vec::with_capacity(total);
        while let Some(r) = stream.next().await {
            done += 1;
            if r.state != State::Healthy {
                tracing::warn!(component = %r.component, check = %r.name, state = ?r.state, reason = %r.reason, "checked {done}/{total}: {} {} is {:?}", r.component, r.name, r.state);
            } else {
                tracing::info!(component = %r.component, check = %r.name, "checked {done}/{total}");
            }
            results.push(r);
        }
        drop(stream);
        results.sort_by(|a, b| (&a.component, &a.name).cmp(&(&b.component, &b.name)));
        let types: BTreeMap<String, String> =
            targets.iter().map(|t| (t.name.clone(), t.resource_type.clone())).collect();
        let (components, overall) = model::components(&results, &|n| types.get(n).cloned().unwrap_or_default());
        let arm_ids: BTreeMap<String, String> = targets.iter().map(|t| (t.name.clone(), t.arm_id.clone())).collect();
        let changes = record::planned(&mut conn, &results, &components, overall).await;
        let _ = sqlx::Connection::close(conn).await;
        let changes = changes?;
        let failing: Vec<Value> = results
            .iter()
            .filter(|r| r.contribution() != State::Healthy)
            .map(|r| json!({"component": r.component, "check": r.name, "state": r.state, "required": r.required, "observed": r.observed, "reason": r.reason, "code": r.code}))
            .collect();
        let work = Work { db, arm_ids, results, components, overall, failing };
        let summary = summary(cfg, &work, changes.len() as u64);
        Ok(Plan::new(changes, summary, work))
    }

    async fn apply(&self, env: &Env<'_, HealthConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let work = plan.work;
        let cfg = env.cfg;
        let mut conn = work.db.connect("vibedata-bootstrap health").await?;
        let made = record::record(
            &mut conn,
            &env.config().deployment_id,
            &work.arm_ids,
            &work.results,
            &work.components,
            work.overall,
        )
        .await;
        let _ = sqlx::Connection::close(conn).await;
        let made = made?;
        let transitions = made.len() as u64;
        for change in made {
            env.changed(change);
        }
        let overall = work.overall;
        tracing::info!(overall = ?overall, transitions, "health: {:?}; {transitions} status transitions", overall);
        let summary = summary(cfg, &work, transitions);
        let fails = match cfg.fail_on {
            FailOn::Unhealthy => overall == State::Unhealthy,
            FailOn::Degraded => overall >= State::Degraded,
            FailOn::Never => false,
        };
        if fails {
            let first = work
                .failing
                .first()
                .map(|f| {
                    format!(
                        "{}/{}: {}",
                        f["component"].as_str().unwrap_or(""),
                        f["check"].as_str().unwrap_or(""),
                        f["reason"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            let message = format!("the platform is {overall:?}: {} checks failing; first: {first}", work.failing.len());
            return Err(PhaseError::Unhealthy { message, summary: Box::new(summary) });
        }
        Ok(Report { summary })
    }
}

fn resolver(cfg: &HealthConfig) -> String {
    cfg.dns_server.map(|s| s.to_string()).unwrap_or_else(|| "system".into())
}

fn summary(cfg: &HealthConfig, work: &Work, transitions: u64) -> Value {
    json!({
        "overall": work.overall,
        "components": work.components,
        "checks": work.results.len(),
        "failing": work.failing,
        "transitions": transitions,
        "resolver": resolver(cfg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_gets_dns_tcp_tls_and_the_component_its_probe() {
        let e = Endpoint {
            fqdn: "kv.privatelink.vaultcore.azure.net".into(),
            ip: Some("10.0.0.4".parse().unwrap()),
            port: 443,
            protocol: "https".into(),
        };
        let t = Target {
            arm_id: "/s/kv".into(),
            name: "kv".into(),
            resource_type: "Microsoft.KeyVault/vaults".into(),
            role: Some("key-vault".into()),
            properties: json!({}),
            endpoints: vec![e],
            objects: vec![],
        };
        let mut cfg = crate::config::HealthConfig {
            canary_secret: "c".into(),
            automation_account: "aa".into(),
            dns_server: None,
            endpoint_ports: BTreeMap::from([("kv.privatelink.vaultcore.azure.net".to_owned(), 18401)]),
            fail_on: FailOn::Unhealthy,
            timeout: std::time::Duration::from_secs(1),
            concurrency: 1,
            acr_auth_endpoint: None,
            database: crate::config::DatabaseConfig {
                host: "pg".into(),
                port: 5432,
                database: "vibedata".into(),
                user: "u".into(),
                auth: crate::config::DbAuth::Entra,
                verify_full: true,
                lock_timeout: std::time::Duration::from_secs(1),
            },
        };
        let names: Vec<String> = plan(std::slice::from_ref(&t), &cfg).into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "dns:kv.privatelink.vaultcore.azure.net",
                "tcp:kv.privatelink.vaultcore.azure.net:18401",
                "tls:kv.privatelink.vaultcore.azure.net:18401",
                "service:key-vault-canary"
            ]
        );
        assert_eq!(public_name("st.privatelink.blob.core.windows.net"), "st.blob.core.windows.net");
        assert_eq!(public_name("kv.privatelink.vaultcore.usgovcloudapi.net"), "kv.vault.usgovcloudapi.net");
        assert_eq!(public_name("aks-dns.hcp.eastus.azmk8s.io"), "aks-dns.hcp.eastus.azmk8s.io");
        cfg.endpoint_ports.clear();
        assert_eq!(
            plan(&[t], &cfg)[1].name,
            "tcp:kv.privatelink.vaultcore.azure.net:443",
            "without an override, the registered port"
        );
    }
}
