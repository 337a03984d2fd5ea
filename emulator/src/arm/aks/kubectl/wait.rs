//! `kubectl wait` and `kubectl rollout status`: Deployments polled until Available.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::args::{duration_ms, Parsed};
use super::super::cluster::{availability, kind_named, parse_selector, Block, Kind, Object};
use super::super::exec::Running;
use super::super::shim::Output;
use super::{list_objects, namespace, not_found, object_text, targets};
use crate::state::Shared;

type Availability = Vec<(String, Result<(), Block>)>;

fn deployments_now(
    st: &Shared,
    cmd: &Running,
    ns: &str,
    names: &[String],
    selector: Option<&str>,
) -> Result<Availability, Output> {
    let kind = kind_named("Deployment").unwrap_or(&super::super::cluster::KINDS[0]);
    let mut aks = st.aks.lock();
    let forced = aks.forced_in(ns);
    let cluster = aks.cluster(&cmd.cluster);
    let all = cluster.list(Some(ns), "Deployment");
    let sel = selector.map(parse_selector);
    let chosen: Vec<&Object> = if names.is_empty() {
        all.into_iter()
            .filter(|o| sel.as_ref().is_none_or(|s| s.iter().all(|(k, v)| o.labels().get(k) == Some(v))))
            .collect()
    } else {
        let mut v = Vec::new();
        for n in names {
            match all.iter().find(|o| o.name() == n) {
                Some(o) => v.push(*o),
                None => return Err(not_found(kind, n)),
            }
        }
        v
    };
    Ok(chosen
        .into_iter()
        .map(|o| {
            let f = forced.iter().find(|(d, _)| d == o.name()).map(|(_, b)| b.clone());
            (o.name().to_owned(), availability(o, f.as_ref()))
        })
        .collect())
}

/// Polls until every Deployment is Available or the timeout (or the give-up knob) passes.
async fn wait_deployments(
    st: &Shared,
    cmd: &Running,
    ns: &str,
    names: &[String],
    selector: Option<&str>,
    timeout_ms: u64,
) -> Result<Vec<String>, (Vec<String>, String)> {
    let started = Instant::now();
    let give_up = st.aks.lock().settings.give_up_after_ms;
    loop {
        let state = match deployments_now(st, cmd, ns, names, selector) {
            Ok(s) => s,
            Err(o) => return Err((Vec::new(), o.stderr.trim_end().to_owned())),
        };
        if state.is_empty() {
            return Err((Vec::new(), "error: no matching resources found".into()));
        }
        let pending: Vec<&(String, Result<(), Block>)> = state.iter().filter(|(_, s)| s.is_err()).collect();
        if pending.is_empty() {
            return Ok(state.into_iter().map(|(n, _)| n).collect());
        }
        let elapsed = started.elapsed().as_millis() as u64;
        let never =
            pending.iter().all(|(_, s)| s.as_ref().err().is_some_and(|b| b.reason != "MinimumReplicasUnavailable"));
        if elapsed >= timeout_ms || (never && give_up.is_some_and(|g| elapsed >= g)) {
            let done: Vec<String> = state.iter().filter(|(_, s)| s.is_ok()).map(|(n, _)| n.clone()).collect();
            return Err((done, pending[0].0.clone()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn wait(st: &Shared, cmd: &Running, p: &Parsed, words: &[&str]) -> Output {
    let Some(condition) = p.get("--for") else {
        return Output::err("error: --for must be specified");
    };
    let timeout_ms = match p.get("--timeout") {
        None => 30_000,
        Some(t) => match duration_ms(t) {
            Some(ms) => ms,
            None => return Output::err(format!("error: invalid argument \"{t}\" for \"--timeout\" flag")),
        },
    };
    let groups = match targets(words) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let [(kind, names)] = groups.as_slice() else {
        return Output::err("error: wait is emulated for one resource type at a time");
    };
    let wanted = condition.strip_prefix("condition=").map(|c| c.split('=').next().unwrap_or(c).to_ascii_lowercase());
    let ok = matches!((kind.kind, wanted.as_deref()), ("Deployment", Some("available")) | ("Pod", Some("ready")));
    if !ok {
        return Output::err(format!("error: waiting --for={condition} on {} is not emulated (Deployments: condition=Available, Pods: condition=Ready)", kind.plural));
    }
    if names.is_empty() && !p.has("--all") && p.get("-l").is_none() {
        return Output::err("error: resource(s) were provided, but no name was specified");
    }
    let ns = namespace(p);
    if kind.kind == "Pod" {
        // Pods are the Deployments' pods: Ready when their Deployment is Available.
        let deps = match deployments_now(st, cmd, &ns, &[], None) {
            Ok(d) => d,
            Err(o) => return o,
        };
        let pods = list_objects(st, cmd, kind, Some(&ns));
        let sel = p.get("-l").map(parse_selector);
        let chosen: Vec<&Value> = pods
            .iter()
            .filter(|o| {
                sel.as_ref().is_none_or(|s| s.iter().all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v)))
            })
            .collect();
        if chosen.is_empty() {
            return Output::err("error: no matching resources found");
        }
        let waits: Vec<String> = deps
            .into_iter()
            .map(|(n, _)| n)
            .filter(|d| {
                chosen.iter().any(|o| o["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(d.as_str())))
            })
            .collect();
        return match wait_deployments(st, cmd, &ns, &waits, None, timeout_ms).await {
            Ok(_) => Output::ok(
                chosen
                    .iter()
                    .map(|o| format!("pod/{} condition met\n", o["metadata"]["name"].as_str().unwrap_or("")))
                    .collect::<String>(),
            ),
            Err((_, _)) => Output::err(format!(
                "error: timed out waiting for the condition on pods/{}",
                chosen[0]["metadata"]["name"].as_str().unwrap_or("")
            )),
        };
    }
    match wait_deployments(st, cmd, &ns, names, p.get("-l"), timeout_ms).await {
        Ok(done) => {
            Output::ok(done.iter().map(|n| format!("{} condition met\n", object_text(kind, n))).collect::<String>())
        }
        Err((done, failed)) if failed.starts_with("error") || failed.starts_with("Error") => {
            Output { stdout: met(kind, &done), stderr: format!("{failed}\n"), exit: 1 }
        }
        Err((done, failed)) => Output {
            stdout: met(kind, &done),
            stderr: format!("error: timed out waiting for the condition on {}/{failed}\n", kind.plural),
            exit: 1,
        },
    }
}

fn met(kind: &Kind, done: &[String]) -> String {
    done.iter().map(|n| format!("{} condition met\n", object_text(kind, n))).collect()
}

pub(super) async fn rollout_status(st: &Shared, cmd: &Running, p: &Parsed, words: &[&str]) -> Output {
    let groups = match targets(words) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let [(kind, names)] = groups.as_slice() else {
        return Output::err("error: rollout status takes one resource");
    };
    if kind.kind != "Deployment" || names.len() != 1 {
        return Output::err("error: rollout status is emulated for one Deployment (deployment/NAME)");
    }
    let timeout_ms = p.get("--timeout").and_then(duration_ms).filter(|t| *t > 0).unwrap_or(u64::MAX / 2);
    match wait_deployments(st, cmd, &namespace(p), names, None, timeout_ms).await {
        Ok(_) => Output::ok(format!("deployment \"{}\" successfully rolled out\n", names[0])),
        Err((_, f)) if f.starts_with("Error") => Output::err(f),
        Err(_) => Output {
            stdout: format!(
                "Waiting for deployment \"{}\" rollout to finish: 0 of 1 updated replicas are available...\n",
                names[0]
            ),
            stderr: "error: timed out waiting for the condition\n".into(),
            exit: 1,
        },
    }
}
