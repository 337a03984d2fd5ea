//! The crash suite: `run <phase>` is SIGKILLed at seeded random points of the Day-0 sequence,
//! rerun, and the platform it ends with must equal the one a clean run gives.
//!
//! A kill point is the k-th event of the running phase, where events are the emulator journal's
//! mutating requests and, where the journal is blind (Postgres, Azurite), the binary's own
//! progress lines; k is drawn from 1..=n, n being what the phase's dry run plans to change. After
//! a kill the phase runs again (it may be killed again), until one run finishes; the next run must
//! be `unchanged`. Then a second platform installs the same release without a kill, and the two
//! are compared: every pinned tag at its digest, artifact storage (blob names and contents, the
//! ledger and the report aside), runbooks published once each with the release's content,
//! applied migrations, registry rows, health status; and no phase lock is left leased.
//!
//! Size: `VIBEDATA_CRASH_KILLS` kills in all (default 7, one per phase; 35 for the full suite),
//! spread evenly over the seven phases; `VIBEDATA_CRASH_SEED` (default 2026) picks the points.
//! Runs alone (.config/nextest.toml): it resets the shared Automation account, AKS cluster and AI
//! planes, and counts the whole journal.

mod common;
#[allow(dead_code)]
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use setup::*;

const PHASES: [&str; 7] = ["artifacts", "runbooks", "database", "airbyte", "ai", "registry", "health"];

/// A small deterministic generator (splitmix64): the same seed gives the same kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{key}={v:?} is not a number")))
        .unwrap_or(default)
}

/// What one phase's run left: killed at its k-th event, or finished first.
enum Ended {
    Killed { at: usize },
    Finished,
}

/// Spawns `run <phase>` and SIGKILLs it once `k` events happened (mutating journal entries since
/// its start plus its own log lines); `Finished` when it ended first.
async fn run_and_kill(p: &Platform, extra: &[(&str, &str)], phase: &str, k: usize) -> Ended {
    let mark = p.stack.journal_mark().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(p.env(extra))
        .args(["run", phase])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (lines, out) = (lines.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for _ in BufReader::new(out).lines().map_while(Result::ok) {
                lines.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    loop {
        if child.try_wait().unwrap().is_some() {
            let _ = reader.join();
            return Ended::Finished;
        }
        let writes = p.stack.journal_since(mark).await.iter().filter(|e| e["mutating"] == true).count();
        let events = writes + lines.load(Ordering::SeqCst);
        if events >= k {
            child.kill().unwrap();
            child.wait().unwrap();
            let _ = reader.join();
            return Ended::Killed { at: events };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many changes a dry run of `phase` plans now.
fn planned(p: &Platform, extra: &[(&str, &str)], phase: &str) -> u64 {
    let o = p.stack.cli(&p.env(extra), &["run", phase, "--dry-run", "--json"]);
    ok(&o);
    let plan: Value = serde_json::from_slice(&o.stdout).expect("the plan");
    plan["changes"].as_u64().unwrap()
}

/// The platform as the comparison sees it: names of this platform's own made neutral.
async fn state(p: &Platform) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    for (tag, digest) in acr_tags(p).await {
        s.insert(format!("acr {tag}"), digest.unwrap_or_else(|| "absent".into()));
    }
    // Artifact storage, but the ledger, the locks and the report (bookkeeping, with times).
    for name in crash_blobs(p).await {
        if name.starts_with("deployments/") || name.starts_with("reports/") || name.starts_with("registry/") {
            continue;
        }
        let body = p.blob(&name).await.unwrap_or_default();
        s.insert(format!("blob {name}"), vibedata_bootstrap::oci::sha256_digest(&body));
    }
    for (k, sql) in [
        ("release migrations", "SELECT string_agg(version::text || ':' || encode(checksum, 'hex'), ',' ORDER BY version) FROM vibedata_bootstrap.release_migrations WHERE success"),
        ("registry migrations", "SELECT string_agg(version::text || ':' || encode(checksum, 'hex'), ',' ORDER BY version) FROM vibedata_bootstrap.registry_migrations WHERE success"),
        ("health status", "SELECT string_agg(check_name || '=' || state::text, ',' ORDER BY check_name) FROM registry.health_status"),
    ] {
        let mut conn = support::superuser(&p.stack, &p.db).await;
        let v: Option<String> = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
        s.insert(k.to_owned(), v.unwrap_or_default());
    }
    // Registry rows, without what differs between two installs of the same release (ids, times)
    // and the health history (bookkeeping: every health run adds to it, a killed one too).
    let mut conn = support::superuser(&p.stack, &p.db).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'registry' \
         AND table_name NOT IN ('health_runs', 'health_results') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(tables.len() >= 5, "registry tables: {tables:?}");
    for t in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT row_to_json(t)::text FROM registry.{t} t")))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let mut rows: Vec<String> = rows
            .into_iter()
            .map(|row| {
                let mut v: Value = serde_json::from_str(&row).unwrap();
                if let Some(o) = v.as_object_mut() {
                    o.retain(|k, _| {
                        !(k == "id"
                            || k.ends_with("_id")
                            || k.ends_with("_at")
                            || k.ends_with("_key")
                            || k.contains("time")
                            || k == "since"
                            || k == "attempt")
                    });
                    // A snapshot's digest covers this platform's own names (its container, its
                    // deployment), which the rows themselves show neutralised.
                    if t == "snapshots" {
                        o.remove("digest");
                    }
                    // One AKS cluster for both platforms: the second install upgrades the
                    // Airbyte release (its values name its own database), so revisions differ.
                    if o.get("kind").and_then(Value::as_str) == Some("helmRelease") {
                        o.remove("version");
                    }
                }
                v.to_string().replace(&p.container, "[container]").replace(&p.db, "[database]")
            })
            .collect();
        rows.sort();
        s.insert(
            format!("registry.{t}"),
            format!("{} rows: {}", rows.len(), vibedata_bootstrap::oci::sha256_digest(rows.join("\n").as_bytes())),
        );
    }
    s
}

/// Every tag the release pins, as the customer registry holds it (`None`: absent).
async fn acr_tags(p: &Platform) -> BTreeMap<String, Option<String>> {
    use vibedata_bootstrap::azure::{identity::Secret, retry::RetryPolicy};
    use vibedata_bootstrap::oci::{AcrIdentity, Credentials, Registry, RegistryOptions};
    let stack = &p.stack;
    let ca = std::path::PathBuf::from(stack.var("VIBEDATA_CA_FILE"));
    let http = vibedata_bootstrap::azure::http_client(Some(&ca), Duration::from_secs(60)).unwrap();
    let options =
        RegistryOptions { ca_file: Some(ca), timeout: Some(Duration::from_secs(60)), policy: RetryPolicy::default() };
    let publisher_host = stack.var("VIBEDATA_PUBLISHER_REGISTRY");
    let basic = Credentials::Basic {
        username: stack.var("VIBEDATA_STACK_PUBLISHER_USER").into(),
        password: Secret::new(stack.var("VIBEDATA_STACK_PUBLISHER_PASSWORD")),
    };
    let publisher = Registry::new(publisher_host, basic, http.clone(), &options).unwrap();
    let identity = Credentials::AcrIdentity(AcrIdentity {
        tokens: support::tokens(stack),
        aad_scope: "https://management.azure.com/.default".into(),
        auth_endpoint: url::Url::parse(stack.var("VIBEDATA_ACR_AUTH_ENDPOINT")).unwrap(),
        tenant: Some(stack.var("VIBEDATA_TENANT_ID").into()),
    });
    let customer = Registry::new(stack.var("VIBEDATA_ACR_LOGIN_SERVER"), identity, http, &options).unwrap();
    let repo = "vibedata/release-manifest";
    let digest = publisher.manifest_digest(repo, &p.release).await.unwrap().expect("the release is published");
    let doc = vibedata_bootstrap::oci::release_artifact::release_document(&publisher, repo, &digest).await.unwrap();
    let manifest = vibedata_bootstrap::release::parse(&doc, publisher_host, &[]).unwrap();
    let mut tags = BTreeMap::new();
    tags.insert(format!("{repo}:{}", p.release), customer.manifest_digest(repo, &p.release).await.unwrap());
    for pin in manifest.pinned() {
        let got = customer.manifest_digest(&pin.repository, &pin.tag).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(pin.digest.as_str()),
            "{}:{} in the customer registry",
            pin.repository,
            pin.tag
        );
        tags.insert(format!("{}:{}", pin.repository, pin.tag), got);
    }
    tags
}

/// Every blob name of the platform's artifact container.
async fn crash_blobs(p: &Platform) -> Vec<String> {
    let url = format!(
        "{}/{}?restype=container&comp=list&maxresults=5000",
        p.stack.var("VIBEDATA_STORAGE_BLOB_URL"),
        p.container
    );
    let token = p.stack.token("https://storage.azure.com/").await;
    let xml = p
        .stack
        .http()
        .get(url)
        .bearer_auth(token)
        .header("x-ms-version", "2021-12-02")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Name>").skip(1).filter_map(|s| s.split_once("</Name>")).map(|(n, _)| n.to_owned()).collect()
}

/// `x-ms-lease-state` of every phase lock of the platform: none may be `leased`.
async fn leased_locks(p: &Platform) -> Vec<String> {
    let token = p.stack.token("https://storage.azure.com/").await;
    let mut held = Vec::new();
    for name in crash_blobs(p).await.into_iter().filter(|n| n.contains("/locks/")) {
        let url = format!("{}/{}/{name}", p.stack.var("VIBEDATA_STORAGE_BLOB_URL"), p.container);
        let r = p.stack.http().head(url).bearer_auth(&token).header("x-ms-version", "2021-12-02").send().await.unwrap();
        let lease = r.headers().get("x-ms-lease-state").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if lease == "leased" {
            held.push(name);
        }
    }
    held
}

/// Each runbook of the sample release, as the emulator holds it: `name publishCount state`.
async fn runbooks(stack: &common::Stack) -> Vec<String> {
    let all = stack.control_get("automation/runbooks").await;
    let mut out: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} published {} times, {}", r["name"], r["publishCount"], r["state"]))
        .collect();
    out.sort();
    out
}

async fn reset_shared_planes(stack: &common::Stack) {
    reset_airbyte(stack).await;
    for plane in ["ai", "automation/runbooks"] {
        let r = stack.http().delete(format!("{}/{plane}", stack.control())).send().await.unwrap();
        assert!(r.status().is_success(), "resetting {plane}: {}", r.status());
    }
}

#[tokio::test]
async fn sigkill_at_seeded_points_then_rerun_ends_as_a_clean_install() {
    let kills = env_number("VIBEDATA_CRASH_KILLS", 7).max(1);
    let seed = env_number("VIBEDATA_CRASH_SEED", 2026);
    let mut rng = Rng(seed);
    eprintln!("crash suite: {kills} kills, seed {seed} (VIBEDATA_CRASH_KILLS, VIBEDATA_CRASH_SEED)");

    let release = format!("2026.12.88-{}", std::process::id());
    let crashed = Platform::with_release("crash", &release).await;
    crashed.publish();
    reset_shared_planes(&crashed.stack).await;
    let names = |p: &Platform| {
        let db = format!("{}_ab", p.db);
        let secret = format!("{}-ab-pw", p.db.replace('_', "-"));
        (db, secret)
    };
    let (c_db, c_secret) = names(&crashed);
    let c_extra = [
        ("VIBEDATA_AIRBYTE_DATABASE", c_db.as_str()),
        ("VIBEDATA_AIRBYTE_DB_USER", c_db.as_str()),
        ("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", c_secret.as_str()),
    ];

    let mut log = Vec::new();
    let mut killed = 0;
    for (i, phase) in PHASES.iter().enumerate() {
        // Kills spread evenly: the first phases take the remainder.
        let mine = kills / 7 + u64::from((i as u64) < kills % 7);
        for _ in 0..mine {
            let n = planned(&crashed, &c_extra, phase);
            if n == 0 {
                log.push(format!("{phase}: nothing left to change"));
                break;
            }
            // The registry phase writes Postgres only (the journal is blind to it) and its 100-odd
            // row changes are one transaction behind a handful of progress lines: draw among those.
            let events = if *phase == "registry" { n.min(8) } else { n };
            let k = 1 + rng.below(events) as usize;
            match run_and_kill(&crashed, &c_extra, phase, k).await {
                Ended::Killed { at } => {
                    killed += 1;
                    log.push(format!("{phase}: killed at event {at} (k = {k} of {n} planned)"));
                }
                Ended::Finished => log.push(format!("{phase}: finished before event {k} of {n}")),
            }
        }
        let (o, out) = crashed.run(phase, &c_extra);
        ok(&o);
        assert_eq!(out["status"].as_str().map(|s| s != "failed"), Some(true), "{phase} after its kills: {out:#}");
        let (o, again) = crashed.run(phase, &c_extra);
        ok(&o);
        assert_eq!(
            (again["status"].as_str(), again["changes"].as_u64()),
            (Some("unchanged"), Some(0)),
            "{phase} rerun"
        );
    }
    eprintln!("{}", log.join("\n"));
    assert!(killed * 2 >= kills, "too few kills landed ({killed} of {kills}):\n{}", log.join("\n"));
    let crashed_runbooks = runbooks(&crashed.stack).await;
    assert!(
        crashed_runbooks.iter().all(|r| r.contains("published 1 times")),
        "every runbook published exactly once: {crashed_runbooks:#?}"
    );
    assert_eq!(leased_locks(&crashed).await, Vec::<String>::new(), "a lock left leased");
    // Killed and rerun, Airbyte was still installed once: its Helm release is at revision 1.
    let helm: i64 =
        crashed.scalar("SELECT version::bigint FROM registry.release_objects WHERE kind = 'helmRelease'").await;
    assert_eq!(helm, 1, "the Airbyte release's revision after kills and reruns");

    // The same release installed without a kill.
    let clean = Platform::with_release("crashref", &release).await;
    let (r_db, r_secret) = names(&clean);
    let r_extra = [
        ("VIBEDATA_AIRBYTE_DATABASE", r_db.as_str()),
        ("VIBEDATA_AIRBYTE_DB_USER", r_db.as_str()),
        ("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", r_secret.as_str()),
    ];
    for phase in PHASES {
        ok(&clean.run(phase, &r_extra).0);
    }
    let (a, b) = (state(&crashed).await, state(&clean).await);
    let differ: Vec<String> = a
        .keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: crashed {:?}, clean {:?}", a.get(k), b.get(k)))
        .collect();
    assert!(differ.is_empty(), "the crashed platform differs from a clean install:\n{}", differ.join("\n"));
    assert!(a.keys().filter(|k| k.starts_with("blob ")).count() > 10, "artifact storage compared: {a:#?}");
    crashed.drop().await;
    clean.drop().await;
}
