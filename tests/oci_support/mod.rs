//! Shared setup of the `oci_*` integration tests: the local stack's environment, registry handles
//! for the publisher (Basic) and the customer (managed identity through the emulator's ACR token
//! exchange), a pushed sample release, and a small image builder.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use vibedata_bootstrap::azure::identity::{Secret, Tokens};
use vibedata_bootstrap::azure::retry::RetryPolicy;
use vibedata_bootstrap::config::IdentityRef;
use vibedata_bootstrap::oci::{sha256_digest, AcrIdentity, Credentials, Registry, RegistryOptions, OCI_MANIFEST};

pub const RELEASE: &str = "2026.11.0";
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

pub struct Stack {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

impl Stack {
    pub fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("{key} missing from the stack env"))
    }

    pub fn http(&self) -> reqwest::Client {
        vibedata_bootstrap::azure::http_client(Some(&self.ca()), Duration::from_secs(60)).unwrap()
    }

    pub fn ca(&self) -> PathBuf {
        PathBuf::from(self.get("VIBEDATA_CA_FILE"))
    }

    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            ca_file: Some(self.ca()),
            timeout: Some(Duration::from_secs(60)),
            policy: RetryPolicy { max_retries: 3, ..RetryPolicy::default() },
        }
    }

    pub fn publisher(&self) -> Registry {
        let creds = Credentials::Basic {
            username: self.get("VIBEDATA_STACK_PUBLISHER_USER").into(),
            password: Secret::new(self.get("VIBEDATA_STACK_PUBLISHER_PASSWORD")),
        };
        Registry::new(self.get("VIBEDATA_PUBLISHER_REGISTRY"), creds, self.http(), &self.options()).unwrap()
    }

    pub fn tokens(&self) -> Arc<Tokens> {
        Tokens::managed_identity(&IdentityRef::ClientId(self.get("VIBEDATA_IDENTITY_CLIENT_ID").into()), self.http())
            .unwrap()
    }

    pub fn acr_identity(&self, auth_endpoint: &str) -> Credentials {
        Credentials::AcrIdentity(AcrIdentity {
            tokens: self.tokens(),
            aad_scope: ARM_SCOPE.into(),
            auth_endpoint: url::Url::parse(auth_endpoint).unwrap(),
            tenant: Some(self.get("VIBEDATA_TENANT_ID").into()),
        })
    }

    /// The customer registry as the managed identity, through the emulator's `/oauth2/*`.
    pub fn customer(&self) -> Registry {
        let creds = self.acr_identity(self.get("VIBEDATA_ACR_AUTH_ENDPOINT"));
        Registry::new(self.get("VIBEDATA_ACR_LOGIN_SERVER"), creds, self.http(), &self.options()).unwrap()
    }
}

/// The stack of `$VIBEDATA_STACK_DIR`, with the sample release pushed; `None` (and a message)
/// when no stack is configured. `scripts/test` always sets it.
pub fn stack() -> Option<&'static Stack> {
    static STACK: OnceLock<Option<Stack>> = OnceLock::new();
    STACK
        .get_or_init(|| {
            let Some(dir) = std::env::var_os("VIBEDATA_STACK_DIR").map(PathBuf::from) else {
                eprintln!("VIBEDATA_STACK_DIR is not set: skipping the registry tests (scripts/test sets it)");
                return None;
            };
            let text = std::fs::read_to_string(dir.join("env")).expect("the stack's env file");
            let env: HashMap<String, String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("export "))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                .collect();
            // The identity endpoint is read from the process environment by azure_identity. Set
            // once, before any test of this binary gets past this lock.
            for (k, v) in &env {
                std::env::set_var(k, v);
            }
            // The release manifest is pushed last: when it is there, so is everything else.
            // (On a thread of its own: the callers are already inside a runtime.)
            let probe = Stack { dir: dir.clone(), env: env.clone() };
            let published = std::thread::spawn(move || {
                runtime().block_on(probe.publisher().manifest_digest("vibedata/release-manifest", RELEASE))
            })
            .join()
            .expect("probe thread");
            if matches!(published, Ok(Some(_))) {
                return Some(Stack { dir, env });
            }
            let repo_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let out = std::process::Command::new(repo_root.join("scripts/sample-release"))
                .arg("push")
                .env("VIBEDATA_STACK_DIR", &dir)
                .output()
                .expect("run scripts/sample-release push");
            assert!(out.status.success(), "sample-release push failed: {}", String::from_utf8_lossy(&out.stderr));
            Some(Stack { dir, env })
        })
        .as_ref()
}

/// A repository prefix unique to this test run, so reruns against one stack start empty.
pub fn run_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("t{}", uuid::Uuid::new_v4().simple().to_string().get(..10).unwrap().to_owned()))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// Pushes an image with one layer of `layer` bytes; returns `(manifest digest, layer digest)`.
pub async fn push_image(reg: &Registry, repo: &str, tag: &str, layer: Bytes) -> (String, String) {
    let config = Bytes::from(format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256_digest(&layer)
    ));
    let (config_digest, layer_digest) = (sha256_digest(&config), sha256_digest(&layer));
    for (digest, bytes) in [(&config_digest, config.clone()), (&layer_digest, layer.clone())] {
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
        reg.upload_blob(repo, digest, stream).await.unwrap();
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let digest = sha256_digest(&bytes);
    reg.put_manifest(repo, &digest, bytes.clone(), OCI_MANIFEST).await.unwrap();
    reg.put_manifest(repo, tag, bytes, OCI_MANIFEST).await.unwrap();
    (digest, layer_digest)
}

/// Deterministic pseudo-random bytes (not compressible, not all alike).
pub fn noise(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}
