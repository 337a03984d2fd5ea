//! Shared harness for integration tests over the local stack (`scripts/stack`).
//!
//! The stack is real: Azurite over HTTPS with OAuth, CNCF registries, Postgres, and the emulator.
//! `scripts/test` starts it and exports `VIBEDATA_STACK_DIR`; without it these tests fail loudly
//! rather than pass vacuously.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

pub struct Stack {
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
}

impl Stack {
    pub fn get() -> Stack {
        let dir = std::env::var_os("VIBEDATA_STACK_DIR").map(PathBuf::from).expect(
            "integration tests need the local stack: run scripts/test, or `scripts/stack up` and export VIBEDATA_STACK_DIR",
        );
        let text = std::fs::read_to_string(dir.join("env")).expect("the stack's env file");
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').trim_matches('\'').to_owned()))
            .collect();
        Stack { dir, env }
    }

    pub fn var(&self, k: &str) -> &str {
        self.env.get(k).unwrap_or_else(|| panic!("stack env has no {k}"))
    }

    /// The stack's env plus `overrides`, with a deployment id unique to the calling test so the
    /// ledger records of concurrent tests never meet.
    pub fn env_for(&self, test: &str, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.insert("VIBEDATA_DEPLOYMENT_ID".into(), format!("{test}-{}", std::process::id()));
        for (k, v) in overrides {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert((*k).into(), (*v).into());
            }
        }
        env
    }

    /// The CLI, with exactly `env` (no inherited VIBEDATA_* from the test process).
    pub fn cli(&self, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"));
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(env).args(args);
        cmd.output().expect("run vibedata-bootstrap")
    }

    pub fn http(&self) -> reqwest::Client {
        let pem = std::fs::read(self.var("VIBEDATA_CA_FILE")).unwrap();
        let mut b = reqwest::Client::builder();
        for c in reqwest::Certificate::from_pem_bundle(&pem).unwrap() {
            b = b.add_root_certificate(c);
        }
        b.build().unwrap()
    }

    /// GET `url` with a bearer token; the body as JSON, whatever the status.
    pub async fn get_json(&self, url: &str, token: &str) -> Value {
        self.http().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
    }

    pub fn control(&self) -> String {
        self.var("VIBEDATA_EMULATOR_CONTROL").trim_end_matches('/').to_owned()
    }

    /// Arms an emulator fault (see docs/local-stack.md).
    pub async fn arm_fault(&self, spec: Value) {
        let r = self.http().post(format!("{}/faults", self.control())).json(&spec).send().await.unwrap();
        assert!(r.status().is_success(), "arming {spec}: {}", r.status());
    }

    /// `GET /_emulator/<path>` of the control API, as JSON.
    pub async fn control_get(&self, path: &str) -> Value {
        self.http().get(format!("{}/{path}", self.control())).send().await.unwrap().json().await.unwrap()
    }

    /// Journal entries after `since` (a sequence number from [`Stack::journal_mark`]).
    pub async fn journal_since(&self, since: u64) -> Vec<Value> {
        let all = self.control_get("journal").await;
        all.as_array().unwrap().iter().filter(|e| e["seq"].as_u64().unwrap_or(0) > since).cloned().collect()
    }

    pub async fn journal_mark(&self) -> u64 {
        let all = self.control_get("journal").await;
        all.as_array().unwrap().iter().filter_map(|e| e["seq"].as_u64()).max().unwrap_or(0)
    }

    /// A token of the deployer (the principal that deploys the template; the emulator's grant
    /// table never restricts it) from the identity endpoint: tests set up and inspect the
    /// platform with it, while the binary under test holds only the template's grants.
    pub async fn token(&self, resource: &str) -> String {
        self.token_for(resource, self.var("VIBEDATA_STACK_DEPLOYER_CLIENT_ID")).await
    }

    /// The token the binary under test will be handed for `resource` (the emulator, like IMDS,
    /// serves the same token to the same identity until it nears expiry).
    pub async fn bootstrap_token(&self, resource: &str) -> String {
        self.token_for(resource, self.var("VIBEDATA_IDENTITY_CLIENT_ID")).await
    }

    async fn token_for(&self, resource: &str, client_id: &str) -> String {
        let v: Value = self
            .http()
            .get(self.var("IDENTITY_ENDPOINT"))
            .query(&[("resource", resource), ("api-version", "2019-08-01"), ("client_id", client_id)])
            .header("X-IDENTITY-HEADER", self.var("IDENTITY_HEADER"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a resource group of its own for a test, so faults and journal checks can be scoped
    /// to paths no other test touches.
    pub async fn resource_group(&self, name: &str) -> String {
        let url = format!(
            "{}/subscriptions/{}/resourcegroups/{name}?api-version=2021-04-01",
            self.var("VIBEDATA_ARM_ENDPOINT"),
            self.var("VIBEDATA_SUBSCRIPTION_ID")
        );
        let r = self
            .http()
            .put(url)
            .bearer_auth(self.token("https://management.azure.com/").await)
            .json(&json!({"location": "eastus"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create rg {name}: {}", r.status());
        name.to_owned()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn last_stderr_line(o: &Output) -> String {
    stderr(o).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned()
}

/// The outputs JSON the CLI wrote to `$AZ_SCRIPTS_OUTPUT_PATH`.
pub fn read_outputs(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("outputs written")).expect("outputs are JSON")
}
