//! The Helm 3 commands that need a cluster, over the emulated one: `install`, `upgrade
//! [--install]`, `status`, `get`, `history`, `list`, `rollback`, `uninstall`. Rendering is the
//! real `helm template` (`render.rs`); what Helm 3.17 does around it is done here: the release
//! history and its `pending-*` lock, values reuse on upgrade, ownership of existing objects,
//! hooks, `--wait`, `--atomic`, and Helm's own messages.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

mod upgrade;
mod values;

use super::args::{flag, parse, Flag, Parsed};
use super::cluster::{Key, Revision};
use super::exec::Running;
use super::render::yaml_to_json;
use super::shim::{subcommand, Output};
use crate::http::now_rfc3339;
use crate::state::Shared;
use upgrade::{key_of, manifest_keys, object_namespace, owned, upgrade};
use values::{is_empty_map, merge};

const GLOBAL: &[Flag] = &[
    flag(&["-n", "--namespace"], true),
    flag(&["--kube-context"], true),
    flag(&["--kubeconfig"], true),
    flag(&["--debug"], false),
    flag(&["--burst-limit"], true),
    flag(&["--qps"], true),
    flag(&["--registry-config"], true),
    flag(&["--repository-cache"], true),
    flag(&["--repository-config"], true),
];

pub(super) const INSTALL: &[Flag] = &[
    flag(&["-i", "--install"], false),
    flag(&["--create-namespace"], false),
    flag(&["-f", "--values"], true),
    flag(&["--set"], true),
    flag(&["--set-string"], true),
    flag(&["--wait"], false),
    flag(&["--wait-for-jobs"], false),
    flag(&["--timeout"], true),
    flag(&["--atomic"], false),
    flag(&["--version"], true),
    flag(&["--reuse-values"], false),
    flag(&["--reset-values"], false),
    flag(&["--reset-then-reuse-values"], false),
    flag(&["--description"], true),
    flag(&["--history-max"], true),
    flag(&["--cleanup-on-fail"], false),
    flag(&["--force"], false),
    flag(&["-o", "--output"], true),
    flag(&["--dry-run"], false),
    flag(&["--skip-crds"], false),
    flag(&["--no-hooks"], false),
    flag(&["--devel"], false),
    flag(&["--disable-openapi-validation"], false),
    flag(&["--skip-schema-validation"], false),
    flag(&["--take-ownership"], false),
    flag(&["-g", "--generate-name"], false),
    flag(&["--replace"], false),
];

pub(super) fn parse_with(args: &[String], specific: &[Flag]) -> Result<Parsed, Output> {
    let all: Vec<Flag> = GLOBAL.iter().chain(specific).copied().collect();
    parse(args, &all).map_err(|e| Output::err(format!("Error: {e}")))
}

pub(super) fn namespace_of(p: &Parsed) -> String {
    p.get("-n").map(str::to_owned).unwrap_or_else(|| "default".to_owned())
}

/// Helm's `LAST DEPLOYED` (Go's ANSIC layout).
pub(super) fn ansic(rfc3339: &str) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| rfc3339.to_owned())
}

fn to_yaml(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_default()
}

fn to_json_line(v: &Value) -> String {
    format!("{v}\n")
}

/// Prints a value as `-o json|yaml` asks (`None`: the caller's table).
pub(super) fn formatted(p: &Parsed, v: &Value) -> Option<Output> {
    match p.get("-o") {
        None | Some("table") => None,
        Some("json") => Some(Output::ok(to_json_line(v))),
        Some("yaml") => Some(Output::ok(to_yaml(v))),
        Some(o) => Some(Output::err(format!("Error: invalid format type \"{o}\""))),
    }
}

pub async fn run(st: &Shared, cmd: &Running, cwd: &Path, args: &[String]) -> Output {
    let sub = subcommand(args).unwrap_or_default().to_owned();
    let pos = args.iter().position(|a| *a == sub).unwrap_or(0);
    let rest: Vec<String> = args[..pos].iter().chain(args[pos + 1..].iter()).cloned().collect();
    match sub.as_str() {
        "install" => upgrade(st, cmd, cwd, &rest, true).await,
        "upgrade" => upgrade(st, cmd, cwd, &rest, false).await,
        "status" => status(st, cmd, &rest),
        "get" => get(st, cmd, &rest),
        "history" | "hist" => history(st, cmd, &rest),
        "list" | "ls" => list(st, cmd, &rest),
        "rollback" => rollback(st, cmd, &rest).await,
        "uninstall" | "delete" | "del" | "un" => uninstall(st, cmd, &rest).await,
        "test" => Output::err("Error: the emulated cluster runs no pods, so it cannot run test hooks"),
        other => Output::err(format!("Error: unknown command \"{other}\" for \"helm\"")),
    }
}

// ---------------------------------------------------------------------------------------------
// status / get / history / list.

pub(super) fn status_text(name: &str, namespace: &str, rev: &Revision) -> String {
    format!(
        "NAME: {name}\nLAST DEPLOYED: {}\nNAMESPACE: {namespace}\nSTATUS: {}\nREVISION: {}\nTEST SUITE: None\n",
        ansic(&rev.last_deployed),
        rev.status,
        rev.version
    )
}

/// The revision asked for (`--revision N`, else the last), or Helm's "not found".
fn find_revision(
    st: &Shared,
    cmd: &Running,
    namespace: &str,
    name: &str,
    revision: Option<&str>,
) -> Result<Revision, Output> {
    let mut aks = st.aks.lock();
    let history = aks.cluster(&cmd.cluster).history(namespace, name).cloned().unwrap_or_default();
    let found = match revision.and_then(|r| r.parse::<u32>().ok()).filter(|r| *r > 0) {
        Some(v) => history.into_iter().find(|r| r.version == v),
        None => history.into_iter().last(),
    };
    found.ok_or_else(|| Output::err("Error: release: not found"))
}

fn status(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let p = match parse_with(
        args,
        &[
            flag(&["-o", "--output"], true),
            flag(&["--revision"], true),
            flag(&["--show-desc"], false),
            flag(&["--show-resources"], false),
        ],
    ) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let [name] = p.positional.as_slice() else {
        return Output::err("Error: \"helm status\" requires 1 argument\n\nUsage:  helm status RELEASE_NAME [flags]");
    };
    let ns = namespace_of(&p);
    let rev = match find_revision(st, cmd, &ns, name, p.get("--revision")) {
        Ok(r) => r,
        Err(o) => return o,
    };
    if let Some(out) = formatted(&p, &rev.release_json(name, &ns)) {
        return out;
    }
    let mut text = status_text(name, &ns, &rev);
    if p.has("--show-desc") {
        text = text.replace("TEST SUITE", &format!("DESCRIPTION: {}\nTEST SUITE", rev.description));
    }
    Output::ok(text)
}

fn get(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let p = match parse_with(
        args,
        &[
            flag(&["-o", "--output"], true),
            flag(&["--revision"], true),
            flag(&["-a", "--all"], false),
            flag(&["--template"], true),
        ],
    ) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (what, name) = match p.positional.as_slice() {
        [what, name] => (what.as_str(), name.as_str()),
        _ => return Output::err(
            "Error: \"helm get\" requires a subcommand and 1 argument (values, manifest, hooks, notes, metadata, all)",
        ),
    };
    let ns = namespace_of(&p);
    let rev = match find_revision(st, cmd, &ns, name, p.get("--revision")) {
        Ok(r) => r,
        Err(o) => return o,
    };
    match what {
        "values" => {
            let mut values = rev.config.clone();
            if p.has("-a") {
                values = rev.chart_values.clone();
                merge(&mut values, rev.config.clone());
            }
            let shown = if is_empty_map(&values) { Value::Null } else { values };
            match formatted(&p, &shown) {
                Some(out) => out,
                None => {
                    let header = if p.has("-a") { "COMPUTED VALUES:" } else { "USER-SUPPLIED VALUES:" };
                    Output::ok(format!("{header}\n{}", to_yaml(&shown)))
                }
            }
        }
        "manifest" => Output::ok(rev.manifest.clone()),
        "hooks" => Output::ok(
            rev.hooks
                .iter()
                .map(|h| {
                    format!(
                        "---\n# Source: {}\n{}\n",
                        h["path"].as_str().unwrap_or(""),
                        h["manifest"].as_str().unwrap_or("")
                    )
                })
                .collect::<String>(),
        ),
        "notes" => Output::ok("NOTES:\n"),
        "metadata" => {
            let meta = json!({
                "name": name, "chart": rev.chart["name"], "version": rev.chart["version"], "appVersion": rev.chart["appVersion"],
                "namespace": ns, "revision": rev.version, "status": rev.status, "deployedAt": rev.last_deployed,
            });
            match formatted(&p, &meta) {
                Some(out) => out,
                None => Output::ok(format!(
                    "NAME: {name}\nCHART: {}\nVERSION: {}\nAPP_VERSION: {}\nNAMESPACE: {ns}\nREVISION: {}\nSTATUS: {}\nDEPLOYED_AT: {}\n",
                    rev.chart["name"].as_str().unwrap_or(""),
                    rev.chart["version"].as_str().unwrap_or(""),
                    rev.chart["appVersion"].as_str().unwrap_or(""),
                    rev.version,
                    rev.status,
                    rev.last_deployed
                )),
            }
        }
        "all" => Output::ok(format!(
            "{}USER-SUPPLIED VALUES:\n{}\nMANIFEST:\n{}",
            status_text(name, &ns, &rev),
            to_yaml(&rev.config),
            rev.manifest
        )),
        other => Output::err(format!("Error: unknown command \"{other}\" for \"helm get\"")),
    }
}

fn history(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let p = match parse_with(args, &[flag(&["-o", "--output"], true), flag(&["--max"], true)]) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let [name] = p.positional.as_slice() else {
        return Output::err("Error: \"helm history\" requires 1 argument");
    };
    let ns = namespace_of(&p);
    let revs = st.aks.lock().cluster(&cmd.cluster).history(&ns, name).cloned().unwrap_or_default();
    if revs.is_empty() {
        return Output::err("Error: release: not found");
    }
    let max: usize = p.get("--max").and_then(|m| m.parse().ok()).unwrap_or(256);
    let rows: Vec<Value> = revs
        .iter()
        .rev()
        .take(max)
        .rev()
        .map(|r| {
            json!({"revision": r.version, "updated": r.last_deployed, "status": r.status, "chart": r.chart_name(),
                        "app_version": r.chart["appVersion"], "description": r.description})
        })
        .collect();
    if let Some(out) = formatted(&p, &Value::Array(rows.clone())) {
        return out;
    }
    let mut text =
        "REVISION\tUPDATED                 \tSTATUS    \tCHART        \tAPP VERSION\tDESCRIPTION\n".to_owned();
    for r in &rows {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            r["revision"],
            ansic(r["updated"].as_str().unwrap_or("")),
            r["status"].as_str().unwrap_or(""),
            r["chart"].as_str().unwrap_or(""),
            r["app_version"].as_str().unwrap_or(""),
            r["description"].as_str().unwrap_or("")
        ));
    }
    Output::ok(text)
}

fn list(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let p = match parse_with(
        args,
        &[
            flag(&["-o", "--output"], true),
            flag(&["-A", "--all-namespaces"], false),
            flag(&["-a", "--all"], false),
            flag(&["-q", "--short"], false),
            flag(&["--pending"], false),
            flag(&["--failed"], false),
            flag(&["--deployed"], false),
            flag(&["--superseded"], false),
            flag(&["--uninstalled"], false),
            flag(&["-f", "--filter"], true),
        ],
    ) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let ns = namespace_of(&p);
    let wanted: Vec<&str> = ["pending", "failed", "deployed", "superseded", "uninstalled"]
        .into_iter()
        .filter(|s| p.has(&format!("--{s}")))
        .collect();
    let keep = |status: &str| {
        if p.has("-a") {
            return true;
        }
        if wanted.is_empty() {
            return status == "deployed" || status == "failed";
        }
        wanted.iter().any(|w| status.starts_with(w))
    };
    let mut aks = st.aks.lock();
    let rows: Vec<Value> = aks
        .cluster(&cmd.cluster)
        .releases
        .iter()
        .filter(|((rns, _), _)| p.has("-A") || *rns == ns)
        .filter_map(|((rns, name), revs)| revs.last().map(|r| (rns, name, r)))
        .filter(|(_, name, r)| keep(&r.status) && p.get("-f").is_none_or(|f| name.contains(f)))
        .map(|(rns, name, r)| {
            json!({"name": name, "namespace": rns, "revision": r.version.to_string(), "updated": r.last_deployed,
                                     "status": r.status, "chart": r.chart_name(), "app_version": r.chart["appVersion"]})
        })
        .collect();
    if let Some(out) = formatted(&p, &Value::Array(rows.clone())) {
        return out;
    }
    if p.has("-q") {
        return Output::ok(rows.iter().map(|r| format!("{}\n", r["name"].as_str().unwrap_or(""))).collect::<String>());
    }
    let mut text = "NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION\n".to_owned();
    for r in &rows {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r["name"].as_str().unwrap_or(""),
            r["namespace"].as_str().unwrap_or(""),
            r["revision"].as_str().unwrap_or(""),
            r["updated"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["chart"].as_str().unwrap_or(""),
            r["app_version"].as_str().unwrap_or("")
        ));
    }
    Output::ok(text)
}

// ---------------------------------------------------------------------------------------------
// rollback / uninstall.

async fn rollback(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let p = match parse_with(
        args,
        &[
            flag(&["--wait"], false),
            flag(&["--wait-for-jobs"], false),
            flag(&["--timeout"], true),
            flag(&["--force"], false),
            flag(&["--cleanup-on-fail"], false),
            flag(&["--no-hooks"], false),
            flag(&["--recreate-pods"], false),
            flag(&["--history-max"], true),
            flag(&["--dry-run"], false),
        ],
    ) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (name, revision) = match p.positional.as_slice() {
        [name] => (name.clone(), 0),
        [name, r] => match r.parse::<u32>() {
            Ok(r) => (name.clone(), r),
            Err(_) => return Output::err(format!("Error: could not convert revision to a number: {r}")),
        },
        _ => return Output::err("Error: \"helm rollback\" requires at least 1 argument"),
    };
    match rollback_release(st, cmd, &name, &namespace_of(&p), revision) {
        Ok(()) => Output::ok("Rollback was a success! Happy Helming!\n"),
        Err(e) => Output::err(format!("Error: {e}")),
    }
}

/// Helm's rollback: a new revision with the target's chart, values and manifest.
pub(super) fn rollback_release(
    st: &Shared,
    cmd: &Running,
    name: &str,
    namespace: &str,
    revision: u32,
) -> Result<(), String> {
    let mut aks = st.aks.lock();
    let ready_after = Duration::from_millis(aks.settings.ready_after_ms);
    let cluster = aks.cluster(&cmd.cluster);
    let history = cluster.history(namespace, name).cloned().ok_or("release: not found")?;
    let current = history.last().ok_or("release: not found")?.clone();
    let target_version = if revision == 0 { current.version.saturating_sub(1) } else { revision };
    let target = history
        .iter()
        .find(|r| r.version == target_version)
        .cloned()
        .ok_or_else(|| format!("release has no {target_version} version"))?;
    let current_keys = manifest_keys(&current.manifest, namespace);
    let target_docs = super::render::yaml_documents(&target.manifest).unwrap_or_default();
    let target_keys: Vec<Key> = target_docs.iter().map(|o| key_of(o, namespace)).collect();
    for obj in &target_docs {
        let ns = object_namespace(obj, namespace);
        cluster.apply(owned(obj.clone(), name, namespace), &ns, ready_after);
    }
    for gone in current_keys.into_iter().filter(|k| !target_keys.contains(k)) {
        cluster.delete(&gone);
    }
    let now = now_rfc3339();
    let history = cluster.history_mut(namespace, name);
    for r in history.iter_mut().filter(|r| r.status == "deployed" || r.version == current.version) {
        r.status = "superseded".into();
    }
    let mut rev = target.clone();
    rev.version = current.version + 1;
    rev.status = "deployed".into();
    rev.description = format!("Rollback to {target_version}");
    rev.first_deployed = history.first().map(|r| r.first_deployed.clone()).unwrap_or_else(|| now.clone());
    rev.last_deployed = now;
    rev.deleted = String::new();
    history.push(rev);
    Ok(())
}

async fn uninstall(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let p = match parse_with(
        args,
        &[
            flag(&["--keep-history"], false),
            flag(&["--wait"], false),
            flag(&["--timeout"], true),
            flag(&["--no-hooks"], false),
            flag(&["--dry-run"], false),
            flag(&["--cascade"], true),
            flag(&["--ignore-not-found"], false),
            flag(&["--description"], true),
        ],
    ) {
        Ok(p) => p,
        Err(o) => return o,
    };
    if p.positional.is_empty() {
        return Output::err("Error: \"helm uninstall\" requires at least 1 argument");
    }
    let ns = namespace_of(&p);
    let mut out = String::new();
    for name in &p.positional {
        match uninstall_release(st, cmd, name, &ns, p.has("--keep-history")) {
            Ok(()) => out.push_str(&format!("release \"{name}\" uninstalled\n")),
            Err(_) if p.has("--ignore-not-found") => {}
            Err(e) => {
                return Output {
                    stdout: out,
                    stderr: format!("Error: uninstall: Release not loaded: {name}: {e}\n"),
                    exit: 1,
                }
            }
        }
    }
    Output::ok(out)
}

pub(super) fn uninstall_release(
    st: &Shared,
    cmd: &Running,
    name: &str,
    namespace: &str,
    keep_history: bool,
) -> Result<(), String> {
    let mut aks = st.aks.lock();
    let cluster = aks.cluster(&cmd.cluster);
    let history =
        cluster.history(namespace, name).cloned().filter(|h| h.last().is_some_and(|r| r.status != "uninstalled"));
    let Some(history) = history else {
        return Err("release: not found".into());
    };
    let last = history.last().cloned().unwrap_or_else(|| unreachable!("history is not empty"));
    for key in manifest_keys(&last.manifest, namespace) {
        cluster.delete(&key);
    }
    for hook in &last.hooks {
        if let Some(obj) = hook["manifest"].as_str().and_then(|m| yaml_to_json(m).ok()) {
            cluster.delete(&key_of(&obj, namespace));
        }
    }
    let revisions = cluster.history_mut(namespace, name);
    if keep_history {
        if let Some(r) = revisions.last_mut() {
            r.status = "uninstalled".into();
            r.deleted = now_rfc3339();
            r.description = "Uninstallation complete".into();
        }
    } else {
        revisions.clear();
        cluster.releases.remove(&(namespace.to_owned(), name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_helm_times() {
        assert_eq!(ansic("2026-12-02T14:05:09Z"), "Wed Dec  2 14:05:09 2026");
    }
}
