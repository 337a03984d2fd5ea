//! What Airbyte is installed with, as pure functions: the chart values from the platform, the
//! Kubernetes Secret that carries the credentials, the digests that tell an unchanged install
//! from a changed one, and the decision between them.

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::azure::identity::Secret;

/// The Secret the chart reads (`global.database.secretName`, `global.storage.secretName`).
pub const SECRET_NAME: &str = "airbyte-config-secrets";
/// Blob containers Airbyte keeps its logs, state and workload output in.
pub const CONTAINERS: [&str; 3] = ["airbyte-logs", "airbyte-state", "airbyte-workload"];

/// What the values are made of.
pub struct Inputs<'a> {
    pub release: &'a str,
    /// The customer registry's login server: a private cluster pulls from nowhere else.
    pub registry: &'a str,
    pub db_host: &'a str,
    pub db_port: u16,
    pub db_name: &'a str,
    pub chart_digest: &'a str,
}

/// The chart values, without any secret. `vibedata.*` records what was installed, so a later
/// run reads it back with `helm get values`.
pub fn values(i: &Inputs<'_>, values_digest: &str) -> Value {
    json!({
        "global": {
            "image": {"registry": i.registry, "tag": i.release},
            "database": {
                "type": "external",
                "secretName": SECRET_NAME,
                "host": i.db_host,
                "port": i.db_port,
                "name": i.db_name,
                "userSecretKey": "database-user",
                "passwordSecretKey": "database-password",
            },
            // Lower case: the chart compares with eq "azure" and silently ignores "Azure".
            "storage": {
                "type": "azure",
                "secretName": SECRET_NAME,
                "bucket": {"log": CONTAINERS[0], "state": CONTAINERS[1], "workloadOutput": CONTAINERS[2]},
                "azure": {"connectionStringSecretKey": "azure-blob-store-connection-string"},
            },
        },
        "postgresql": {"enabled": false},
        "minio": {"enabled": false},
        "vibedata": {"release": i.release, "chartDigest": i.chart_digest, "valuesDigest": values_digest},
    })
}

/// `sha256:` of the values without their `vibedata` record, and of an HMAC of the secret values:
/// a changed password or key changes the digest, and the digest reveals neither.
pub fn values_digest(i: &Inputs<'_>, secrets: &[&Secret], hmac_key: &Secret) -> String {
    let mut v = values(i, "");
    v.as_object_mut().expect("an object").remove("vibedata");
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&v).expect("serializes"));
    let mut joined = Vec::new();
    for s in secrets {
        joined.extend_from_slice(s.expose().as_bytes());
        joined.push(0);
    }
    h.update(hmac_sha256(hmac_key.expose().as_bytes(), &joined));
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The namespace, for `kubectl apply` before the Secret that lives in it.
pub fn namespace_manifest(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
}

/// The Kubernetes Secret with the credentials: it travels inside the command's `context`, never
/// in its text (which ARM and the journal keep).
pub fn secret_manifest(namespace: &str, user: &str, password: &Secret, connection_string: &Secret) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": SECRET_NAME, "namespace": namespace},
        "stringData": {
            "database-user": user,
            "database-password": password.expose(),
            "azure-blob-store-connection-string": connection_string.expose(),
        },
    })
}

/// The release as `helm status` and `helm get values` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub status: String,
    pub revision: u64,
    pub chart_digest: Option<String>,
    pub values_digest: Option<String>,
}

#[derive(Deserialize)]
struct HelmStatus {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    info: HelmInfo,
}

#[derive(Default, Deserialize)]
struct HelmInfo {
    #[serde(default)]
    status: String,
}

pub const STATUS_MARK: &str = "VIBEDATA-STATUS";
pub const VALUES_MARK: &str = "VIBEDATA-VALUES";
pub const ERROR_MARK: &str = "VIBEDATA-ERROR";
pub const RESULT_MARK: &str = "VIBEDATA-RESULT";

/// Helm's words for a release that does not exist (`helm status`, `helm get`).
const NOT_FOUND: &str = "release: not found";

/// Reads the probe command's output: `None` when the release does not exist. A `helm status`
/// that failed for any other reason (the API server refused us, a timeout) is an error, never
/// "not installed": installing over a release we could not read would be a guess.
pub fn parse_probe(logs: &str) -> Result<Option<Deployed>, String> {
    let section = |mark: &str| -> Option<String> {
        let start = logs.find(mark)? + mark.len();
        let rest = &logs[start..];
        let end =
            [STATUS_MARK, ERROR_MARK, VALUES_MARK].iter().filter_map(|m| rest.find(m)).min().unwrap_or(rest.len());
        Some(rest[..end].trim().to_owned())
    };
    let status = section(STATUS_MARK).ok_or("the probe printed no status")?;
    if status.is_empty() || status == "null" {
        let error = section(ERROR_MARK).unwrap_or_default();
        if error.is_empty() || error.contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(format!("helm status failed: {}", error.lines().last().unwrap_or_default()));
    }
    let parsed: HelmStatus = serde_json::from_str(&status).map_err(|e| format!("helm status is not JSON: {e}"))?;
    let values: Value = section(VALUES_MARK)
        .filter(|v| !v.is_empty() && v != "null")
        .map(|v| serde_json::from_str(&v).map_err(|e| format!("helm get values is not JSON: {e}")))
        .transpose()?
        .unwrap_or(Value::Null);
    let text = |k: &str| values.pointer(&format!("/vibedata/{k}")).and_then(Value::as_str).map(str::to_owned);
    Ok(Some(Deployed {
        status: parsed.info.status,
        revision: parsed.version,
        chart_digest: text("chartDigest"),
        values_digest: text("valuesDigest"),
    }))
}

/// What to do with the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Deployed with the chart and values we want.
    Unchanged,
    Install,
    Upgrade,
    /// Stuck `pending-install` from a killed run: uninstall, then install.
    UninstallThenInstall,
    /// Stuck `pending-upgrade` or `pending-rollback`: roll back to the last good revision, then upgrade.
    RollbackThenUpgrade,
    /// Failed: upgrade over it (Helm allows it), which also resets the status.
    Repair,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Unchanged => "unchanged",
            Action::Install => "install",
            Action::Upgrade => "upgrade",
            Action::UninstallThenInstall => "uninstall the stuck release, then install",
            Action::RollbackThenUpgrade => "roll back the stuck release, then upgrade",
            Action::Repair => "upgrade over the failed release",
        }
    }

    /// The `recover` argument of install.sh.
    pub fn recover(self) -> &'static str {
        match self {
            Action::UninstallThenInstall => "uninstall",
            Action::RollbackThenUpgrade => "rollback",
            _ => "",
        }
    }
}

/// Decides from the release's state. Only called when no command of ours is still running.
pub fn decide(deployed: Option<&Deployed>, chart_digest: &str, values_digest: &str) -> Action {
    let Some(d) = deployed else { return Action::Install };
    match d.status.as_str() {
        "deployed"
            if d.chart_digest.as_deref() == Some(chart_digest) && d.values_digest.as_deref() == Some(values_digest) =>
        {
            Action::Unchanged
        }
        "deployed" | "superseded" => Action::Upgrade,
        "pending-install" => Action::UninstallThenInstall,
        "pending-upgrade" | "pending-rollback" => Action::RollbackThenUpgrade,
        "uninstalled" | "uninstalling" => Action::Install,
        _ => Action::Repair,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs<'static> {
        Inputs {
            release: "2026.11.0",
            registry: "acr.azurecr.io",
            db_host: "pg",
            db_port: 5432,
            db_name: "airbyte",
            chart_digest: "sha256:c",
        }
    }

    #[test]
    fn storage_type_is_lower_case_and_the_registry_is_the_customers() {
        let v = values(&inputs(), "d");
        assert_eq!(v["global"]["storage"]["type"], "azure");
        assert_eq!(v["global"]["image"]["registry"], "acr.azurecr.io");
        assert_eq!(v["global"]["database"]["type"], "external");
        assert_eq!(v["vibedata"]["valuesDigest"], "d");
        assert!(!v.to_string().contains("password\":\""), "no secret value in the values");
    }

    #[test]
    fn the_digest_follows_values_and_secrets_and_reveals_neither() {
        let (p, c, k) =
            (Secret::new("pw"), Secret::new("DefaultEndpointsProtocol=https;AccountKey=key"), Secret::new("hk"));
        let d = values_digest(&inputs(), &[&p, &c], &k);
        assert_eq!(d, values_digest(&inputs(), &[&p, &c], &k));
        assert_ne!(d, values_digest(&inputs(), &[&Secret::new("pw2"), &c], &k), "a new password upgrades");
        let mut other = inputs();
        other.db_host = "pg2";
        assert_ne!(d, values_digest(&other, &[&p, &c], &k));
        assert!(!d.contains("pw") && d.starts_with("sha256:"));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn decisions_follow_the_release_state() {
        let d = |status: &str, chart: &str, values: &str| Deployed {
            status: status.into(),
            revision: 3,
            chart_digest: Some(chart.into()),
            values_digest: Some(values.into()),
        };
        assert_eq!(decide(None, "c", "v"), Action::Install);
        assert_eq!(decide(Some(&d("deployed", "c", "v")), "c", "v"), Action::Unchanged);
        assert_eq!(decide(Some(&d("deployed", "c", "other")), "c", "v"), Action::Upgrade);
        assert_eq!(decide(Some(&d("deployed", "old", "v")), "c", "v"), Action::Upgrade);
        assert_eq!(decide(Some(&d("pending-install", "c", "v")), "c", "v"), Action::UninstallThenInstall);
        assert_eq!(decide(Some(&d("pending-upgrade", "c", "v")), "c", "v"), Action::RollbackThenUpgrade);
        assert_eq!(decide(Some(&d("failed", "c", "v")), "c", "v"), Action::Repair);
    }

    #[test]
    fn the_probe_output_is_read_back() {
        let logs = "VIBEDATA-STATUS\n{\"name\":\"airbyte\",\"version\":2,\"info\":{\"status\":\"deployed\"}}\nVIBEDATA-VALUES\n{\"vibedata\":{\"chartDigest\":\"sha256:c\",\"valuesDigest\":\"sha256:v\"}}\n";
        let d = parse_probe(logs).unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.revision), ("deployed", 2));
        assert_eq!(d.values_digest.as_deref(), Some("sha256:v"));
        assert_eq!(parse_probe("VIBEDATA-STATUS\nnull\nVIBEDATA-VALUES\nnull\n").unwrap(), None);
        let missing = "VIBEDATA-STATUS\nnull\nVIBEDATA-ERROR\nError: release: not found\nVIBEDATA-VALUES\nnull\n";
        assert_eq!(parse_probe(missing).unwrap(), None);
        let refused = "VIBEDATA-STATUS\nnull\nVIBEDATA-ERROR\nError: Kubernetes cluster unreachable: Unauthorized\nVIBEDATA-VALUES\nnull\n";
        assert_eq!(
            parse_probe(refused).unwrap_err(),
            "helm status failed: Error: Kubernetes cluster unreachable: Unauthorized"
        );
        assert!(parse_probe("nothing").is_err());
    }
}
