//! `importImage` throughput: 24 imports of 2 s (simulated by the emulator) one at a time, then
//! with the phase's default concurrency of 8, through the same ARM client and long-running
//! operation code the Artifact Bootstrap uses.
//!
//! Needs a running local stack with the sample release published: `scripts/bench` sets it up.
//! `cargo bench --bench imports` prints one JSON line per measurement and a summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use vibedata_bootstrap::azure::acr::{Acr, Import};
use vibedata_bootstrap::azure::arm::Arm;
use vibedata_bootstrap::azure::identity::{Secret, Tokens};
use vibedata_bootstrap::azure::pipeline::Pipeline;
use vibedata_bootstrap::azure::retry::RetryPolicy;
use vibedata_bootstrap::config::IdentityRef;

const IMPORTS: usize = 24;
const SIMULATED_MS: u64 = 2000;

fn stack_env() -> BTreeMap<String, String> {
    let dir = std::env::var("VIBEDATA_STACK_DIR").expect("VIBEDATA_STACK_DIR: run scripts/bench");
    std::fs::read_to_string(format!("{dir}/env"))
        .expect("stack env")
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').trim_matches('"').to_owned()))
        .collect()
}

async fn run(acr: &Acr, base: &Import, prefix: &str, concurrency: usize) -> Duration {
    let started = Instant::now();
    let jobs: Vec<_> = (0..IMPORTS)
        .map(|i| {
            let mut import = base.clone();
            import.target_tags = vec![format!("bench/{prefix}:t{i}")];
            async move { acr.import(&import, Duration::from_secs(120)).await }
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(jobs).buffer_unordered(concurrency).collect().await;
    for r in results {
        r.expect("import");
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let env = stack_env();
    std::env::set_var("IDENTITY_ENDPOINT", &env["IDENTITY_ENDPOINT"]);
    std::env::set_var("IDENTITY_HEADER", &env["IDENTITY_HEADER"]);
    let ca = std::path::PathBuf::from(&env["VIBEDATA_CA_FILE"]);
    let http = vibedata_bootstrap::azure::http_client(Some(&ca), Duration::from_secs(60)).unwrap();
    let tokens =
        Tokens::managed_identity(&IdentityRef::ClientId(env["VIBEDATA_IDENTITY_CLIENT_ID"].clone()), http.clone())
            .unwrap();
    let pipeline = Pipeline::new(http.clone(), tokens, RetryPolicy::default());
    let arm = Arm::new(
        pipeline,
        url::Url::parse(&env["VIBEDATA_ARM_ENDPOINT"]).unwrap(),
        "https://management.azure.com/.default".into(),
    );
    let acr =
        Acr::new(arm, &env["VIBEDATA_SUBSCRIPTION_ID"], &env["VIBEDATA_RESOURCE_GROUP"], &env["VIBEDATA_ACR_NAME"]);

    // The source: the sample release's API image, by digest, as the phase imports it.
    let control = env["VIBEDATA_EMULATOR_CONTROL"].trim_end_matches('/').to_owned();
    let digest =
        std::env::var("BENCH_SOURCE_DIGEST").expect("BENCH_SOURCE_DIGEST: the digest of vibedata/api in the publisher");
    let base = Import {
        registry_uri: env["VIBEDATA_PUBLISHER_REGISTRY"].clone(),
        username: Some(env["VIBEDATA_STACK_PUBLISHER_USER"].clone()),
        password: Secret::new(env["VIBEDATA_STACK_PUBLISHER_PASSWORD"].clone()),
        source_image: format!("vibedata/api@{digest}"),
        target_tags: vec![],
        untagged: vec![],
        force: true,
    };
    http.put(format!("{control}/import"))
        .json(&serde_json::json!({"durationMs": SIMULATED_MS}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let reps: usize = std::env::var("BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let run_id = std::process::id();
    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let s = run(&acr, &base, &format!("serial-{run_id}-{rep}"), 1).await;
        println!("{{\"bench\":\"imports\",\"concurrency\":1,\"rep\":{rep},\"seconds\":{:.2}}}", s.as_secs_f64());
        serial.push(s);
        let p = run(&acr, &base, &format!("parallel-{run_id}-{rep}"), 8).await;
        println!("{{\"bench\":\"imports\",\"concurrency\":8,\"rep\":{rep},\"seconds\":{:.2}}}", p.as_secs_f64());
        parallel.push(p);
    }
    http.put(format!("{control}/import")).json(&serde_json::json!({"durationMs": 0})).send().await.unwrap();
    let (s, p) = (median(serial), median(parallel));
    println!(
        "{{\"bench\":\"imports-summary\",\"imports\":{IMPORTS},\"simulatedSeconds\":{},\"serialMedianSeconds\":{:.2},\"concurrency8MedianSeconds\":{:.2},\"speedup\":{:.2}}}",
        SIMULATED_MS / 1000,
        s.as_secs_f64(),
        p.as_secs_f64(),
        s.as_secs_f64() / p.as_secs_f64()
    );
}
