//! Preflight: harmless reads that prove a run can succeed before it mutates anything.
//!
//! Not an RFC-60 phase. Every `run <phase>` runs the shared checks plus that phase's own; `run
//! preflight` runs the checks of every built phase at once.

use std::time::Instant;

use serde::Serialize;

use crate::azure::permission::{matches, Kind, Permission};
use crate::azure::AzureError;
use crate::context::Context;

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub duration_ms: u64,
    /// The Azure error code of a failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>, started: Instant) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            duration_ms: started.elapsed().as_millis() as u64,
            code: None,
            resource: None,
        }
    }

    pub fn fail(name: impl Into<String>, error: &AzureError, started: Instant) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: error.detail(),
            duration_ms: started.elapsed().as_millis() as u64,
            code: Some(error.code().to_owned()),
            resource: Some(error.resource().to_owned()),
        }
    }

    /// A failed check with our own code, for failures that are not one Azure call.
    pub fn failed(
        name: impl Into<String>,
        code: impl std::fmt::Display,
        resource: impl Into<String>,
        detail: impl Into<String>,
        started: Instant,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            duration_ms: started.elapsed().as_millis() as u64,
            code: Some(code.to_string()),
            resource: Some(resource.into()),
        }
    }

    /// Runs `probe` and records how it went.
    pub async fn run<F, T>(name: impl Into<String>, probe: F, describe: impl FnOnce(T) -> String) -> Check
    where
        F: std::future::Future<Output = Result<T, AzureError>>,
    {
        let name = name.into();
        let started = Instant::now();
        let check = match probe.await {
            Ok(v) => Check::pass(name, describe(v), started),
            Err(e) => Check::fail(name, &e, started),
        };
        if check.ok {
            tracing::info!(check = %check.name, ms = check.duration_ms, "preflight ok: {}: {}", check.name, check.detail);
        } else {
            tracing::error!(check = %check.name, ms = check.duration_ms, "preflight FAILED: {}: {}", check.name, check.detail);
        }
        check
    }
}

/// The checks every run needs: a token per audience, ARM, the ledger, the Key Vault.
/// How the ledger check proves access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerProbe {
    /// Write a probe blob: a run that will write its ledger record anyway.
    Write,
    /// Only prove reachability: a run that mutates nothing, not even bookkeeping.
    Read,
}

pub async fn shared(ctx: &Context, extra_scopes: &[String], ledger_probe: LedgerProbe) -> Vec<Check> {
    let cfg = &ctx.config;
    let mut checks = vec![Check::pass("configuration", "complete and valid", Instant::now())];

    let mut scopes = vec![cfg.cloud.arm_scope(), cfg.cloud.storage_scope().to_owned(), cfg.cloud.vault_scope()];
    scopes.extend(extra_scopes.iter().cloned());
    scopes.dedup();
    for scope in scopes {
        checks.push(Check::run(format!("token {scope}"), ctx.tokens.token(&scope), |_| "obtained".to_owned()).await);
    }

    let rg = cfg.resource_group_id();
    checks.push(
        Check::run(
            "resource manager",
            ctx.arm.get::<serde_json::Value>(&rg, "2021-04-01", &crate::azure::arm::GROUP_READ),
            |v| {
                format!(
                    "read {} ({})",
                    rg,
                    v.pointer("/properties/provisioningState").and_then(|s| s.as_str()).unwrap_or("no state")
                )
            },
        )
        .await,
    );

    let ledger = ctx.ledger.container().clone();
    let deployment = cfg.deployment_id.clone();
    checks.push(
        Check::run(
            "ledger",
            async move {
                if ledger_probe == LedgerProbe::Read {
                    // A dry run mutates nothing, not even bookkeeping: prove reachability only.
                    return ledger.exists().await.map(|e| {
                        if e {
                            "container exists (dry run: not written)"
                        } else {
                            "container absent; a real run creates it"
                        }
                    });
                }
                ledger.ensure().await?;
                let probe = format!("deployments/{deployment}/preflight.json");
                let body = serde_json::json!({"checkedAt": crate::outputs::now_rfc3339(), "binary": crate::VERSION});
                ledger.put(&probe, bytes::Bytes::from(body.to_string()), "application/json", None).await?;
                Ok("container writable")
            },
            |d| format!("{}: {d}", ctx.ledger.container().name()),
        )
        .await,
    );

    checks.push(Check::run("key vault", ctx.vault.probe(), |_| format!("{} readable", cfg.key_vault_url)).await);
    checks
}

/// What reading the identity's effective permissions needs (`Permissions_ListForResourceGroup`).
pub const PERMISSIONS_READ: Permission =
    Permission::action("Microsoft.Authorization/permissions/read", "Microsoft.Resources/resourceGroups");

/// The effective-permissions check: the identity's permissions at the resource group (ARM's
/// `GET {group}/providers/Microsoft.Authorization/permissions`) against what `step` needs.
/// Advisory: it passes and names what is missing, because assignments on a single resource, and
/// deny assignments, are not in the group's answer; the call that needs a missing permission
/// fails on its own, naming the action.
pub async fn effective_permissions(ctx: &Context, step: crate::sequence::Step) -> Check {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Grant {
        actions: Vec<String>,
        not_actions: Vec<String>,
        data_actions: Vec<String>,
        not_data_actions: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct List {
        value: Vec<Grant>,
    }
    let path = format!("{}/providers/Microsoft.Authorization/permissions", ctx.config.resource_group_id());
    let read = ctx.arm.get::<List>(&path, "2022-04-01", &PERMISSIONS_READ);
    Check::run("effective permissions", read, |list| {
        let grants = |kind: Kind, name: &str| {
            list.value.iter().any(|g| {
                let (allow, deny) = match kind {
                    Kind::Action => (&g.actions, &g.not_actions),
                    _ => (&g.data_actions, &g.not_data_actions),
                };
                allow.iter().any(|a| matches(a, name)) && !deny.iter().any(|d| matches(d, name))
            })
        };
        let needs = crate::phases::permissions::of(step);
        let missing: Vec<&str> = needs
            .iter()
            .filter(|n| n.permission.kind != Kind::NoRbac && !n.permission.name.contains('*'))
            .filter(|n| !grants(n.permission.kind, n.permission.name))
            .map(|n| n.permission.name)
            .collect();
        if missing.is_empty() {
            format!("every one of {} permissions is granted at the group", needs.len())
        } else {
            tracing::warn!(
                missing = missing.len(),
                "not granted at the group (may be granted on the resource): {}",
                missing.join(", ")
            );
            format!("not granted at the group (may be granted on the resource): {}", missing.join(", "))
        }
    })
    .await
}
