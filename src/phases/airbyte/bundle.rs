//! The commands sent to the cluster, and the `context` zip they run in.
//!
//! Command texts carry names only: ARM keeps them, the service logs them, and so does the
//! journal. Credentials travel in `context` (the Secret manifest), which only the command pod
//! unpacks. The read-only commands (`helm status`, `helm get values`, `kubectl wait`, `kubectl
//! get --raw`) are plain command lines, so anyone reading the journal sees they change nothing.

use serde_json::Value;

use super::values::{ERROR_MARK, RESULT_MARK, STATUS_MARK, VALUES_MARK};
use crate::zip::{self, ZipError};

/// Installs or upgrades; the last line is `VIBEDATA-RESULT <helm status JSON>`.
pub const INSTALL_SH: &str = r#"#!/bin/bash
# vibedata-bootstrap: install or upgrade the release's Airbyte chart, then report its status.
# Arguments: namespace release timeout chart-file recover(uninstall|rollback|"")
set -euo pipefail
ns="$1" release="$2" timeout="$3" chart="$4" recover="${5:-}"
# The runtime image's helm version is not documented: say which one ran.
helm version --short
kubectl apply -f namespace.json
kubectl apply -f secret.json
case "$recover" in
  uninstall) helm uninstall "$release" -n "$ns" --wait --timeout "$timeout" ;;
  rollback) helm rollback "$release" -n "$ns" --wait --timeout "$timeout" ;;
  "") ;;
  *) echo "unknown recovery $recover" >&2; exit 2 ;;
esac
helm upgrade --install "$release" "./$chart" -n "$ns" -f values.json --wait --timeout "$timeout"
echo "VIBEDATA-RESULT $(helm status "$release" -n "$ns" -o json)"
"#;

/// The zip an install runs in.
pub fn install_context(
    chart_file: &str,
    chart: &[u8],
    values: &Value,
    namespace: &Value,
    secret: &Value,
) -> Result<Vec<u8>, ZipError> {
    let values = serde_json::to_vec_pretty(values).expect("serializes");
    let namespace = serde_json::to_vec_pretty(namespace).expect("serializes");
    let secret = serde_json::to_vec_pretty(secret).expect("serializes");
    zip::build(&[
        ("install.sh", INSTALL_SH.as_bytes()),
        (chart_file, chart),
        ("values.json", &values),
        ("namespace.json", &namespace),
        ("secret.json", &secret),
    ])
}

/// The install command line.
pub fn install_command(namespace: &str, release: &str, timeout_secs: u64, chart_file: &str, recover: &str) -> String {
    format!("bash install.sh {namespace} {release} {timeout_secs}s {chart_file} {recover}").trim_end().to_owned()
}

/// Reads the release's state: prints `VIBEDATA-STATUS` then helm status (`null` when it failed),
/// `VIBEDATA-ERROR` then why it failed, `VIBEDATA-VALUES` then its values. Changes nothing, and
/// is one flat list of reads (no `if`), so the service can see it is read-only.
pub fn probe_command(namespace: &str, release: &str) -> String {
    format!(
        "echo {STATUS_MARK}; helm status {release} -n {namespace} -o json 2>status.err || echo null; \
         echo {ERROR_MARK}; cat status.err; \
         echo {VALUES_MARK}; helm get values {release} -n {namespace} -o json 2>/dev/null || echo null"
    )
}

/// Waits for every deployment to be Available, then asks the server's health endpoint through
/// the API server's service proxy. Changes nothing.
pub fn verify_command(namespace: &str, release: &str, timeout_secs: u64) -> String {
    format!(
        "kubectl wait --for=condition=Available deployment --all -n {namespace} --timeout={timeout_secs}s && \
         kubectl get --raw /api/v1/namespaces/{namespace}/services/{release}-airbyte-server-svc:8001/proxy/api/v1/health"
    )
}

/// The helm status JSON after `VIBEDATA-RESULT`, if the install printed it.
pub fn install_result(logs: &str) -> Option<Value> {
    let line = logs.lines().rev().find(|l| l.starts_with(RESULT_MARK))?;
    serde_json::from_str(line[RESULT_MARK.len()..].trim()).ok()
}

/// The last lines of a command's output, for an error line.
pub fn tail(logs: &str, lines: usize) -> String {
    let all: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_texts_carry_no_secret_and_read_only_commands_only_read() {
        let install = install_command("airbyte", "airbyte", 480, "airbyte-2.2.0.tgz", "");
        assert_eq!(install, "bash install.sh airbyte airbyte 480s airbyte-2.2.0.tgz");
        assert_eq!(install_command("a", "a", 1, "c.tgz", "rollback"), "bash install.sh a a 1s c.tgz rollback");
        let probe = probe_command("airbyte", "airbyte");
        assert!(probe.contains("helm status airbyte -n airbyte -o json") && probe.contains("helm get values"));
        for verb in ["install", "upgrade", "apply", "delete", "rollback", "uninstall"] {
            assert!(!probe.contains(verb) && !verify_command("a", "a", 5).contains(verb), "{verb}");
        }
    }

    #[test]
    fn the_result_line_and_tails_are_read() {
        let logs = "v3.17.2\nRelease \"airbyte\" has been upgraded.\nVIBEDATA-RESULT {\"version\":3,\"info\":{\"status\":\"deployed\"}}\n";
        assert_eq!(install_result(logs).unwrap()["version"], 3);
        assert_eq!(tail(logs, 1), "VIBEDATA-RESULT {\"version\":3,\"info\":{\"status\":\"deployed\"}}");
        assert_eq!(install_result("no result"), None);
    }
}
