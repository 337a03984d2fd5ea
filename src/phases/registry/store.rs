//! The registry tables: read the current snapshot, diff it against the discovered one (pure),
//! and apply the difference in one transaction.
//!
//! Rows are compared by each table's natural key (ARM id case-insensitively; endpoint target,
//! group, FQDN and port; reference name), so an unchanged platform gives an empty diff and the
//! run writes nothing at all — not even a snapshot row (`changes: 0`). A changed one is applied
//! atomically with a `registry.snapshots` row that records what changed.

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};

use super::model::{EndpointRow, ObjectRow, ReferenceRow, ResourceRow, Snapshot};
use crate::db::DbError;

/// Added, updated and removed rows of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff<T> {
    pub added: Vec<T>,
    pub updated: Vec<T>,
    pub removed: Vec<T>,
}

impl<T> TableDiff<T> {
    pub fn len(&self) -> usize {
        self.added.len() + self.updated.len() + self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keys(&self, name: impl Fn(&T) -> String) -> Value {
        json!({"added": self.added.iter().map(&name).collect::<Vec<_>>(), "updated": self.updated.iter().map(&name).collect::<Vec<_>>(), "removed": self.removed.iter().map(&name).collect::<Vec<_>>()})
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub resources: TableDiff<ResourceRow>,
    pub endpoints: TableDiff<EndpointRow>,
    pub references: TableDiff<ReferenceRow>,
    pub objects: TableDiff<ObjectRow>,
}

impl Diff {
    /// Every row change, for the plan and the outputs.
    pub fn rows(&self) -> Vec<crate::phases::Change> {
        use crate::phases::Change;
        fn table<T>(out: &mut Vec<Change>, kind: &'static str, d: &TableDiff<T>, key: impl Fn(&T) -> String) {
            for (rows, action) in [(&d.added, "insert"), (&d.updated, "update"), (&d.removed, "remove")] {
                out.extend(rows.iter().map(|r| Change::new(kind, key(r), action)));
            }
        }
        let mut out = Vec::new();
        table(&mut out, "registry resource", &self.resources, |r| r.arm_id.clone());
        table(&mut out, "registry endpoint", &self.endpoints, |e| format!("{}:{}", e.fqdn, e.port));
        table(&mut out, "registry reference", &self.references, |r| r.name.clone());
        table(&mut out, "registry release object", &self.objects, object_name);
        out
    }

    /// Registry rows that change: the phase's `changes`.
    pub fn changes(&self) -> u64 {
        (self.resources.len() + self.endpoints.len() + self.references.len() + self.objects.len()) as u64
    }

    /// What changed, by key, as `registry.snapshots.diff` records it.
    pub fn to_json(&self) -> Value {
        json!({
            "resources": self.resources.keys(|r| r.arm_id.clone()),
            "endpoints": self.endpoints.keys(|e| format!("{}:{}", e.fqdn, e.port)),
            "configurationReferences": self.references.keys(|r| r.name.clone()),
            "releaseObjects": self.objects.keys(object_name),
        })
    }
}

/// How a release object is named in plans, outputs and the snapshot diff: `kind name`.
fn object_name(o: &ObjectRow) -> String {
    format!("{} {}", o.kind, o.name)
}

/// The diff for the outputs, which stay small: counts, and at most `max` keys per list.
pub fn brief(full: &Value, max: usize) -> Value {
    match full {
        Value::Array(a) if a.len() > max => {
            let mut v: Vec<Value> = a.iter().take(max).cloned().collect();
            v.push(Value::from(format!("... {} more", a.len() - max)));
            Value::Array(v)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), brief(v, max))).collect()),
        other => other.clone(),
    }
}

fn table<T: Clone + PartialEq, K: Ord>(current: &[T], wanted: &[T], key: impl Fn(&T) -> K) -> TableDiff<T> {
    let find = |rows: &[T], k: &K| rows.iter().find(|r| &key(r) == k).cloned();
    let mut d = TableDiff { added: Vec::new(), updated: Vec::new(), removed: Vec::new() };
    for w in wanted {
        match find(current, &key(w)) {
            None => d.added.push(w.clone()),
            Some(c) if &c != w => d.updated.push(w.clone()),
            Some(_) => {}
        }
    }
    d.removed = current.iter().filter(|c| find(wanted, &key(c)).is_none()).cloned().collect();
    d
}

/// Pure: what must change to turn `current` into `wanted`.
pub fn diff(current: &Snapshot, wanted: &Snapshot) -> Diff {
    Diff {
        resources: table(&current.resources, &wanted.resources, ResourceRow::key),
        endpoints: table(&current.endpoints, &wanted.endpoints, EndpointRow::key),
        references: table(&current.configuration_references, &wanted.configuration_references, |r| r.name.clone()),
        objects: table(&current.release_objects, &wanted.release_objects, ObjectRow::key),
    }
}

fn q(context: &str) -> impl FnOnce(sqlx::Error) -> DbError + '_ {
    move |source| DbError::Query { context: context.to_owned(), source }
}

fn json_col(row: &sqlx::postgres::PgRow, col: &str) -> Value {
    row.try_get::<String, _>(col).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

/// The registry as the database holds it now (resources not marked removed).
pub async fn current(conn: &mut PgConnection) -> Result<Snapshot, DbError> {
    let resources = sqlx::query(
        "SELECT arm_id, name, type, kind, role, location, sku, provisioning_state, tags::text AS tags, properties::text AS properties
         FROM registry.resources WHERE removed_at IS NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading registry.resources"))?
    .iter()
    .map(|r| ResourceRow {
        arm_id: r.get("arm_id"),
        name: r.get("name"),
        resource_type: r.get("type"),
        kind: r.get("kind"),
        role: r.get("role"),
        location: r.get("location"),
        sku: r.get("sku"),
        provisioning_state: r.get("provisioning_state"),
        tags: json_col(r, "tags"),
        properties: json_col(r, "properties"),
    })
    .collect();
    let endpoints = sqlx::query(
        "SELECT r.arm_id, e.group_id, e.fqdn, host(e.private_ip) AS ip, e.port, e.protocol, e.private_endpoint_id
         FROM registry.endpoints e JOIN registry.resources r USING (resource_key)",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading registry.endpoints"))?
    .iter()
    .map(|r| EndpointRow {
        resource: r.get("arm_id"),
        group_id: r.get("group_id"),
        fqdn: r.get("fqdn"),
        private_ip: r.get("ip"),
        port: r.get("port"),
        protocol: r.get("protocol"),
        private_endpoint_id: r.get("private_endpoint_id"),
    })
    .collect();
    let configuration_references = sqlx::query(
        "SELECT c.name, c.kind, c.uri, r.arm_id, c.description
         FROM registry.configuration_references c LEFT JOIN registry.resources r USING (resource_key)",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading registry.configuration_references"))?
    .iter()
    .map(|r| ReferenceRow {
        name: r.get("name"),
        kind: r.get("kind"),
        uri: r.get("uri"),
        resource: r.get("arm_id"),
        description: r.get("description"),
    })
    .collect();
    let release_objects = sqlx::query(
        "SELECT kind, host, name, version, digest, state, properties::text AS properties FROM registry.release_objects",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("reading registry.release_objects"))?
    .iter()
    .map(|r| ObjectRow {
        kind: r.get("kind"),
        host: r.get("host"),
        name: r.get("name"),
        version: r.get("version"),
        digest: r.get("digest"),
        state: r.get("state"),
        properties: json_col(r, "properties"),
    })
    .collect();
    let mut s = Snapshot { resources, endpoints, configuration_references, release_objects };
    s.sort();
    Ok(s)
}

/// Who took the snapshot, for its `registry.snapshots` row.
pub struct Meta<'a> {
    pub deployment_id: &'a str,
    pub release: Option<&'a str>,
}

/// What replacing the registry with `wanted` would change. Reads only.
pub async fn plan(conn: &mut PgConnection, wanted: &Snapshot) -> Result<Diff, DbError> {
    Ok(diff(&current(conn).await?, wanted))
}

/// Reads the current registry and replaces it with `wanted`, all in one transaction under a
/// transaction-scoped advisory lock, so two runners never interleave and a reader sees the old
/// snapshot or the new one, never a mix. The diff is taken again inside the transaction, so what
/// is applied is what the registry needed at that moment; it is returned.
pub async fn replace(conn: &mut PgConnection, wanted: &Snapshot, meta: &Meta<'_>) -> Result<Diff, DbError> {
    let mut tx = conn.begin().await.map_err(q("starting the registry transaction"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('vibedata-bootstrap:registry'))")
        .execute(&mut *tx)
        .await
        .map_err(q("locking the registry"))?;
    let d = diff(&current(&mut tx).await?, wanted);
    if d.changes() == 0 {
        tx.rollback().await.map_err(q("ending the registry transaction"))?;
        return Ok(d);
    }
    for r in d.resources.added.iter().chain(&d.resources.updated) {
        sqlx::query(
            "INSERT INTO registry.resources (arm_id, name, type, kind, role, location, sku, provisioning_state, tags, properties)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb)
             ON CONFLICT ((lower(arm_id))) DO UPDATE SET arm_id = EXCLUDED.arm_id, name = EXCLUDED.name, type = EXCLUDED.type,
               kind = EXCLUDED.kind, role = EXCLUDED.role, location = EXCLUDED.location, sku = EXCLUDED.sku,
               provisioning_state = EXCLUDED.provisioning_state, tags = EXCLUDED.tags, properties = EXCLUDED.properties,
               updated_at = now(), removed_at = NULL",
        )
        .bind(&r.arm_id)
        .bind(&r.name)
        .bind(&r.resource_type)
        .bind(&r.kind)
        .bind(&r.role)
        .bind(&r.location)
        .bind(&r.sku)
        .bind(&r.provisioning_state)
        .bind(r.tags.to_string())
        .bind(r.properties.to_string())
        .execute(&mut *tx)
        .await
        .map_err(q(&r.arm_id))?;
    }
    for e in &d.endpoints.removed {
        sqlx::query(
            "DELETE FROM registry.endpoints e USING registry.resources r
             WHERE e.resource_key = r.resource_key AND lower(r.arm_id) = lower($1) AND e.group_id = $2 AND lower(e.fqdn) = lower($3) AND e.port = $4",
        )
        .bind(&e.resource)
        .bind(&e.group_id)
        .bind(&e.fqdn)
        .bind(e.port)
        .execute(&mut *tx)
        .await
        .map_err(q(&e.fqdn))?;
    }
    for e in d.endpoints.added.iter().chain(&d.endpoints.updated) {
        sqlx::query(
            "INSERT INTO registry.endpoints (resource_key, group_id, fqdn, private_ip, port, protocol, private_endpoint_id)
             SELECT resource_key, $2, $3, $4::inet, $5, $6, $7 FROM registry.resources WHERE lower(arm_id) = lower($1)
             ON CONFLICT (resource_key, group_id, fqdn, port) DO UPDATE SET private_ip = EXCLUDED.private_ip, protocol = EXCLUDED.protocol,
               private_endpoint_id = EXCLUDED.private_endpoint_id, updated_at = now()",
        )
        .bind(&e.resource)
        .bind(&e.group_id)
        .bind(&e.fqdn)
        .bind(&e.private_ip)
        .bind(e.port)
        .bind(&e.protocol)
        .bind(&e.private_endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(q(&e.fqdn))?;
    }
    for r in &d.references.removed {
        sqlx::query("DELETE FROM registry.configuration_references WHERE name = $1")
            .bind(&r.name)
            .execute(&mut *tx)
            .await
            .map_err(q(&r.name))?;
    }
    for r in d.references.added.iter().chain(&d.references.updated) {
        sqlx::query(
            "INSERT INTO registry.configuration_references (name, kind, uri, resource_key, description)
             VALUES ($1, $2, $3, (SELECT resource_key FROM registry.resources WHERE lower(arm_id) = lower($4)), $5)
             ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, uri = EXCLUDED.uri, resource_key = EXCLUDED.resource_key,
               description = EXCLUDED.description, updated_at = now()",
        )
        .bind(&r.name)
        .bind(&r.kind)
        .bind(&r.uri)
        .bind(&r.resource)
        .bind(&r.description)
        .execute(&mut *tx)
        .await
        .map_err(q(&r.name))?;
    }
    for o in &d.objects.removed {
        sqlx::query("DELETE FROM registry.release_objects WHERE kind = $1 AND lower(host) = lower($2) AND name = $3")
            .bind(&o.kind)
            .bind(&o.host)
            .bind(&o.name)
            .execute(&mut *tx)
            .await
            .map_err(q(&o.name))?;
    }
    for o in d.objects.added.iter().chain(&d.objects.updated) {
        sqlx::query(
            "INSERT INTO registry.release_objects (kind, host, name, version, digest, state, properties)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
             ON CONFLICT (kind, lower(host), name) DO UPDATE SET host = EXCLUDED.host, version = EXCLUDED.version,
               digest = EXCLUDED.digest, state = EXCLUDED.state, properties = EXCLUDED.properties, updated_at = now()",
        )
        .bind(&o.kind)
        .bind(&o.host)
        .bind(&o.name)
        .bind(&o.version)
        .bind(&o.digest)
        .bind(&o.state)
        .bind(o.properties.to_string())
        .execute(&mut *tx)
        .await
        .map_err(q(&o.name))?;
    }
    // Kept with removed_at, so history and health results that point at them stay readable.
    for r in &d.resources.removed {
        sqlx::query(
            "UPDATE registry.resources SET removed_at = now(), updated_at = now() WHERE lower(arm_id) = lower($1)",
        )
        .bind(&r.arm_id)
        .execute(&mut *tx)
        .await
        .map_err(q(&r.arm_id))?;
    }
    sqlx::query(
        "INSERT INTO registry.snapshots (deployment_id, release, digest, resources, endpoints, changes, diff, binary_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
    )
    .bind(meta.deployment_id)
    .bind(meta.release)
    .bind(wanted.digest())
    .bind(wanted.resources.len() as i32)
    .bind(wanted.endpoints.len() as i32)
    .bind(d.changes() as i32)
    .bind(d.to_json().to_string())
    .bind(crate::VERSION)
    .execute(&mut *tx)
    .await
    .map_err(q("registry.snapshots"))?;
    tx.commit().await.map_err(q("committing the registry snapshot"))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(id: &str, location: &str) -> ResourceRow {
        ResourceRow {
            arm_id: id.into(),
            name: id.into(),
            resource_type: "Microsoft.KeyVault/vaults".into(),
            kind: None,
            role: None,
            location: Some(location.into()),
            sku: None,
            provisioning_state: None,
            tags: json!({}),
            properties: json!({}),
        }
    }

    #[test]
    fn an_unchanged_platform_is_an_empty_diff() {
        let s = Snapshot { resources: vec![res("/a", "eastus")], ..Default::default() };
        assert_eq!(diff(&s, &s.clone()).changes(), 0);
    }

    #[test]
    fn adds_updates_and_removals_are_told_apart_by_key() {
        let current = Snapshot { resources: vec![res("/a", "eastus"), res("/b", "eastus")], ..Default::default() };
        // ARM ids are case-insensitive: "/A" is the same resource as "/a", changed location.
        let wanted = Snapshot { resources: vec![res("/A", "westus"), res("/c", "eastus")], ..Default::default() };
        let d = diff(&current, &wanted);
        assert_eq!(d.changes(), 3);
        assert_eq!(d.to_json()["resources"], json!({"added": ["/c"], "updated": ["/A"], "removed": ["/b"]}));
    }
}
