//! The health tables: what to check (the registry's components and endpoints), and recording a
//! run — every result appended to the history, the current status per check, per component and
//! overall upserted.
//!
//! History rows are bookkeeping; a status that changes (or appears, or disappears) is a
//! transition, and transitions are the phase's `changes` (DESIGN §3). A rerun with the same
//! results therefore reports `unchanged`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

use super::model::{CheckResult, Component, State};
use crate::db::DbError;
use crate::phases::Change;

/// A registered endpoint to check.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub fqdn: String,
    pub ip: Option<IpAddr>,
    pub port: u16,
    pub protocol: String,
}

/// A registry resource that is a health component: it has endpoints or a service probe.
#[derive(Debug, Clone)]
pub struct Target {
    pub arm_id: String,
    pub name: String,
    pub resource_type: String,
    pub role: Option<String>,
    pub properties: Value,
    pub endpoints: Vec<Endpoint>,
    /// What the registry recorded the release deployed inside this resource.
    pub objects: Vec<crate::phases::registry::model::ObjectRow>,
}

fn q(context: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError::Query { context: context.to_owned(), source }
}

/// The registry's current resources that have a role or an endpoint, with their endpoints.
pub async fn targets(conn: &mut PgConnection) -> Result<Vec<Target>, DbError> {
    let rows = sqlx::query(
        "SELECT r.arm_id, r.name, r.type, r.role, r.properties::text AS properties FROM registry.resources r
         WHERE r.removed_at IS NULL AND (r.role IS NOT NULL OR EXISTS (SELECT 1 FROM registry.endpoints e WHERE e.resource_key = r.resource_key))
         ORDER BY r.name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading the registry's components"))?;
    let endpoints = sqlx::query(
        "SELECT lower(r.arm_id) AS id, e.fqdn, host(e.private_ip) AS ip, e.port, e.protocol FROM registry.endpoints e
         JOIN registry.resources r USING (resource_key) WHERE r.removed_at IS NULL ORDER BY e.fqdn",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading the registry's endpoints"))?;
    let objects = sqlx::query(
        "SELECT kind, host, name, version, digest, state, properties::text AS properties FROM registry.release_objects
         ORDER BY kind, name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading the registry's release objects"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let arm_id: String = r.get("arm_id");
            let mine = endpoints
                .iter()
                .filter(|e| e.get::<String, _>("id") == arm_id.to_ascii_lowercase())
                .map(|e| Endpoint {
                    fqdn: e.get("fqdn"),
                    ip: e.get::<Option<String>, _>("ip").and_then(|s| s.parse().ok()),
                    port: e.get::<i32, _>("port") as u16,
                    protocol: e.get("protocol"),
                })
                .collect();
            Target {
                name: r.get("name"),
                resource_type: r.get("type"),
                role: r.get("role"),
                properties: r.get::<String, _>("properties").parse().unwrap_or(Value::Null),
                endpoints: mine,
                objects: objects
                    .iter()
                    .filter(|o| o.get::<String, _>("host").eq_ignore_ascii_case(&arm_id))
                    .map(|o| crate::phases::registry::model::ObjectRow {
                        kind: o.get("kind"),
                        host: o.get("host"),
                        name: o.get("name"),
                        version: o.get("version"),
                        digest: o.get("digest"),
                        state: o.get("state"),
                        properties: o.get::<String, _>("properties").parse().unwrap_or(Value::Null),
                    })
                    .collect(),
                arm_id,
            }
        })
        .filter(|t: &Target| {
            !t.endpoints.is_empty() || t.role.as_deref().is_some_and(|r| r != "private-endpoint" && r != "identity")
        })
        .collect())
}

/// One `registry.health_status` row as this run wants it.
struct StatusRow {
    key: String,
    component: Option<String>,
    state: State,
    required: bool,
    detail: String,
    observed: Option<String>,
    result: Option<usize>,
}

fn status_rows(results: &[CheckResult], components: &[Component], overall: State) -> Vec<StatusRow> {
    let mut rows: Vec<StatusRow> = results
        .iter()
        .enumerate()
        .map(|(i, r)| StatusRow {
            key: r.key(),
            component: Some(r.component.clone()),
            state: r.state,
            required: r.required,
            detail: r.reason.clone(),
            observed: r.observed.clone(),
            result: Some(i),
        })
        .collect();
    for c in components {
        let detail = format!("{} of {} checks not healthy", c.failing, c.checks);
        rows.push(StatusRow {
            key: c.name.clone(),
            component: Some(c.name.clone()),
            state: c.state,
            required: true,
            detail,
            observed: None,
            result: None,
        });
    }
    let failing = components.iter().filter(|c| c.state != State::Healthy).count();
    rows.push(StatusRow {
        key: "overall".into(),
        component: None,
        state: overall,
        required: true,
        detail: format!("{failing} of {} components not healthy", components.len()),
        observed: None,
        result: None,
    });
    rows
}

/// The current status of every check, as `registry.health_status` holds it.
async fn current_states(conn: &mut PgConnection) -> Result<BTreeMap<String, String>, DbError> {
    Ok(sqlx::query("SELECT check_name, state::text AS state FROM registry.health_status")
        .fetch_all(conn)
        .await
        .map_err(q("reading registry.health_status"))?
        .iter()
        .map(|r| (r.get("check_name"), r.get("state")))
        .collect())
}

/// Pure: the status transitions from `current` to `rows` (the phase's `changes`), and the
/// checks that are gone.
fn transitions(current: &BTreeMap<String, String>, rows: &[StatusRow]) -> (Vec<Change>, Vec<String>) {
    let mut out = Vec::new();
    for row in rows {
        let was = current.get(&row.key).and_then(|s| State::from_db(s));
        if was != Some(row.state) {
            let from = was.map(|w| w.as_db()).unwrap_or("none");
            out.push(Change::new("health status", row.key.clone(), format!("{from} -> {}", row.state.as_db())));
        }
    }
    let gone: Vec<String> = current.keys().filter(|k| !rows.iter().any(|r| &r.key == *k)).cloned().collect();
    out.extend(gone.iter().map(|k| Change::new("health status", k.clone(), "remove")));
    (out, gone)
}

/// The status transitions that recording these results would make. Reads only.
pub async fn planned(
    conn: &mut PgConnection,
    results: &[CheckResult],
    components: &[Component],
    overall: State,
) -> Result<Vec<Change>, DbError> {
    let current = current_states(conn).await?;
    Ok(transitions(&current, &status_rows(results, components, overall)).0)
}

/// Records a run — results with history, and the current status — in one transaction under an
/// advisory lock. Returns the status transitions it made.
pub async fn record(
    conn: &mut PgConnection,
    deployment_id: &str,
    arm_ids: &BTreeMap<String, String>,
    results: &[CheckResult],
    components: &[Component],
    overall: State,
) -> Result<Vec<Change>, DbError> {
    let mut tx = conn.begin().await.map_err(q("starting the health transaction"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('vibedata-bootstrap:health'))")
        .execute(&mut *tx)
        .await
        .map_err(q("locking health status"))?;
    let current = current_states(&mut tx).await?;
    let rows = status_rows(results, components, overall);
    let changed = |row: &StatusRow| current.get(&row.key).and_then(|s| State::from_db(s)) != Some(row.state);
    let (made, gone) = transitions(&current, &rows);
    let run_id: String = sqlx::query_scalar(
        "INSERT INTO registry.health_runs (deployment_id, binary_version) VALUES ($1, $2) RETURNING run_id::text",
    )
    .bind(deployment_id)
    .bind(crate::VERSION)
    .fetch_one(&mut *tx)
    .await
    .map_err(q("registry.health_runs"))?;
    let mut result_keys = Vec::with_capacity(results.len());
    for r in results {
        let key: i64 = sqlx::query_scalar(
            "INSERT INTO registry.health_results (run_id, check_name, resource_key, state, detail, code, duration_ms, component, required, observed)
             VALUES ($1::uuid, $2, (SELECT resource_key FROM registry.resources WHERE lower(arm_id) = lower($3)), $4::registry.health_state, $5, $6, $7, $8, $9, $10)
             RETURNING result_key",
        )
        .bind(&run_id)
        .bind(r.key())
        .bind(arm_ids.get(&r.component).cloned().unwrap_or_default())
        .bind(r.state.as_db())
        .bind(&r.reason)
        .bind(&r.code)
        .bind(r.duration_ms.min(i32::MAX as u64) as i32)
        .bind(&r.component)
        .bind(r.required)
        .bind(&r.observed)
        .fetch_one(&mut *tx)
        .await
        .map_err(q("registry.health_results"))?;
        result_keys.push(key);
    }
    for row in &rows {
        let last = row.result.map(|i| result_keys[i]);
        let sql = if changed(row) {
            "INSERT INTO registry.health_status (check_name, state, since, last_checked_at, last_result_key, detail, component, required, observed)
             VALUES ($1, $2::registry.health_state, now(), now(), $3, $4, $5, $6, $7)
             ON CONFLICT (check_name) DO UPDATE SET state = EXCLUDED.state, since = now(), last_checked_at = now(),
               last_result_key = EXCLUDED.last_result_key, detail = EXCLUDED.detail, component = EXCLUDED.component,
               required = EXCLUDED.required, observed = EXCLUDED.observed"
        } else {
            "UPDATE registry.health_status SET last_checked_at = now(), last_result_key = $3, detail = $4, component = $5, required = $6, observed = $7
             WHERE check_name = $1 AND state = $2::registry.health_state"
        };
        sqlx::query(sql)
            .bind(&row.key)
            .bind(row.state.as_db())
            .bind(last)
            .bind(&row.detail)
            .bind(&row.component)
            .bind(row.required)
            .bind(&row.observed)
            .execute(&mut *tx)
            .await
            .map_err(q("registry.health_status"))?;
    }
    for key in &gone {
        sqlx::query("DELETE FROM registry.health_status WHERE check_name = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(q("registry.health_status"))?;
    }
    sqlx::query("UPDATE registry.health_runs SET finished_at = now(), overall = $2::registry.health_state WHERE run_id = $1::uuid")
        .bind(&run_id)
        .bind(overall.as_db())
        .execute(&mut *tx)
        .await
        .map_err(q("registry.health_runs"))?;
    tx.commit().await.map_err(q("committing the health run"))?;
    Ok(made)
}
