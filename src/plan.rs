//! `plan`: the RFC-60 table for people and, with `--json`, for `infra/` and the tests.

use serde_json::{json, Value};

use crate::config;
use crate::ledger::Record;
use crate::phases;
use crate::sequence::{Step, SEQUENCE};

/// The `plan --json` document: an array of the fifteen phases in order (DESIGN §2).
pub fn to_json(statuses: &[(Step, Option<Record>)]) -> Value {
    let phases: Vec<Value> = SEQUENCE
        .iter()
        .map(|p| {
            let status = p.step.and_then(|s| statuses.iter().find(|(x, _)| *x == s)).and_then(|(_, r)| r.as_ref()).map(|r| {
                json!({"status": r.status, "attempt": r.attempt, "startedAt": r.started_at, "endedAt": r.ended_at, "changes": r.changes})
            });
            json!({
                "order": p.order,
                "id": p.id,
                "name": p.name,
                "kind": p.kind,
                "summary": p.summary,
                "command": p.command(),
                "built": p.step.map(phases::built).unwrap_or(false),
                "requiredConfig": p.step.map(config::required_for).unwrap_or_default(),
                "status": status,
            })
        })
        .collect();
    Value::Array(phases)
}

/// The human table.
pub fn to_table(statuses: &[(Step, Option<Record>)], ledger_note: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:>2}  {:<26} {:<12} {:<15} {:<6} {}\n",
        "#", "RFC-60 phase", "kind", "command", "built", "status"
    ));
    for p in &SEQUENCE {
        let kind = format!("{:?}", p.kind).to_lowercase();
        let command = p.command().unwrap_or_else(|| "(Bicep)".into());
        let built = match p.step {
            None => "-",
            Some(s) if phases::built(s) => "yes",
            Some(_) => "no",
        };
        let status = p
            .step
            .and_then(|s| statuses.iter().find(|(x, _)| *x == s))
            .and_then(|(_, r)| r.as_ref())
            .map(|r| {
                format!("{} (attempt {}, {})", r.status, r.attempt, r.ended_at.as_deref().unwrap_or(&r.started_at))
            })
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!("{:>2}  {:<26} {:<12} {:<15} {:<6} {}\n", p.order, p.name, kind, command, built, status));
    }
    if let Some(note) = ledger_note {
        out.push_str(&format!("\nrecorded status unavailable: {note}\n"));
    }
    out
}
