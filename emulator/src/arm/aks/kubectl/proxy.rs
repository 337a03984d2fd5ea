//! The Service proxy: what answers the health check inside the cluster.

use std::time::Duration;

use serde_json::Value;

use super::super::args::{flag, parse};
use super::super::cluster::{availability, labels_of, selects, Object};
use super::super::exec::Running;
use super::super::shim::Output;
use super::POD_NAMESPACE;
use crate::state::Shared;

enum Reach {
    /// No such Service (curl: cannot resolve; the proxy: NotFound).
    NoService,
    /// The Service has no ready endpoint.
    NoEndpoints,
    Answer(u16, String),
}

/// A request to `svc.ns:port/path`: 200 `{"available":true}` for a path a backing container
/// probes (readiness, liveness, startup), 404 for any other; no pod runs to answer more.
fn reach(st: &Shared, cmd: &Running, ns: &str, svc: &str, port: Option<&str>, path: &str) -> Reach {
    let mut aks = st.aks.lock();
    let forced = aks.forced_in(ns);
    let cluster = aks.cluster(&cmd.cluster);
    let Some(service) = cluster.get(ns, "Service", svc) else {
        return Reach::NoService;
    };
    let ports = service.body["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let port_spec = match port {
        None => ports.first().cloned(),
        Some(p) => ports
            .iter()
            .find(|sp| {
                sp["port"].as_u64().map(|n| n.to_string()).as_deref() == Some(p) || sp["name"].as_str() == Some(p)
            })
            .cloned(),
    };
    let Some(port_spec) = port_spec else {
        return Reach::NoEndpoints;
    };
    let target = port_spec.get("targetPort").cloned().unwrap_or_else(|| port_spec["port"].clone());
    let selector = service.body["spec"]["selector"].clone();
    let backends: Vec<&Object> = cluster
        .list(Some(ns), "Deployment")
        .into_iter()
        .filter(|d| selects(&selector, &labels_of(&d.body["spec"]["template"]["metadata"]["labels"])))
        .filter(|d| availability(d, forced.iter().find(|(n, _)| n == d.name()).map(|(_, b)| b)).is_ok())
        .collect();
    if backends.is_empty() {
        return Reach::NoEndpoints;
    }
    let wanted = format!("/{}", path.trim_start_matches('/'));
    let probed = backends.iter().any(|d| {
        d.body["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten().any(|c| {
            let port_matches = |probe_port: &Value| {
                *probe_port == target
                    || c["ports"].as_array().into_iter().flatten().any(|cp| {
                        (cp["name"] == *probe_port || cp["containerPort"] == *probe_port)
                            && (cp["name"] == target || cp["containerPort"] == target)
                    })
            };
            ["readinessProbe", "livenessProbe", "startupProbe"].iter().any(|probe| {
                let get = &c[*probe]["httpGet"];
                get["path"].as_str() == Some(wanted.split('?').next().unwrap_or(&wanted)) && port_matches(&get["port"])
            })
        })
    });
    if probed {
        Reach::Answer(200, "{\"available\":true}".into())
    } else {
        Reach::Answer(404, "404 page not found\n".into())
    }
}

/// `kubectl get --raw`: the API server's health paths and the Service proxy.
pub(super) fn raw(st: &Shared, cmd: &Running, path: &str) -> Output {
    if matches!(path.split('?').next(), Some("/readyz" | "/livez" | "/healthz")) {
        return Output::ok("ok");
    }
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(7, '/').collect();
    // api/v1/namespaces/{ns}/services/{[scheme:]name[:port]}/proxy/{rest}
    if segs.len() >= 6
        && segs[0] == "api"
        && segs[1] == "v1"
        && segs[2] == "namespaces"
        && segs[4] == "services"
        && segs[6].starts_with("proxy")
    {
        let (ns, target) = (segs[3], segs[5]);
        let parts: Vec<&str> = target.split(':').collect();
        let (svc, port) = match parts.as_slice() {
            [n] => (*n, None),
            ["http" | "https", n, p] => (*n, Some(*p)),
            [n, p] => (*n, Some(*p)),
            _ => (target, None),
        };
        let rest = segs[6].trim_start_matches("proxy");
        return match reach(st, cmd, ns, svc, port, rest) {
            Reach::NoService => Output::err(format!("Error from server (NotFound): services \"{svc}\" not found")),
            Reach::NoEndpoints => Output::err(format!(
                "Error from server (ServiceUnavailable): no endpoints available for service \"{svc}\""
            )),
            Reach::Answer(200, body) => Output::ok(body),
            Reach::Answer(_, _) => {
                Output::err("Error from server (NotFound): the server could not find the requested resource")
            }
        };
    }
    Output::err("Error from server (NotFound): the server could not find the requested resource")
}

/// `curl` inside the pod: only cluster Services are reachable (the cluster is private).
pub async fn curl(st: &Shared, cmd: &Running, args: &[String]) -> Output {
    let flags = [
        flag(&["-s", "--silent"], false),
        flag(&["-S", "--show-error"], false),
        flag(&["-f", "--fail"], false),
        flag(&["-o", "--output"], true),
        flag(&["-w", "--write-out"], true),
        flag(&["-m", "--max-time"], true),
        flag(&["--connect-timeout"], true),
        flag(&["--retry"], true),
        flag(&["--retry-delay"], true),
        flag(&["--retry-connrefused"], false),
        flag(&["--retry-all-errors"], false),
        flag(&["-k", "--insecure"], false),
        flag(&["-H", "--header"], true),
        flag(&["-L", "--location"], false),
        flag(&["-X", "--request"], true),
        flag(&["-i", "--include"], false),
        flag(&["-v", "--verbose"], false),
        flag(&["-sS"], false),
        flag(&["-fsS"], false),
        flag(&["-sf"], false),
        flag(&["-fs"], false),
    ];
    // Combined short flags (`-fsS`) are common in scripts: expand them.
    let mut expanded = Vec::new();
    for a in args {
        if a.starts_with('-') && !a.starts_with("--") && a.len() > 2 && a[1..].chars().all(|c| "sSfLkiv".contains(c)) {
            expanded.extend(a[1..].chars().map(|c| format!("-{c}")));
        } else {
            expanded.push(a.clone());
        }
    }
    let p = match parse(&expanded, &flags) {
        Ok(p) => p,
        Err(e) => {
            return Output {
                stdout: String::new(),
                stderr: format!("curl: option {}: is unknown\n", e.trim_start_matches("unknown flag: ")),
                exit: 2,
            }
        }
    };
    let silent = p.has("-s") && !p.has("-S");
    let fail = |code: i32, msg: String| Output {
        stdout: String::new(),
        stderr: if silent { String::new() } else { format!("curl: ({code}) {msg}\n") },
        exit: code,
    };
    let Some(url) = p.positional.first() else {
        return fail(2, "no URL specified".into());
    };
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return fail(1, format!("Protocol not supported or disabled in libcurl: {url}"));
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (host, port) = authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
    let labels: Vec<&str> = host.split('.').collect();
    let (svc, ns) = match labels.as_slice() {
        [svc] => (*svc, POD_NAMESPACE),
        [svc, ns] | [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => (*svc, *ns),
        _ => return fail(6, format!("Could not resolve host: {host}")),
    };
    let retries: u32 = p.get("--retry").and_then(|r| r.parse().ok()).unwrap_or(0);
    let delay = p.get("--retry-delay").and_then(|d| d.parse::<u64>().ok()).unwrap_or(1);
    let mut attempt = 0;
    let (status, body) = loop {
        match reach(st, cmd, ns, svc, port, path) {
            Reach::NoService => return fail(6, format!("Could not resolve host: {host}")),
            Reach::NoEndpoints if attempt < retries && p.has("--retry-connrefused") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(delay)).await;
            }
            Reach::NoEndpoints => {
                return fail(
                    7,
                    format!(
                        "Failed to connect to {host} port {} after 0 ms: Couldn't connect to server",
                        port.unwrap_or("80")
                    ),
                )
            }
            Reach::Answer(s, b) => break (s, b),
        }
    };
    if p.has("-f") && status >= 400 {
        return fail(22, format!("The requested URL returned error: {status}"));
    }
    let mut stdout = String::new();
    if p.has("-i") {
        stdout.push_str(&format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\r\n"));
    }
    match p.get("-o") {
        Some(file) if file != "-" => {
            if let Err(e) = std::fs::write(cmd.work.join(file), &body) {
                return fail(23, format!("Failure writing output to destination: {e}"));
            }
        }
        _ => stdout.push_str(&body),
    }
    if let Some(w) = p.get("-w") {
        stdout.push_str(&w.replace("%{http_code}", &status.to_string()).replace("\\n", "\n"));
    }
    Output::ok(stdout)
}
