//! `kubectl` (and in-cluster `curl`) over the emulated cluster: `get`, `wait`, `rollout status`,
//! `apply`, `create namespace`, `delete`, `version`, and the Service proxy the health check
//! uses (`kubectl get --raw /api/v1/namespaces/{ns}/services/{svc}:{port}/proxy/{path}`, or
//! `curl http://{svc}.{ns}.svc:{port}/{path}` from the pod). Messages are kubectl's.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

mod proxy;
mod wait;

pub use proxy::curl;
use proxy::raw;
use wait::{rollout_status, wait};

use super::args::{flag, parse, Flag, Parsed};
use super::cluster::{
    deployment_pods, deployment_with_status, kind_named, parse_selector, resource_named, Block, Kind, Object,
};
use super::exec::Running;
use super::render::yaml_documents;
use super::shim::Output;
use crate::state::Shared;

/// The version the inventory's cluster runs (`kubernetesVersion` in `arm/platform.rs`).
const VERSION: &str = "v1.33.3";
/// The runCommand pod's own namespace: where a short Service name resolves.
pub(super) const POD_NAMESPACE: &str = "aks-command";

const FLAGS: &[Flag] = &[
    flag(&["-n", "--namespace"], true),
    flag(&["-A", "--all-namespaces"], false),
    flag(&["--context"], true),
    flag(&["--kubeconfig"], true),
    flag(&["-o", "--output"], true),
    flag(&["-l", "--selector"], true),
    flag(&["--ignore-not-found"], false),
    flag(&["--timeout"], true),
    flag(&["--request-timeout"], true),
    flag(&["--for"], true),
    flag(&["--all"], false),
    flag(&["-f", "--filename"], true),
    flag(&["-R", "--recursive"], false),
    flag(&["--raw"], true),
    flag(&["--server-side"], false),
    flag(&["--force-conflicts"], false),
    flag(&["--field-manager"], true),
    flag(&["--dry-run"], true),
    flag(&["--wait"], false),
    flag(&["--now"], false),
    flag(&["--grace-period"], true),
    flag(&["--no-headers"], false),
    flag(&["--show-labels"], false),
    flag(&["--client"], false),
    flag(&["-v", "--v"], true),
];

fn parsed(args: &[String]) -> Result<Parsed, Output> {
    parse(args, FLAGS).map_err(|e| Output::err(format!("error: {e}")))
}

pub(super) fn namespace(p: &Parsed) -> String {
    p.get("-n").unwrap_or("default").to_owned()
}

/// `deployments.apps`, `secrets`: how kubectl names a resource in errors.
pub(super) fn resource_text(k: &Kind) -> String {
    match k.api_version.split_once('/') {
        Some((group, _)) => format!("{}.{group}", k.plural),
        None => k.plural.to_owned(),
    }
}

/// `deployment.apps/x`, `secret/x`: how kubectl names an object in its output.
pub(super) fn object_text(k: &Kind, name: &str) -> String {
    match k.api_version.split_once('/') {
        Some((group, _)) => format!("{}.{group}/{name}", k.kind.to_ascii_lowercase()),
        None => format!("{}/{name}", k.kind.to_ascii_lowercase()),
    }
}

pub(super) fn not_found(k: &Kind, name: &str) -> Output {
    Output::err(format!("Error from server (NotFound): {} \"{name}\" not found", resource_text(k)))
}

pub async fn run(st: &Shared, cmd: &Running, cwd: &Path, args: &[String], stdin: Option<&str>) -> Output {
    let p = match parsed(args) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let mut words = p.positional.iter().map(String::as_str);
    let sub = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    match sub {
        "version" => version(&p),
        "get" => get(st, cmd, &p, &rest).await,
        "wait" => wait(st, cmd, &p, &rest).await,
        "rollout" if rest.first() == Some(&"status") => rollout_status(st, cmd, &p, &rest[1..]).await,
        "apply" => apply(st, cmd, cwd, &p, stdin, false),
        "create" if matches!(rest.first(), Some(&"namespace" | &"ns")) => match rest.get(1) {
            Some(name) => create_namespace(st, cmd, name),
            None => Output::err("error: exactly one NAME is required, got 0"),
        },
        "create" if p.get("-f").is_some() => apply(st, cmd, cwd, &p, stdin, true),
        "delete" => delete(st, cmd, cwd, &p, &rest),
        "cluster-info" => Output::ok(
            "Kubernetes control plane is running at https://172.16.0.1:443\n\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n",
        ),
        "auth" if rest.first() == Some(&"can-i") => Output::ok("yes\n"),
        "logs" | "exec" | "attach" | "port-forward" | "cp" => {
            Output::err(format!("error: the emulated cluster runs no pods, so 'kubectl {sub}' has nothing to reach"))
        }
        "" => Output::err("error: You must specify the type of resource to get."),
        other => Output::err(format!("error: unknown command \"{other}\" for \"kubectl\" (or not emulated)")),
    }
}

fn version(p: &Parsed) -> Output {
    let info = |v: &str| json!({"major": "1", "minor": "33", "gitVersion": v, "goVersion": "go1.24.5", "compiler": "gc", "platform": "linux/amd64"});
    let mut body = json!({"clientVersion": info(VERSION), "kustomizeVersion": "v5.6.0"});
    if !p.has("--client") {
        body["serverVersion"] = info(VERSION);
    }
    match p.get("-o") {
        Some("json") => Output::ok(format!("{}\n", serde_json::to_string_pretty(&body).unwrap_or_default())),
        Some("yaml") => Output::ok(serde_norway::to_string(&body).unwrap_or_default()),
        _ => {
            let mut text = format!("Client Version: {VERSION}\nKustomize Version: v5.6.0\n");
            if !p.has("--client") {
                text.push_str(&format!("Server Version: {VERSION}\n"));
            }
            Output::ok(text)
        }
    }
}

/// The objects of one kind as the API server lists them (Deployments with status, Pods made up
/// from the Deployments, Namespaces from the namespace table).
pub(super) fn list_objects(st: &Shared, cmd: &Running, kind: &Kind, namespace: Option<&str>) -> Vec<Value> {
    let mut aks = st.aks.lock();
    let forced: Vec<(String, String, Block)> = aks
        .unavailable
        .iter()
        .filter_map(|u| aks.forced(&u.namespace, &u.deployment).map(|b| (u.namespace.clone(), u.deployment.clone(), b)))
        .collect();
    let force_of = |o: &Object| {
        let ns = o.body["metadata"]["namespace"].as_str().unwrap_or_default();
        forced.iter().find(|(n, d, _)| n == ns && d == o.name()).map(|(_, _, b)| b.clone())
    };
    let cluster = aks.cluster(&cmd.cluster);
    let in_ns = |o: &&Object| namespace.is_none_or(|ns| o.body["metadata"]["namespace"].as_str() == Some(ns));
    match kind.kind {
        "Namespace" => cluster
            .namespaces
            .iter()
            .map(|(name, created)| {
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "creationTimestamp": created,
                       "labels": {"kubernetes.io/metadata.name": name}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
            })
            .collect(),
        "Deployment" => {
            cluster.list(None, "Deployment").into_iter().filter(in_ns).map(|o| deployment_with_status(o, force_of(o).as_ref())).collect()
        }
        "Pod" => {
            let mut pods: Vec<Value> = cluster
                .list(None, "Deployment")
                .into_iter()
                .filter(in_ns)
                .flat_map(|o| deployment_pods(o, force_of(o).as_ref()))
                .collect();
            for o in cluster.list(None, "Pod").into_iter().filter(in_ns) {
                let mut pod = o.body.clone();
                pod["status"] = match &o.blocked {
                    Some(b) => json!({"phase": "Pending", "containerStatuses": [{"name": "main", "ready": false,
                                      "state": {"waiting": {"reason": b.reason, "message": b.message}}}]}),
                    None => json!({"phase": "Succeeded"}),
                };
                pods.push(pod);
            }
            pods
        }
        k => cluster.list(None, k).into_iter().filter(in_ns).map(|o| o.body.clone()).collect(),
    }
}

fn print_objects(p: &Parsed, kind: &Kind, items: &[Value], single: bool, namespace: Option<&str>) -> Output {
    match p.get("-o") {
        Some("json") => {
            let v = if single {
                items[0].clone()
            } else {
                json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
            };
            Output::ok(format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()))
        }
        Some("yaml") => {
            let v = if single { items[0].clone() } else { json!({"apiVersion": "v1", "kind": "List", "items": items}) };
            Output::ok(serde_norway::to_string(&v).unwrap_or_default())
        }
        Some("name") => Output::ok(
            items
                .iter()
                .map(|o| format!("{}\n", object_text(kind, o["metadata"]["name"].as_str().unwrap_or(""))))
                .collect::<String>(),
        ),
        Some(o) if o.starts_with("jsonpath") || o.starts_with("go-template") || o.starts_with("custom-columns") => {
            Output::err(format!("error: output format {o} is not emulated: use -o json (jq is on the PATH)"))
        }
        Some("wide") | None => {
            if items.is_empty() {
                let scope = namespace.map_or(String::new(), |ns| format!(" in {ns} namespace"));
                return Output { stdout: String::new(), stderr: format!("No resources found{scope}.\n"), exit: 0 };
            }
            Output::ok(table(p, kind, items))
        }
        Some(o) => Output::err(format!("error: unable to match a printer suitable for the output format \"{o}\"")),
    }
}

fn table(p: &Parsed, kind: &Kind, items: &[Value]) -> String {
    let name = |o: &Value| o["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let (header, rows): (&str, Vec<String>) = match kind.kind {
        "Deployment" => (
            "NAME\tREADY\tUP-TO-DATE\tAVAILABLE\tAGE",
            items
                .iter()
                .map(|o| {
                    let s = &o["status"];
                    format!(
                        "{}\t{}/{}\t{}\t{}\t1m",
                        name(o),
                        s["readyReplicas"],
                        s["replicas"],
                        s["updatedReplicas"],
                        s["availableReplicas"]
                    )
                })
                .collect(),
        ),
        "Pod" => (
            "NAME\tREADY\tSTATUS\tRESTARTS\tAGE",
            items
                .iter()
                .map(|o| {
                    let cs = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
                    let ready = cs.iter().filter(|c| c["ready"] == true).count();
                    let waiting = cs.iter().find_map(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_owned));
                    let phase = o["status"]["phase"].as_str().unwrap_or("");
                    let status =
                        waiting.unwrap_or_else(|| if phase == "Succeeded" { "Completed".into() } else { phase.into() });
                    format!("{}\t{ready}/{}\t{status}\t0\t1m", name(o), cs.len().max(1))
                })
                .collect(),
        ),
        "Namespace" => ("NAME\tSTATUS\tAGE", items.iter().map(|o| format!("{}\tActive\t1m", name(o))).collect()),
        _ => ("NAME\tAGE", items.iter().map(|o| format!("{}\t1m", name(o))).collect()),
    };
    let mut out = String::new();
    if !p.has("--no-headers") {
        out.push_str(header);
        out.push('\n');
    }
    for r in rows {
        out.push_str(&r);
        out.push('\n');
    }
    out
}

/// `KIND NAME...`, `KIND/NAME`, `KIND1,KIND2`: `(kind, names)` pairs.
pub(super) fn targets(words: &[&str]) -> Result<Vec<(&'static Kind, Vec<String>)>, Output> {
    let Some(first) = words.first() else {
        return Err(Output::err("error: You must specify the type of resource to get."));
    };
    let unknown = |w: &str| Output::err(format!("error: the server doesn't have a resource type \"{w}\""));
    if first.contains('/') {
        let mut out: Vec<(&'static Kind, Vec<String>)> = Vec::new();
        for w in words {
            let (k, n) = w.split_once('/').ok_or_else(|| Output::err("error: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form"))?;
            let kind = resource_named(k).ok_or_else(|| unknown(k))?;
            match out.iter_mut().find(|(kk, _)| kk.kind == kind.kind) {
                Some((_, names)) => names.push(n.to_owned()),
                None => out.push((kind, vec![n.to_owned()])),
            }
        }
        return Ok(out);
    }
    let names: Vec<String> = words[1..].iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    for k in first.split(',') {
        if k == "all" {
            out.extend(
                ["pods", "services", "deployments"].into_iter().filter_map(resource_named).map(|k| (k, names.clone())),
            );
            continue;
        }
        out.push((resource_named(k).ok_or_else(|| unknown(k))?, names.clone()));
    }
    Ok(out)
}

async fn get(st: &Shared, cmd: &Running, p: &Parsed, words: &[&str]) -> Output {
    if let Some(path) = p.get("--raw") {
        return raw(st, cmd, path);
    }
    let groups = match targets(words) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let ns = (!p.has("-A")).then(|| namespace(p));
    let selector = p.get("-l").map(parse_selector);
    let mut out = Output::ok("");
    for (kind, names) in groups {
        let scope = if kind.namespaced { ns.as_deref() } else { None };
        let mut items = list_objects(st, cmd, kind, scope);
        if let Some(sel) = &selector {
            items.retain(|o| sel.iter().all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v)));
        }
        if !names.is_empty() {
            let mut picked = Vec::new();
            for n in &names {
                match items.iter().find(|o| o["metadata"]["name"].as_str() == Some(n)) {
                    Some(o) => picked.push(o.clone()),
                    None if p.has("--ignore-not-found") => {}
                    None => return not_found(kind, n),
                }
            }
            items = picked;
        }
        let single = names.len() == 1 && items.len() == 1;
        let o = print_objects(p, kind, &items, single, scope);
        out.stdout.push_str(&o.stdout);
        out.stderr.push_str(&o.stderr);
        out.exit = out.exit.max(o.exit);
    }
    out
}

/// Availability of the named Deployments (or all in the namespace / matching the selector):
/// `Ok(names)` when each is there, `Err` when a name is not.
/// Each chosen Deployment's name and whether it is Available.
/// The documents of `-f` (a file, a folder's `.yaml`/`.yml`/`.json` files, or `-` for stdin).
fn read_manifests(cwd: &Path, p: &Parsed, stdin: Option<&str>) -> Result<Vec<(String, Value)>, Output> {
    let mut docs = Vec::new();
    for f in p.all("-f") {
        let mut sources = Vec::new();
        if f == "-" {
            sources.push(("STDIN".to_owned(), stdin.unwrap_or_default().to_owned()));
        } else {
            let path = cwd.join(f);
            if path.is_dir() {
                let mut entries: Vec<_> = std::fs::read_dir(&path)
                    .map_err(|e| Output::err(format!("error: {e}")))?
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                entries.sort();
                for e in entries
                    .into_iter()
                    .filter(|e| e.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
                {
                    let text = std::fs::read_to_string(&e).map_err(|err| Output::err(format!("error: {err}")))?;
                    sources.push((e.display().to_string(), text));
                }
            } else {
                let text = std::fs::read_to_string(&path)
                    .map_err(|_| Output::err(format!("error: the path \"{f}\" does not exist")))?;
                sources.push((f.to_owned(), text));
            }
        }
        for (name, text) in sources {
            let parsed = yaml_documents(&text).map_err(|e| Output::err(format!("error: error parsing {name}: {e}")))?;
            for d in parsed {
                if d["kind"] == "List" {
                    docs.extend(
                        d["items"].as_array().cloned().unwrap_or_default().into_iter().map(|i| (name.clone(), i)),
                    );
                } else {
                    docs.push((name.clone(), d));
                }
            }
        }
    }
    if docs.is_empty() {
        return Err(Output::err("error: no objects passed to apply"));
    }
    Ok(docs)
}

fn apply(st: &Shared, cmd: &Running, cwd: &Path, p: &Parsed, stdin: Option<&str>, create: bool) -> Output {
    if p.all("-f").is_empty() {
        return Output::err("error: must specify one of -f and -k");
    }
    let docs = match read_manifests(cwd, p, stdin) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let default_ns = namespace(p);
    let mut aks = st.aks.lock();
    let ready_after = Duration::from_millis(aks.settings.ready_after_ms);
    let cluster = aks.cluster(&cmd.cluster);
    let mut out = Output::ok("");
    for (source, doc) in docs {
        let kind_name = doc["kind"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        // Custom resources are not emulated: every kind outside the table is unknown.
        let Some(kind) = kind_named(kind_name) else {
            out.stderr.push_str(&format!(
                "error: resource mapping not found for name: \"{name}\" namespace: \"\" from \"{source}\": no matches for kind \"{kind_name}\" in version \"{}\"\nensure CRDs are installed first\n",
                doc["apiVersion"].as_str().unwrap_or("")
            ));
            out.exit = 1;
            continue;
        };
        if name.is_empty() {
            out.stderr.push_str(&format!("error: error validating \"{source}\": resource name may not be empty\n"));
            out.exit = 1;
            continue;
        }
        let ns = doc["metadata"]["namespace"].as_str().map(str::to_owned).unwrap_or_else(|| default_ns.clone());
        if kind.namespaced && !cluster.namespaces.contains_key(&ns) {
            out.stderr.push_str(&format!(
                "Error from server (NotFound): error when creating \"{source}\": namespaces \"{ns}\" not found\n"
            ));
            out.exit = 1;
            continue;
        }
        if create && cluster.get(&ns, kind.kind, &name).is_some() {
            out.stderr.push_str(&format!(
                "Error from server (AlreadyExists): error when creating \"{source}\": {} \"{name}\" already exists\n",
                resource_text(kind)
            ));
            out.exit = 1;
            continue;
        }
        let verdict = cluster.apply(doc, &ns, ready_after);
        out.stdout.push_str(&format!("{} {}\n", object_text(kind, &name), if create { "created" } else { verdict }));
    }
    out
}

fn create_namespace(st: &Shared, cmd: &Running, name: &str) -> Output {
    let mut aks = st.aks.lock();
    let cluster = aks.cluster(&cmd.cluster);
    if cluster.namespaces.contains_key(name) {
        return Output::err(format!("Error from server (AlreadyExists): namespaces \"{name}\" already exists"));
    }
    cluster.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}), "", Duration::ZERO);
    Output::ok(format!("namespace/{name} created\n"))
}

fn delete(st: &Shared, cmd: &Running, cwd: &Path, p: &Parsed, words: &[&str]) -> Output {
    let mut wanted: Vec<(&'static Kind, String, String)> = Vec::new();
    if !p.all("-f").is_empty() {
        let docs = match read_manifests(cwd, p, None) {
            Ok(d) => d,
            Err(o) => return o,
        };
        for (_, d) in docs {
            if let Some(k) = d["kind"].as_str().and_then(kind_named) {
                let ns = d["metadata"]["namespace"].as_str().map(str::to_owned).unwrap_or_else(|| namespace(p));
                wanted.push((k, ns, d["metadata"]["name"].as_str().unwrap_or_default().to_owned()));
            }
        }
    } else {
        let groups = match targets(words) {
            Ok(t) => t,
            Err(o) => return o,
        };
        for (k, names) in groups {
            if names.is_empty() {
                return Output::err("error: resource(s) were provided, but no name was specified");
            }
            wanted.extend(names.into_iter().map(|n| (k, namespace(p), n)));
        }
    }
    let mut aks = st.aks.lock();
    let cluster = aks.cluster(&cmd.cluster);
    let mut out = Output::ok("");
    for (kind, ns, name) in wanted {
        let key = super::cluster::Key {
            namespace: if kind.namespaced { ns } else { String::new() },
            kind: kind.kind.to_owned(),
            name: name.clone(),
        };
        let exists =
            cluster.objects.contains_key(&key) || (kind.kind == "Namespace" && cluster.namespaces.contains_key(&name));
        if !exists {
            if !p.has("--ignore-not-found") {
                out.stderr
                    .push_str(&format!("Error from server (NotFound): {} \"{name}\" not found\n", resource_text(kind)));
                out.exit = 1;
            }
            continue;
        }
        cluster.delete(&key);
        out.stdout.push_str(&format!("{} \"{name}\" deleted\n", kind.kind.to_ascii_lowercase()));
    }
    out
}
