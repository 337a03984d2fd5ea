//! Airbyte Deployment (RFC-60 phase 11, step 2): the release's Airbyte chart onto the private AKS
//! cluster, through ARM `runCommand` (the API server is private; `azure-reference/specs/aks-runcommand.md`).
//!
//! The plan reads everything first: the chart from the customer registry by the digest the
//! release pins, the platform's Postgres (Airbyte's role and database), the Key Vault secret with
//! its password, the storage account's key (`listKeys`) and containers, and the release's state
//! in the cluster (a read-only `helm status` / `helm get values` command). A release deployed with
//! the same chart digest and values digest is `unchanged` and gets no install command. A command
//! an earlier, killed run started is polled to its end before anything is judged: only then is a
//! `pending-install`/`pending-upgrade` release stale, and recovered (uninstall or rollback) before
//! the install. Every submitted command's id goes into the ledger before it is polled.

mod bundle;
pub mod values;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};

use super::preflight::Check;
use super::{Change, Env, Phase, Plan, Report, Steps};
use crate::azure::aks::{Aks, CommandResult, Submitted, AAD_SERVER_APP};
use crate::azure::blob::Container;
use crate::azure::identity::Secret;
use crate::azure::AzureError;
use crate::cloud::Cloud;
use crate::config::{AirbyteConfig, Config, Validator};
use crate::context::Context;
use crate::db::provision::{self, Present};
use crate::error::{Code, PhaseError};
use crate::oci::{AcrIdentity, Credentials, Registry, RegistryOptions};
use crate::release::{self, ChartEntry};
use crate::sequence::Step;
use crate::stored_release::StoredRelease;
use values::{Action, Deployed, Inputs};

/// The ledger step that names the command in flight.
const STEP: &str = "runCommand";
/// How often a command that could not be scheduled (`KubernetesPerformanceError`) is submitted again.
const SCHEDULING_ATTEMPTS: u32 = 3;
/// Read-only commands end in seconds; a cold pod start takes up to a minute.
const PROBE_DEADLINE: Duration = Duration::from_secs(180);
/// A chart far bigger than Airbyte's (~60 kB) is not one.
const MAX_CHART_BYTES: u64 = 8 * 1024 * 1024;

pub struct Airbyte;

/// What the plan hands the apply.
pub struct Work {
    aks: Aks,
    token: Option<Secret>,
    db: crate::db::Db,
    chart: ChartEntry,
    chart_file: String,
    chart_bytes: Bytes,
    release: String,
    password: Option<Secret>,
    present: Present,
    connection_string: Secret,
    missing_containers: Vec<String>,
    action: Action,
    deployed: Option<Deployed>,
    values_digest: String,
}

#[async_trait]
impl Phase for Airbyte {
    type Config = AirbyteConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Airbyte
    }

    fn configure(&self, v: &mut Validator<'_>, cloud: &Cloud) -> AirbyteConfig {
        v.airbyte(cloud)
    }

    fn scopes(&self, cfg: &AirbyteConfig, shared: &Config) -> Vec<String> {
        let mut s = super::database::scopes(&cfg.database, shared);
        s.push(format!("{AAD_SERVER_APP}/.default"));
        s
    }

    async fn checks(&self, env: &Env<'_, AirbyteConfig>) -> Vec<Check> {
        let aks = aks(env);
        let started = std::time::Instant::now();
        let cluster = match aks.get().await {
            Ok(c) if c.run_command_disabled() => Check::failed(
                "AKS cluster",
                Code::RunCommandDisabled,
                aks.id(),
                "runCommand is disabled on the cluster (apiServerAccessProfile.disableRunCommand), the only way into a private cluster",
                started,
            ),
            Ok(_) => Check::pass("AKS cluster", format!("{} readable", aks.id()), started),
            Err(e) => Check::fail("AKS cluster", &e, started),
        };
        vec![cluster]
    }

    async fn plan(&self, env: &Env<'_, AirbyteConfig>) -> Result<Plan<Work>, PhaseError> {
        let (ctx, cfg) = (env.ctx, env.cfg);
        let aks = aks(env);
        let token = cluster_token(ctx, &aks).await?;

        // The chart: the release pins it; the customer registry holds it, by digest.
        let stored = StoredRelease::load(ctx).await?;
        let chart = stored.manifest.charts.iter().find(|c| c.name == cfg.chart).cloned().ok_or_else(|| {
            PhaseError::failed(
                Code::ChartNotFound,
                format!("release {}", stored.release),
                format!("the release pins no chart named {:?} (VIBEDATA_AIRBYTE_CHART)", cfg.chart),
            )
        })?;
        let chart_bytes = pull_chart(ctx, cfg, &chart).await?;
        let chart_file = format!("{}-{}.tgz", chart.name, chart.version);

        // The platform's side: database, role, password, storage.
        let db = super::database::connect_settings(ctx, &cfg.database).await?;
        let present = provision::present(&db, &cfg.database_name, &cfg.database_user).await?;
        let password = ctx.vault.get_opt(&cfg.password_secret).await?;
        let config = env.config();
        let key = crate::azure::storage::first_key(
            &ctx.arm,
            &config.subscription_id,
            &config.resource_group,
            &cfg.storage_account,
        )
        .await?;
        let connection_string =
            crate::azure::storage::connection_string(&cfg.storage_account, &key, &cfg.storage_blob_url);
        let mut missing_containers = Vec::new();
        for name in values::CONTAINERS {
            if !container(env, name)?.exists().await? {
                missing_containers.push(name.to_owned());
            }
        }

        // The cluster's side: first let a command an earlier run left running finish.
        if let Some(previous) = env.steps().previous(STEP) {
            if let Some(id) = previous.get("id").and_then(Value::as_str) {
                let known = Submitted { id: id.to_owned(), location: aks.result_url(id) };
                tracing::info!(
                    command = id,
                    "an earlier run's command {id} is known; waiting for its end before judging the release"
                );
                match aks.wait(&known, cfg.install_timeout + Duration::from_secs(120)).await {
                    Ok(r) => tracing::info!(command = id, succeeded = r.succeeded(), "the earlier command ended"),
                    Err(e) if e.is_not_found() => tracing::info!(command = id, "the earlier command is gone"),
                    Err(e) => tracing::warn!(command = id, error = %e, "the earlier command ended badly"),
                }
            }
        }
        let deployed = probe(&aks, token.as_ref(), &chart, env.steps()).await?;

        // The values we want, and what they digest to (a password not generated yet digests as
        // the empty one, so a missing password always means an install or an upgrade).
        let inputs = inputs(cfg, &stored.release, &chart);
        let pw = password.clone().unwrap_or_else(|| Secret::new(""));
        let values_digest = values::values_digest(&inputs, &[&pw, &connection_string], &pw);
        let needs_password = password.is_none() || !present.role;
        let action = if needs_password {
            fresh_action(deployed.as_ref())
        } else {
            values::decide(deployed.as_ref(), inputs.chart_digest, &values_digest)
        };

        let mut changes = Vec::new();
        if needs_password {
            changes.push(Change::new("key vault secret", cfg.password_secret.clone(), "set"));
        }
        if !present.role {
            changes.push(Change::new("postgres role", cfg.database_user.clone(), "create"));
        } else if needs_password {
            changes.push(Change::new("postgres role", cfg.database_user.clone(), "set password"));
        }
        if !present.database {
            changes.push(Change::new("postgres database", cfg.database_name.clone(), "create"));
        }
        for c in &missing_containers {
            changes.push(Change::new("blob container", format!("{}/{c}", cfg.storage_account), "create"));
        }
        if action != Action::Unchanged {
            changes.push(Change::new("helm release", format!("{}/{}", chart.namespace, chart.name), action.as_str()));
        }
        let summary = json!({
            "cluster": aks.id(),
            "chart": {"name": chart.name, "version": chart.version, "digest": chart.artifact.digest, "namespace": chart.namespace},
            "action": action.as_str(),
            "deployed": deployed.as_ref().map(|d| json!({"status": d.status, "revision": d.revision})),
        });
        let work = Work {
            aks,
            token,
            db,
            chart,
            chart_file,
            chart_bytes,
            release: stored.release,
            password,
            present,
            connection_string,
            missing_containers,
            action,
            deployed,
            values_digest,
        };
        Ok(Plan::new(changes, summary, work))
    }

    async fn apply(&self, env: &Env<'_, AirbyteConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let w = plan.work;
        let cfg = env.cfg;

        // Postgres and its password first: the chart's bootloader connects during the install.
        let (password, fresh) = match (&w.password, w.present.role) {
            (Some(p), true) => (p.clone(), false),
            _ => (provision::generate_password(), true),
        };
        if fresh {
            env.ctx.vault.set(&cfg.password_secret, &password).await?;
            env.changed(Change::new("key vault secret", cfg.password_secret.clone(), "set"));
        }
        let done = provision::ensure(&w.db, &cfg.database_name, &cfg.database_user, &password, fresh).await?;
        if done.role_created {
            env.changed(Change::new("postgres role", cfg.database_user.clone(), "create"));
        }
        if done.password_set {
            env.changed(Change::new("postgres role", cfg.database_user.clone(), "set password"));
        }
        if done.database_created {
            env.changed(Change::new("postgres database", cfg.database_name.clone(), "create"));
        }
        for c in &w.missing_containers {
            if container(env, c)?.ensure().await? {
                env.changed(Change::new("blob container", format!("{}/{c}", cfg.storage_account), "create"));
            }
        }

        let inputs = inputs(cfg, &w.release, &w.chart);
        let values_digest = if fresh {
            values::values_digest(&inputs, &[&password, &w.connection_string], &password)
        } else {
            w.values_digest.clone()
        };
        let mut installed = None;
        if w.action != Action::Unchanged {
            let values = values::values(&inputs, &values_digest);
            let secret =
                values::secret_manifest(&w.chart.namespace, &cfg.database_user, &password, &w.connection_string);
            let context = bundle::install_context(
                &w.chart_file,
                &w.chart_bytes,
                &values,
                &values::namespace_manifest(&w.chart.namespace),
                &secret,
            )
            .map_err(|e| PhaseError::failed(Code::LocalError, &w.chart_file, e.to_string()))?;
            let command = bundle::install_command(
                &w.chart.namespace,
                &w.chart.name,
                cfg.install_timeout.as_secs(),
                &w.chart_file,
                w.action.recover(),
            );
            let deadline = cfg.install_timeout + Duration::from_secs(120);
            let result = run(&w.aks, w.token.as_ref(), "install", &command, &context, deadline, env.steps()).await?;
            env.changed(Change::new(
                "helm release",
                format!("{}/{}", w.chart.namespace, w.chart.name),
                w.action.as_str(),
            ));
            installed = bundle::install_result(result.logs());
            tracing::info!(release = %w.chart.name, namespace = %w.chart.namespace, "{} {} chart {} {}", w.action.as_str(), w.chart.name, w.chart.version, w.chart.artifact.digest);
        }

        // Verify, whether installed now or before.
        let checked = verify(&w.aks, w.token.as_ref(), &w.chart.namespace, &w.chart.name, env.steps()).await?;
        let revision = installed
            .as_ref()
            .and_then(|s| s.get("version").and_then(Value::as_u64))
            .or(w.deployed.as_ref().map(|d| d.revision));
        Ok(Report {
            summary: json!({
                "cluster": w.aks.id(),
                "release": w.release,
                "chart": {"name": w.chart.name, "version": w.chart.version, "digest": w.chart.artifact.digest, "namespace": w.chart.namespace},
                "action": if w.action == Action::Unchanged { "unchanged" } else { w.action.as_str() },
                "revision": revision,
                "status": installed.as_ref().and_then(|s| s.pointer("/info/status").cloned()).unwrap_or_else(|| json!("deployed")),
                "valuesDigest": values_digest,
                "database": {"name": cfg.database_name, "user": cfg.database_user, "passwordSecret": cfg.password_secret},
                "containers": values::CONTAINERS,
                "verified": bundle::tail(checked.logs(), 1),
            }),
        })
    }
}

/// The cluster token runCommand needs when the cluster's API server takes Entra tokens
/// (`aadProfile`); without one the service answers `MissingAADClusterToken`.
pub async fn cluster_token(ctx: &Context, aks: &Aks) -> Result<Option<Secret>, PhaseError> {
    if aks.get().await?.needs_cluster_token() {
        Ok(Some(ctx.tokens.token(&format!("{AAD_SERVER_APP}/.default")).await?))
    } else {
        Ok(None)
    }
}

/// The chart's release as the cluster reports it (`None`: not installed), by a read-only
/// command. Registry Bootstrap records it with the same probe.
pub async fn probe(
    aks: &Aks,
    token: Option<&Secret>,
    chart: &ChartEntry,
    steps: &dyn Steps,
) -> Result<Option<Deployed>, PhaseError> {
    let command = bundle::probe_command(&chart.namespace, &chart.name);
    let probe = run(aks, token, "probe", &command, &[], PROBE_DEADLINE, steps).await?;
    values::parse_probe(probe.logs())
        .map_err(|e| PhaseError::failed(Code::CommandFailed, aks.id(), format!("the release probe's output: {e}")))
}

/// Every deployment of the release's namespace Available, and the server's health endpoint
/// answering, through the cluster (read-only). Health Bootstrap checks Airbyte with it too.
pub async fn verify(
    aks: &Aks,
    token: Option<&Secret>,
    namespace: &str,
    release: &str,
    steps: &dyn Steps,
) -> Result<CommandResult, PhaseError> {
    let command = bundle::verify_command(namespace, release, 120);
    run(aks, token, "verify", &command, &[], PROBE_DEADLINE, steps).await.map_err(|e| match e {
        PhaseError::Failed { code: Code::CommandFailed, resource, message } => {
            PhaseError::failed(Code::AirbyteUnhealthy, resource, message)
        }
        other => other,
    })
}

fn aks(env: &Env<'_, AirbyteConfig>) -> Aks {
    let c = env.config();
    Aks::new(env.ctx.arm.clone(), &c.subscription_id, &c.resource_group, &env.cfg.cluster)
}

fn container(env: &Env<'_, AirbyteConfig>, name: &str) -> Result<Container, AzureError> {
    let ctx = env.ctx;
    Container::new(&env.cfg.storage_blob_url, name, &ctx.http, &ctx.policy, &ctx.tokens)
}

fn inputs<'a>(cfg: &'a AirbyteConfig, release: &'a str, chart: &'a ChartEntry) -> Inputs<'a> {
    Inputs {
        release,
        registry: &cfg.acr_login_server,
        db_host: &cfg.database.host,
        db_port: cfg.database.port,
        db_name: &cfg.database_name,
        chart_digest: &chart.artifact.digest,
    }
}

/// A release whose password is new is installed or upgraded whatever its state says.
fn fresh_action(deployed: Option<&Deployed>) -> Action {
    match values::decide(deployed, "", "") {
        Action::Unchanged => Action::Upgrade,
        other => other,
    }
}

/// The chart's .tgz, pulled by digest from the customer registry and checked to be a Helm chart.
async fn pull_chart(ctx: &Context, cfg: &AirbyteConfig, chart: &ChartEntry) -> Result<Bytes, PhaseError> {
    let identity = AcrIdentity {
        tokens: ctx.tokens.clone(),
        aad_scope: ctx.config.cloud.arm_scope(),
        auth_endpoint: cfg.acr_auth_endpoint.clone(),
        tenant: ctx.config.tenant_id.clone(),
    };
    let opts = RegistryOptions {
        ca_file: ctx.config.ca_file.clone(),
        timeout: Some(ctx.config.http_timeout),
        policy: ctx.policy.clone(),
    };
    let registry = Registry::new(&cfg.acr_login_server, Credentials::AcrIdentity(identity), ctx.http.clone(), &opts)?;
    let repo = &chart.artifact.repository;
    let m = registry.manifest(repo, &chart.artifact.digest).await?;
    let parsed: Value = serde_json::from_slice(&m.bytes).map_err(|e| {
        PhaseError::bad_input(format!("{repo}@{}", chart.artifact.digest), format!("not an OCI manifest: {e}"))
    })?;
    let bad = |message: String| PhaseError::bad_input(format!("{repo}@{}", chart.artifact.digest), message);
    if parsed.pointer("/config/mediaType").and_then(Value::as_str) != Some(release::HELM_CONFIG_TYPE) {
        return Err(bad(format!("its config is not {}: not a Helm chart", release::HELM_CONFIG_TYPE)));
    }
    let layers: Vec<&Value> = parsed["layers"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let content: Vec<&&Value> =
        layers.iter().filter(|l| l["mediaType"].as_str() == Some(release::HELM_CHART_LAYER_TYPE)).collect();
    let [layer] = content.as_slice() else {
        return Err(bad(format!(
            "it has {} layers of {}, expected one",
            content.len(),
            release::HELM_CHART_LAYER_TYPE
        )));
    };
    let digest = layer["digest"].as_str().unwrap_or_default();
    Ok(registry.blob_bytes(repo, digest, MAX_CHART_BYTES).await?)
}

/// Submits a command, records its id in the ledger, waits for its end, and requires success.
/// A pod that could not be scheduled in time (`KubernetesPerformanceError`) is submitted again
/// with backoff; anything else is final.
async fn run(
    aks: &Aks,
    token: Option<&Secret>,
    purpose: &str,
    command: &str,
    context: &[u8],
    deadline: Duration,
    steps: &dyn Steps,
) -> Result<CommandResult, PhaseError> {
    let mut backoff = Duration::from_secs(5);
    for attempt in 1..=SCHEDULING_ATTEMPTS {
        // The service reports an unschedulable command pod on the POST itself or on a poll.
        let submitted = match aks.submit(command, context, token).await {
            Err(AzureError::Service { code, .. })
                if code == "KubernetesPerformanceError" && attempt < SCHEDULING_ATTEMPTS =>
            {
                tracing::warn!(
                    attempt,
                    "the {purpose} command's pod could not be scheduled; submitting again in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            Err(AzureError::Service { status: 413, resource, .. }) => {
                return Err(PhaseError::failed(
                    Code::Other("RequestEntityTooLarge".into()),
                    resource,
                    format!(
                        "ARM refused the {purpose} command as too large (413 Request Entity Too Large): its context zip is {} bytes",
                        context.len()
                    ),
                ))
            }
            Err(AzureError::Service { code, message, resource, .. }) if code == "MissingAADClusterToken" => {
                let sent = if token.is_some() {
                    "the token sent was not taken"
                } else {
                    "none was sent, because the cluster's aadProfile in ARM does not say it is Entra-managed"
                };
                return Err(PhaseError::failed(
                    Code::Other(code),
                    resource,
                    format!("the cluster wants an Entra cluster token for runCommand and {sent}: {message}"),
                ));
            }
            other => other?,
        };
        steps.record(STEP, json!({"id": submitted.id, "purpose": purpose})).await?;
        tracing::info!(command = %submitted.id, purpose, "runCommand {purpose} submitted as {}", submitted.id);
        match aks.wait(&submitted, deadline).await {
            Ok(r) if r.succeeded() => return Ok(r),
            Ok(r) => {
                let truncated = if r.logs_truncated() { " (logs truncated at 512 kB)" } else { "" };
                return Err(PhaseError::failed(
                    Code::CommandFailed,
                    format!("{}/commandResults/{}", aks.id(), submitted.id),
                    format!(
                        "the {purpose} command ended {} with exit code {}{truncated}: {}",
                        r.properties.provisioning_state.as_deref().unwrap_or("?"),
                        r.properties.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
                        bundle::tail(r.logs(), 3)
                    ),
                ));
            }
            Err(AzureError::OperationFailed { code, .. })
                if code == "KubernetesPerformanceError" && attempt < SCHEDULING_ATTEMPTS =>
            {
                tracing::warn!(command = %submitted.id, attempt, "the {purpose} command's pod was not scheduled in time; submitting again in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(AzureError::OperationFailed { code, message, .. }) => {
                return Err(PhaseError::failed(
                    Code::Other(code),
                    format!("{}/commandResults/{}", aks.id(), submitted.id),
                    format!("the {purpose} command failed: {message}"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}
