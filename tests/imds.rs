//! The production identity path. In deploymentScripts the container has no `IDENTITY_ENDPOINT`:
//! tokens come from IMDS at 169.254.169.254, an address `azure_identity` hard-codes, and the
//! identity is named by `AZ_SCRIPTS_USER_ASSIGNED_IDENTITY`. The only way to serve that address
//! here is a network namespace of the test's own (`unshare --net`, as root), in which
//! `tests/identity/imds-netns.sh` starts a stack whose emulator also speaks IMDS on port 80 and
//! runs `run artifacts` the way deploymentScripts runs it.
//!
//! Needs no stack of `scripts/test`'s: it starts its own inside the namespace.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn a_phase_takes_its_tokens_from_imds_at_169_254_169_254_inside_a_network_namespace() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imds");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/identity/imds-netns.sh");
    let o = Command::new("unshare")
        .args(["--net", "--", script])
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        // Nothing of the host's stack may leak in: the script sources the namespace's own env.
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .env_remove("VIBEDATA_STACK_DIR")
        .output()
        .expect("unshare (util-linux) runs");
    let log = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n--- stack\n{}\n--- run\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr),
        log("stack.log"),
        log("run.log")
    );

    let outputs: Value = serde_json::from_str(&log("outputs.json")).expect("outputs at AZ_SCRIPTS_OUTPUT_PATH");
    assert_eq!(outputs["phase"], "artifacts");
    assert_eq!(outputs["status"], "succeeded", "{outputs:#}");
    assert!(outputs["changes"].as_u64().unwrap() > 0, "a fresh stack imports the release: {outputs:#}");

    // Every token came from IMDS, for the identity's resource id, one per audience the phase
    // needs; the App Service endpoint saw nothing.
    let journal: Vec<Value> = serde_json::from_str(&log("journal.json")).unwrap();
    let imds: Vec<&Value> = journal.iter().filter(|e| e["listener"] == "imds").collect();
    assert!(journal.iter().all(|e| e["path"] != "/msi/token"), "the App Service endpoint was used");
    let audiences: std::collections::BTreeSet<String> = imds
        .iter()
        .filter(|e| e["status"] == 200)
        .map(|e| {
            let q = e["query"].as_str().unwrap_or_default();
            assert!(q.contains("msi_res_id="), "the identity is named by its resource id: {q}");
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "resource").unwrap().1.into_owned()
        })
        .collect();
    for audience in ["https://management.azure.com", "https://storage.azure.com"] {
        assert!(
            audiences.iter().any(|a| a.trim_end_matches('/') == audience),
            "no IMDS token for {audience}: {audiences:?}"
        );
    }
    // Microsoft's Python SDK, unmodified, got a token from the same listener.
    assert_eq!(log("python-token.txt").trim(), "ok https://vault.azure.net");
}
