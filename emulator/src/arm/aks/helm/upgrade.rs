//! `helm install` and `helm upgrade [--install]`: the history and its lock, values reuse,
//! rendering by the real Helm, ownership, hooks, the images, `--wait` and `--atomic`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::args::{duration_ms, Parsed};
use super::super::cluster::{availability, kind_named, Block, Key, Revision};
use super::super::exec::{kill_group, Running};
use super::super::render::{missing_images, HelmRun, Rendered};
use super::super::shim::Output;
use super::values::{is_empty_map, merge, user_values};
use super::{ansic, formatted, namespace_of, parse_with, rollback_release, status_text, uninstall_release, INSTALL};
use crate::http::now_rfc3339;
use crate::state::Shared;

struct Plan {
    name: String,
    chart: String,
    namespace: String,
    install: bool,
    /// "INSTALLATION FAILED" / "UPGRADE FAILED".
    prefix: &'static str,
    version: u32,
}

fn fail(prefix: &str, message: impl AsRef<str>) -> Output {
    Output::err(format!("Error: {prefix}: {}", message.as_ref()))
}

fn chart_digest(cwd: &Path, chart: &str) -> Option<String> {
    let path = cwd.join(chart);
    path.is_file()
        .then(|| std::fs::read(&path).ok())
        .flatten()
        .map(|b| format!("sha256:{}", super::super::sha256_hex(&b)))
}

/// Helm's ownership labels and annotations on every object of a release.
pub(super) fn owned(mut obj: Value, name: &str, namespace: &str) -> Value {
    obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
    obj["metadata"]["annotations"]["meta.helm.sh/release-name"] = json!(name);
    obj["metadata"]["annotations"]["meta.helm.sh/release-namespace"] = json!(namespace);
    obj
}

pub(super) fn ownership_error(existing: &Value, name: &str, namespace: &str) -> Option<String> {
    let labels = &existing["metadata"]["labels"];
    let ann = &existing["metadata"]["annotations"];
    let mut problems = Vec::new();
    if labels["app.kubernetes.io/managed-by"].as_str() != Some("Helm") {
        problems.push(
            "label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"".to_owned(),
        );
    }
    for (key, want) in [("meta.helm.sh/release-name", name), ("meta.helm.sh/release-namespace", namespace)] {
        match ann[key].as_str() {
            Some(v) if v == want => {}
            Some(v) => problems.push(format!(
                "annotation validation error: key \"{key}\" must equal \"{want}\": current value is \"{v}\""
            )),
            None => {
                problems.push(format!("annotation validation error: missing key \"{key}\": must be set to \"{want}\""))
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The namespace an object of the release goes to.
pub(super) fn object_namespace(obj: &Value, release_ns: &str) -> String {
    obj["metadata"]["namespace"].as_str().map(str::to_owned).unwrap_or_else(|| release_ns.to_owned())
}

pub(super) fn key_of(obj: &Value, release_ns: &str) -> Key {
    let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
    let namespaced = kind_named(&kind).is_none_or(|k| k.namespaced);
    Key {
        namespace: if namespaced { object_namespace(obj, release_ns) } else { String::new() },
        name: obj["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
        kind,
    }
}

pub(super) async fn upgrade(st: &Shared, cmd: &Running, cwd: &Path, args: &[String], install_cmd: bool) -> Output {
    let p = match parse_with(args, INSTALL) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let namespace = namespace_of(&p);
    let (name, chart) = match (install_cmd, p.positional.as_slice()) {
        (true, [chart]) if p.has("-g") => {
            let base = chart.rsplit('/').next().unwrap_or(chart).split('-').next().unwrap_or("release").to_owned();
            (format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]), chart.clone())
        }
        (_, [name, chart]) => (name.clone(), chart.clone()),
        (true, _) => {
            return Output::err("Error: INSTALLATION FAILED: must either provide a name or specify --generate-name")
        }
        (false, _) => {
            return Output::err(
                "Error: \"helm upgrade\" requires 2 arguments\n\nUsage:  helm upgrade [RELEASE] [CHART] [flags]",
            )
        }
    };
    let Some(helm) = st.aks.lock().settings.helm.clone() else {
        return Output::err(
            "Error: the emulator has no helm binary to render charts with (aks.helm; scripts/setup installs it)",
        );
    };
    let timeout_ms = match p.get("--timeout").map(duration_ms) {
        None => 300_000,
        Some(Some(ms)) => ms,
        Some(None) => {
            return Output::err(format!(
                "Error: invalid argument \"{}\" for \"--timeout\" flag",
                p.get("--timeout").unwrap_or_default()
            ))
        }
    };

    // What the history says: install or upgrade, the values to reuse, the lock.
    let (plan, previous_config) = {
        let mut aks = st.aks.lock();
        let cluster = aks.cluster(&cmd.cluster);
        let history = cluster.history(&namespace, &name).cloned().unwrap_or_default();
        let last = history.last();
        let uninstalled = last.is_some_and(|r| r.status == "uninstalled");
        let install = if install_cmd {
            if last.is_some() && !(uninstalled && p.has("--replace")) {
                return Output::err("Error: INSTALLATION FAILED: cannot re-use a name that is still in use");
            }
            true
        } else {
            let fresh = history.is_empty() || uninstalled;
            if fresh && !p.has("-i") {
                return Output::err(format!("Error: UPGRADE FAILED: \"{name}\" has no deployed releases"));
            }
            fresh
        };
        let prefix = if install { "INSTALLATION FAILED" } else { "UPGRADE FAILED" };
        if !install && last.is_some_and(Revision::is_pending) {
            return fail(prefix, "another operation (install/upgrade/rollback) is in progress");
        }
        if !cluster.namespaces.contains_key(&namespace) && !p.has("--create-namespace") {
            return fail(prefix, format!("create: failed to create: namespaces \"{namespace}\" not found"));
        }
        let current = history.iter().rev().find(|r| r.status == "deployed").or(last).map(|r| r.config.clone());
        let version = last.map_or(1, |r| r.version + 1);
        (Plan { name, chart, namespace, install, prefix, version }, current)
    };

    let mut config = match user_values(cwd, &p) {
        Ok(v) => v,
        Err(e) => return fail(plan.prefix, e),
    };
    if !plan.install {
        if let Some(prev) = previous_config {
            if p.has("--reuse-values") || p.has("--reset-then-reuse-values") {
                let mut merged = prev;
                merge(&mut merged, config);
                config = merged;
            } else if !p.has("--reset-values") && is_empty_map(&config) {
                // Helm: "copying values from <release> (v<n>) to new release."
                config = prev;
            }
        }
    }
    let values_file = cmd.home.join(format!(".values-{}.json", uuid::Uuid::new_v4().simple()));
    if let Err(e) = std::fs::write(&values_file, config.to_string()) {
        return fail(plan.prefix, format!("writing values: {e}"));
    }
    let runner = HelmRun { helm: &helm, cwd, home: &cmd.home };
    let rendered =
        runner.render(&plan.name, &plan.chart, &plan.namespace, &values_file, p.get("--version"), !plan.install).await;
    let _ = std::fs::remove_file(&values_file);
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => return fail(plan.prefix, e.trim_start_matches("Error: ")),
    };
    if p.has("--dry-run") {
        let rev = new_revision(&plan, &rendered, &config, cwd, "pending-install");
        return Output::ok(format!(
            "NAME: {}\nLAST DEPLOYED: {}\nNAMESPACE: {}\nSTATUS: {}\nREVISION: {}\nTEST SUITE: None\nHOOKS:\nMANIFEST:\n{}",
            plan.name,
            ansic(&rev.last_deployed),
            plan.namespace,
            rev.status,
            rev.version,
            rendered.manifest
        ));
    }
    let with_ns: Vec<(String, &Value)> =
        rendered.objects.iter().map(|o| (object_namespace(o, &plan.namespace), o)).collect();
    let hooks_ns: Vec<(String, &Value)> = rendered
        .hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e.starts_with("pre-") || e.starts_with("post-")))
        .map(|h| (object_namespace(&h.object, &plan.namespace), &h.object))
        .collect();
    let missing = missing_images(st, &with_ns).await;
    let missing_hooks = missing_images(st, &hooks_ns).await;

    // The new revision, pending: Helm's lock against concurrent operations.
    let (stuck, ready_after) = {
        let mut aks = st.aks.lock();
        let ready_after = Duration::from_millis(aks.settings.ready_after_ms);
        let stuck = take_stuck(&mut aks.stuck, &plan.name, &plan.namespace);
        let cluster = aks.cluster(&cmd.cluster);
        let history = cluster.history(&plan.namespace, &plan.name).cloned().unwrap_or_default();
        if history.last().is_some_and(|r| r.is_pending() || (!plan.install && r.version + 1 != plan.version)) {
            return fail(plan.prefix, "another operation (install/upgrade/rollback) is in progress");
        }
        let previous: Vec<Key> = history
            .iter()
            .rev()
            .find(|r| r.status == "deployed")
            .map(|r| manifest_keys(&r.manifest, &plan.namespace))
            .unwrap_or_default();
        for obj in &rendered.objects {
            let key = key_of(obj, &plan.namespace);
            if let Some(existing) = cluster.objects.get(&key) {
                if previous.contains(&key) || p.has("--take-ownership") {
                    continue;
                }
                if let Some(problem) = ownership_error(&existing.body, &plan.name, &plan.namespace) {
                    let what = if plan.install { "install" } else { "update" };
                    return fail(
                        plan.prefix,
                        format!(
                            "rendered manifests contain a resource that already exists. Unable to continue with {what}: {} \"{}\" in namespace \"{}\" exists and cannot be imported into the current release: invalid ownership metadata; {problem}",
                            key.kind, key.name, key.namespace
                        ),
                    );
                }
            }
        }
        if p.has("--create-namespace") && !cluster.namespaces.contains_key(&plan.namespace) {
            cluster.apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plan.namespace}}),
                "",
                ready_after,
            );
        }
        let pending = if plan.install { "pending-install" } else { "pending-upgrade" };
        let mut rev = new_revision(&plan, &rendered, &config, cwd, pending);
        if let Some(first) = history.first().filter(|_| !plan.install) {
            rev.first_deployed = first.first_deployed.clone();
        }
        cluster.history_mut(&plan.namespace, &plan.name).push(rev);
        (stuck, ready_after)
    };
    if stuck {
        // The pod dies here (an eviction, a node restart): Helm never writes the outcome.
        tracing::info!(release = %plan.name, "aks: killing the command mid-install (armed stuck release)");
        // Read the group now: the command's record may have got it after this call began.
        let pgid = st.aks.lock().running.values().find(|r| r.id == cmd.id).and_then(|r| r.pgid).or(cmd.pgid);
        kill_group(pgid);
        return Output { stdout: String::new(), stderr: "Killed\n".into(), exit: 137 };
    }

    let started = Instant::now();
    let deadline = started + Duration::from_millis(timeout_ms);
    let hook_event = if plan.install { "pre-install" } else { "pre-upgrade" };
    let mut hooks_json = Vec::new();
    for hook in &rendered.hooks {
        let runs_now = hook.events.iter().any(|e| e == hook_event);
        let hook_missing: Vec<_> = missing_hooks
            .iter()
            .filter(|m| m.what.contains(&format!("/{} ", hook.object["metadata"]["name"].as_str().unwrap_or_default())))
            .collect();
        if runs_now && !hook_missing.is_empty() {
            let reason = format!(
                "failed {hook_event}: {}",
                hook_missing.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; ")
            );
            {
                let mut aks = st.aks.lock();
                let cluster = aks.cluster(&cmd.cluster);
                let hook_ns = object_namespace(&hook.object, &plan.namespace);
                cluster.apply(hook.object.clone(), &hook_ns, ready_after);
                if let Some(o) = cluster.objects.get_mut(&key_of(&hook.object, &plan.namespace)) {
                    o.blocked = Some(Block { reason: "ImagePullBackOff".into(), message: hook_missing[0].to_string() });
                }
            }
            return finish_failed(st, cmd, &plan, &p, &reason, vec![hook.json(json!({"phase": "Failed"}))]).await;
        }
        let last_run = if runs_now {
            let now = now_rfc3339();
            json!({"started_at": now, "completed_at": now, "phase": "Succeeded"})
        } else {
            json!({"started_at": "", "completed_at": "", "phase": ""})
        };
        hooks_json.push(hook.json(last_run));
    }

    // The manifests: applied (objects of the previous revision that are gone, deleted).
    {
        let mut aks = st.aks.lock();
        let cluster = aks.cluster(&cmd.cluster);
        let previous = cluster
            .history(&plan.namespace, &plan.name)
            .and_then(|h| h.iter().rev().find(|r| r.status == "deployed"))
            .map(|r| manifest_keys(&r.manifest, &plan.namespace))
            .unwrap_or_default();
        let mut now_keys = Vec::new();
        for obj in &rendered.objects {
            let ns = object_namespace(obj, &plan.namespace);
            cluster.apply(owned(obj.clone(), &plan.name, &plan.namespace), &ns, ready_after);
            let key = key_of(obj, &plan.namespace);
            let pulls = missing.iter().find(|m| m.what.starts_with(&format!("{} {}/{} ", key.kind, ns, key.name)));
            if let Some(o) = cluster.objects.get_mut(&key) {
                match pulls {
                    Some(m) => o.blocked = Some(Block { reason: "ImagePullBackOff".into(), message: m.to_string() }),
                    // The kubelet keeps retrying a failed pull: once the image is there, the pods start.
                    None if o.blocked.as_ref().is_some_and(|b| b.reason == "ImagePullBackOff") => {
                        o.blocked = None;
                        o.ready_at = std::time::Instant::now() + ready_after;
                    }
                    None => {}
                }
            }
            now_keys.push(key);
        }
        for gone in previous.into_iter().filter(|k| !now_keys.contains(k)) {
            cluster.delete(&gone);
        }
    }
    if !missing.is_empty() {
        let reason = missing.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; ");
        return finish_failed(st, cmd, &plan, &p, &reason, hooks_json).await;
    }
    if p.has("--wait") || p.has("--atomic") {
        let keys: Vec<Key> =
            rendered.objects.iter().filter(|o| o["kind"] == "Deployment").map(|o| key_of(o, &plan.namespace)).collect();
        if let Err(e) = wait_available(st, cmd, &keys, deadline).await {
            tracing::info!(release = %plan.name, error = %e, "aks: helm --wait gave up");
            return finish_failed(st, cmd, &plan, &p, "context deadline exceeded", hooks_json).await;
        }
    }

    let rev = {
        let mut aks = st.aks.lock();
        let cluster = aks.cluster(&cmd.cluster);
        let history = cluster.history_mut(&plan.namespace, &plan.name);
        for r in history.iter_mut().filter(|r| r.status == "deployed") {
            r.status = "superseded".into();
        }
        let Some(rev) = history.iter_mut().find(|r| r.version == plan.version) else {
            return fail(plan.prefix, "the release was changed by another operation");
        };
        rev.status = "deployed".into();
        rev.hooks = hooks_json;
        rev.description = p
            .get("--description")
            .map(str::to_owned)
            .unwrap_or_else(|| if plan.install { "Install complete" } else { "Upgrade complete" }.to_owned());
        let rev = rev.clone();
        let max: usize = p.get("--history-max").and_then(|m| m.parse().ok()).unwrap_or(10);
        if max > 0 && history.len() > max {
            let excess = history.len() - max;
            history.drain(..excess);
        }
        rev
    };
    if let Some(out) = formatted(&p, &rev.release_json(&plan.name, &plan.namespace)) {
        return out;
    }
    let lead = match (install_cmd, plan.install) {
        (false, true) => format!("Release \"{}\" does not exist. Installing it now.\n", plan.name),
        (false, false) => format!("Release \"{}\" has been upgraded. Happy Helming!\n", plan.name),
        _ => String::new(),
    };
    Output::ok(format!("{lead}{}", status_text(&plan.name, &plan.namespace, &rev)))
}

fn take_stuck(stuck: &mut Vec<super::super::StuckSpec>, name: &str, namespace: &str) -> bool {
    let Some(s) = stuck.iter_mut().find(|s| s.release == name && s.namespace.as_deref().is_none_or(|n| n == namespace))
    else {
        return false;
    };
    let left = s.count.unwrap_or(1).saturating_sub(1);
    s.count = Some(left);
    stuck.retain(|s| s.count != Some(0));
    true
}

fn new_revision(plan: &Plan, rendered: &Rendered, config: &Value, cwd: &Path, status: &str) -> Revision {
    let now = now_rfc3339();
    Revision {
        version: plan.version,
        status: status.to_owned(),
        chart: rendered.chart.clone(),
        chart_digest: chart_digest(cwd, &plan.chart),
        chart_values: rendered.chart_values.clone(),
        config: config.clone(),
        manifest: rendered.manifest.clone(),
        hooks: rendered
            .hooks
            .iter()
            .map(|h| h.json(json!({"started_at": "", "completed_at": "", "phase": ""})))
            .collect(),
        first_deployed: now.clone(),
        last_deployed: now,
        deleted: String::new(),
        description: if plan.install { "Initial install underway" } else { "Preparing upgrade" }.to_owned(),
    }
}

/// The keys of a stored manifest's objects.
pub(super) fn manifest_keys(manifest: &str, release_ns: &str) -> Vec<Key> {
    super::super::render::yaml_documents(manifest).unwrap_or_default().iter().map(|o| key_of(o, release_ns)).collect()
}

/// Marks the revision failed (Helm's description is the error), rolls back or uninstalls on
/// `--atomic`, and answers Helm's error.
async fn finish_failed(st: &Shared, cmd: &Running, plan: &Plan, p: &Parsed, reason: &str, hooks: Vec<Value>) -> Output {
    let verb = if plan.install { "installation" } else { "upgrade" };
    {
        let mut aks = st.aks.lock();
        let cluster = aks.cluster(&cmd.cluster);
        if let Some(rev) =
            cluster.history_mut(&plan.namespace, &plan.name).iter_mut().find(|r| r.version == plan.version)
        {
            rev.status = "failed".into();
            rev.hooks = hooks;
            rev.description = format!("Release \"{}\" failed: {reason}", plan.name);
        }
    }
    if !p.has("--atomic") {
        return fail(plan.prefix, reason);
    }
    if plan.install {
        let _ = uninstall_release(st, cmd, &plan.name, &plan.namespace, false);
        return fail(
            plan.prefix,
            format!("release {} failed, and has been uninstalled due to atomic being set: {reason}", plan.name),
        );
    }
    match rollback_release(st, cmd, &plan.name, &plan.namespace, 0) {
        Ok(_) => fail(
            plan.prefix,
            format!("release {} failed, and has been rolled back due to atomic being set: {reason}", plan.name),
        ),
        Err(e) => fail(
            plan.prefix,
            format!("an error occurred while rolling back the release. original {verb} error: {reason}: {e}"),
        ),
    }
}

/// Waits until every Deployment of `keys` is Available, or the deadline (or the give-up knob,
/// for one that can never become ready) passes.
async fn wait_available(st: &Shared, cmd: &Running, keys: &[Key], deadline: Instant) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let (pending, give_up) = {
            let mut aks = st.aks.lock();
            let give_up = aks.settings.give_up_after_ms.map(Duration::from_millis);
            let forced: Vec<Option<Block>> = keys.iter().map(|k| aks.forced(&k.namespace, &k.name)).collect();
            let cluster = aks.cluster(&cmd.cluster);
            let mut pending = Vec::new();
            for (k, forced) in keys.iter().zip(forced) {
                if let Some(o) = cluster.objects.get(k) {
                    if let Err(b) = availability(o, forced.as_ref()) {
                        let never = forced.is_some() || o.blocked.is_some();
                        pending.push((k.name.clone(), b, never));
                    }
                }
            }
            (pending, give_up)
        };
        if pending.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let all_never = pending.iter().all(|(_, _, never)| *never);
        if now >= deadline || (all_never && give_up.is_some_and(|g| now >= started + g)) {
            let (name, b, _) = &pending[0];
            return Err(format!("deployment {name}: {}: {}", b.reason, b.message));
        }
        tokio::time::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(now))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ownership_problems_as_helm_does() {
        let mine = owned(json!({"metadata": {"name": "s"}}), "airbyte", "airbyte");
        assert!(ownership_error(&mine, "airbyte", "airbyte").is_none());
        let err = ownership_error(&json!({"metadata": {"name": "s"}}), "airbyte", "airbyte").unwrap();
        assert!(err.starts_with("label validation error: missing key \"app.kubernetes.io/managed-by\""), "{err}");
        assert!(ownership_error(&mine, "other", "airbyte").unwrap().contains("must equal \"other\""));
    }
}
