//! The Functions custom handler (`vibedata-bootstrap serve`) behind `scripts/serve-local`, the
//! stand-in for the Functions host: the reference's payloads for each function and trigger in
//! both host modes, a phase longer than a request, SIGTERM and SIGKILL mid-phase, bad requests
//! (4xx, and the journal shows no mutating call), and the status page in headless Chromium.
//!
//! Every test arms emulator state (import duration) or reads the whole journal, and the health
//! runs need every component quiet, so each runs alone (.config/nextest.toml).

mod common;
#[path = "serve/harness.rs"]
mod harness;
#[allow(dead_code)] // the registry and health tests use the rest
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use std::time::{Duration, Instant};

use common::*;
use harness::{chromium, output_dir, signal, Host};
use serde_json::{json, Value};
use setup::*;

async fn set_import_duration(stack: &Stack, ms: u64) {
    let r =
        stack.http().put(format!("{}/import", stack.control())).json(&json!({"durationMs": ms})).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// The emulator's import log (append-only while these tests run alone): how long it is now.
async fn import_log(stack: &Stack) -> Vec<Value> {
    stack.http().get(format!("{}/imports", stack.control())).send().await.unwrap().json().await.unwrap()
}

/// The target tags of every import the emulator logged after `from` entries.
async fn imports_after(stack: &Stack, from: usize) -> Vec<String> {
    import_log(stack)
        .await
        .iter()
        .skip(from)
        .flat_map(|e| {
            let list = |k: &str| -> Vec<String> {
                e[k].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect()
            };
            // A signature is imported by digest only: its target is `repo@digest`.
            let digest = e["sourceImage"].as_str().and_then(|s| s.split_once('@')).map(|(_, d)| d.to_owned());
            let untagged = list("untaggedTargetRepositories")
                .into_iter()
                .map(|r| format!("{r}@{}", digest.clone().unwrap_or_default()));
            list("targetTags").into_iter().chain(untagged).collect::<Vec<_>>()
        })
        .collect()
}

/// importImage POSTs since `mark`.
async fn imports_since(stack: &Stack, mark: u64) -> usize {
    stack.journal_since(mark).await.iter().filter(|e| e["api"] == "acr.importImage" && e["method"] == "POST").count()
}

fn assert_no_repeats(imports: &[String]) {
    let mut seen = std::collections::BTreeSet::new();
    for i in imports {
        assert!(seen.insert(i), "imported twice: {i} (all: {imports:?})");
    }
}

fn unique_release(n: u32) -> String {
    format!("2026.12.{n}-{}", std::process::id())
}

#[tokio::test]
async fn envelope_mode_runs_the_install_over_http_and_the_timer_refreshes_health() {
    let p = Platform::with_release("serve_envelope", &unique_release(70)).await;
    p.publish();
    let outputs_path = output_dir().join("envelope-outputs.json");
    let env =
        p.env(&[("AZ_SCRIPTS_OUTPUT_PATH", outputs_path.to_str().unwrap()), ("VIBEDATA_IMPORT_CONCURRENCY", "1")]);
    // The host cuts a request off after 3 s here; the phase takes longer.
    let host = Host::start("envelope", &env, &["--timeout", "3"]);
    assert_eq!(host.ready["mode"], "envelope");
    set_import_duration(&p.stack, 300).await;
    let mark = p.stack.journal_mark().await;
    let logged = import_log(&p.stack).await.len();

    // Two concurrent requests for one phase: one starts it, the other joins it.
    let (a, b) = tokio::join!(host.post("/api/phase/artifacts"), host.post("/api/phase/artifacts"));
    let mut how: Vec<String> = [&a, &b]
        .iter()
        .map(|r| {
            assert_eq!(r.status, 202, "{}", r.text);
            assert_eq!(r.headers["location"], "/api/phase/artifacts");
            assert_eq!(r.json()["statusUrl"], "/api/phase/artifacts");
            r.json()["request"].as_str().unwrap().to_owned()
        })
        .collect();
    how.sort();
    assert_eq!(how, ["joined", "started"]);
    let running = host.get("/api/phase/artifacts").await;
    assert_eq!((running.status, running.json()["status"].as_str()), (202, Some("running")), "{}", running.text);
    let outputs = host.until_done("/api/phase/artifacts", Duration::from_secs(90)).await;
    set_import_duration(&p.stack, 0).await;
    assert_eq!(outputs["status"], "succeeded", "{outputs}");
    assert!(outputs["durationMs"].as_u64().unwrap() > 3000, "the phase outlived a request: {outputs}");
    // The outputs the status URL gives are the runner's, byte for byte what the CLI writes.
    assert_eq!(outputs, read_outputs(&outputs_path));
    let imports = imports_after(&p.stack, logged).await;
    assert_no_repeats(&imports);
    assert_eq!(imports_since(&p.stack, mark).await, imports.len(), "each import once: the phase ran once");

    // Succeeded phases are not run again over HTTP (RFC-60 has no Day-2 updates).
    let again = host.post("/api/phase/artifacts").await;
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (409, Some("PhaseAlreadySucceeded")));

    // The plan over HTTP is the CLI's dry-run plan.
    let plan = host.get("/api/phase/runbooks/plan").await;
    assert_eq!(plan.status, 200, "{}", plan.text);
    let cli = p.stack.cli(&env, &["run", "runbooks", "--dry-run", "--json"]);
    assert!(cli.status.success(), "{}", stderr(&cli));
    assert_eq!(plan.json(), serde_json::from_str::<Value>(&stdout(&cli)).unwrap());
    assert_eq!(plan.json()["phase"], "runbooks");

    for phase in ["runbooks", "database", "registry"] {
        let r = host.post(&format!("/api/phase/{phase}")).await;
        assert_eq!(r.status, 202, "{phase}: {}", r.text);
        let v = host.until_done(&format!("/api/phase/{phase}"), Duration::from_secs(120)).await;
        // Runbooks may already be published by another test's run on the shared account.
        assert!(v["status"] == "succeeded" || v["status"] == "unchanged", "{phase}: {v}");
        assert_eq!(v, read_outputs(&outputs_path), "{phase}");
    }

    // Two overlapping timer firings run health once.
    let runs = p.scalar("SELECT count(*) FROM registry.health_runs").await;
    let fire = || host.call("POST", "/admin/functions/health", Some(b"{\"input\":\"\"}".to_vec()));
    let (t1, t2) = tokio::join!(fire(), fire());
    for t in [&t1, &t2] {
        assert_eq!(t.status, 200, "{}", t.text);
        let v = t.json();
        assert_eq!(v["Outputs"], json!({}));
        assert_eq!(v["ReturnValue"]["phase"], "health", "{v}");
        assert_eq!(v["ReturnValue"]["summary"]["overall"], "Healthy", "{v}");
        assert!(v["Logs"][0].as_str().unwrap().starts_with("health: "), "{v}");
    }
    assert_eq!(p.scalar("SELECT count(*) FROM registry.health_runs").await, runs + 1, "overlapping firings ran once");
    // A later firing runs again (health is allowed any time) and changes nothing.
    let t3 = fire().await.json();
    assert_eq!(t3["ReturnValue"]["status"], "unchanged", "{t3}");
    let report = p.blob("reports/day0.html").await.expect("the health phase wrote the Day-0 report");
    assert!(String::from_utf8_lossy(&report).contains("data-phase=\"registry\""));

    let status = host.get("/api/status").await;
    assert_eq!(status.status, 200);
    let s = status.json();
    assert_eq!(s["phases"].as_array().unwrap().len(), 15);
    assert_eq!(s["overall"], "healthy");
    assert_eq!(s["release"]["release"], p.release.as_str());
    // A registry resource without checks of its own (the Foundry project) is listed "not checked".
    let states: Vec<&str> = s["components"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert!(states.iter().all(|st| *st == "healthy" || *st == "not checked"), "{s}");
    assert!(states.iter().filter(|st| **st == "healthy").count() >= 12, "{s}");
    let html = host.get("/api/status?format=html").await;
    assert!(html.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(html.text.starts_with("<!DOCTYPE html>"));
    host.stop();
    p.drop().await;
}

#[tokio::test]
async fn proxy_mode_serves_the_status_page_that_a_browser_renders() {
    let p = Platform::new("serve_browser").await;
    p.prepare(true).await;
    ok(&p.run("registry", &[]).0);
    ok(&p.run("health", &[]).0);
    let env = p.env(&[]);
    let host = Host::start("proxy", &env, &["--proxy", "--key", "test-function-key"]);
    assert_eq!(host.ready["mode"], "proxy");

    assert_eq!(host.get("/api/status").await.status, 401, "authLevel function needs the key");
    let status = host.get("/api/status?code=test-function-key").await;
    assert_eq!(status.status, 200, "{}", status.text);
    let s = status.json();
    let components: Vec<(String, String)> = s["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["state"].as_str().unwrap().to_owned()))
        .collect();
    assert!(components.len() >= 12, "every component the stack serves: {components:?}");
    let ran: Vec<String> = s["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ph| !ph["run"].is_null())
        .map(|ph| ph["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ran, ["artifacts", "runbooks", "database", "registry", "health"]);

    // The browser: every component row with its status, every phase bar.
    let png = output_dir().join("status.png");
    let _ = std::fs::remove_file(&png);
    let dom = chromium(&format!("{}/api/status?format=html&code=test-function-key", host.url), &png);
    std::fs::write(output_dir().join("status.dom.html"), &dom).unwrap();
    for (name, state) in &components {
        assert!(dom.contains(&format!("data-component=\"{name}\" data-state=\"{state}\"")), "row of {name} ({state})");
    }
    for id in &ran {
        assert!(dom.contains(&format!("<rect class=\"bar\" data-phase=\"{id}\"")), "bar of {id}");
    }
    assert_eq!(dom.matches("class=\"declarative\"").count(), 15 - 7, "declarative phases are listed without bars");
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000, "a real screenshot at {}", png.display());

    // `report --html` renders the same page with no function app.
    let file = output_dir().join("report.html");
    let o = p.stack.cli(&env, &["report", "--html", file.to_str().unwrap()]);
    ok(&o);
    let page = std::fs::read_to_string(&file).unwrap();
    for (name, state) in &components {
        assert!(page.contains(&format!("data-component=\"{name}\" data-state=\"{state}\"")));
    }
    let blob = p.blob("reports/day0.html").await.expect("run health wrote reports/day0.html");
    assert!(String::from_utf8_lossy(&blob).contains("data-phase=\"health\""));

    // Proxied phase calls: a succeeded phase is refused, a plan is served.
    let r = host.post("/api/phase/artifacts?code=test-function-key").await;
    assert_eq!(r.status, 409, "{}", r.text);
    let plan = host.get("/api/phase/health/plan?code=test-function-key").await;
    assert_eq!((plan.status, plan.json()["phase"].as_str()), (200, Some("health")), "{}", plan.text);
    host.stop();
    p.drop().await;
}

#[tokio::test]
async fn two_workers_asked_at_once_run_a_phase_once() {
    let p = Platform::with_release("serve_scaleout", &unique_release(73)).await;
    p.publish();
    let env = p.env(&[("VIBEDATA_IMPORT_CONCURRENCY", "1")]);
    // Two workers of one scaled-out app: the same app settings, the same ledger.
    let one = Host::start("scaleout-1", &env, &[]);
    let two = Host::start("scaleout-2", &env, &["--proxy"]);
    set_import_duration(&p.stack, 300).await;
    let mark = p.stack.journal_mark().await;
    let logged = import_log(&p.stack).await.len();
    let (a, b) = tokio::join!(one.post("/api/phase/artifacts"), two.post("/api/phase/artifacts"));
    assert_eq!((a.status, b.status), (202, 202), "{} {}", a.text, b.text);
    let (x, y) = tokio::join!(
        one.until_done("/api/phase/artifacts", Duration::from_secs(120)),
        two.until_done("/api/phase/artifacts", Duration::from_secs(120))
    );
    set_import_duration(&p.stack, 0).await;
    assert_eq!(x["status"], "succeeded", "{x}");
    assert_eq!(x, y, "both workers answer with the outputs of the one run");
    let imports = imports_after(&p.stack, logged).await;
    assert_no_repeats(&imports);
    assert_eq!(imports_since(&p.stack, mark).await, imports.len(), "one importImage per target");
    let skipped = ["scaleout-1", "scaleout-2"]
        .iter()
        .filter(|n| {
            std::fs::read_to_string(output_dir().join(format!("{n}.log"))).unwrap().contains("not running it again")
        })
        .count();
    assert_eq!(skipped, 1, "the worker that waited on the lease found it done in the ledger");
    one.stop();
    two.stop();
    p.drop().await;
}

/// Every handler case of the bad-input corpus gets its status and error code.
async fn send_bad(host: &Host, mode: &str) {
    for c in harness::bad_requests() {
        let r = host.call(&c.method, &c.path, c.body.clone()).await;
        let code =
            serde_json::from_str::<Value>(&r.text).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        assert_eq!((r.status, code.as_deref()), (c.status, Some(c.code.as_str())), "{mode}: {}: {}", c.name, r.text);
    }
}

#[tokio::test]
async fn bad_requests_get_a_4xx_and_nothing_runs() {
    let p = Platform::with_release("serve_bad", &unique_release(71)).await;
    p.publish();
    let env = p.env(&[]);
    let mark = p.stack.journal_mark().await;
    let envelope = Host::start("bad-envelope", &env, &[]);
    send_bad(&envelope, "envelope").await;
    // The handler's own port: an envelope that cannot be read, and a GET where the host POSTs.
    let direct = format!("http://127.0.0.1:{}", envelope.ready["handlerPort"]);
    let http = reqwest::Client::new();
    let r = http.post(format!("{direct}/phase")).body("{\"Data\": ").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "BadInvocation");
    let r = http.post(format!("{direct}/health")).body(r#"{"Data":{"timer":"{not json"}}"#).send().await.unwrap();
    assert_eq!(r.status(), 400, "a timer value that is not JSON runs nothing");
    assert_eq!(http.get(format!("{direct}/phase")).send().await.unwrap().status(), 405);
    assert_eq!(http.post(format!("{direct}/nope")).body("{}").send().await.unwrap().status(), 404);
    let ready = http.get(format!("{direct}/")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "readiness");
    envelope.stop();

    let proxy = Host::start("bad-proxy", &env, &["--proxy"]);
    send_bad(&proxy, "proxy").await;
    proxy.stop();

    // Trigger values as JSON-encoded strings parse the same.
    let strings = Host::start("bad-strings", &env, &["--trigger-as-string"]);
    send_bad(&strings, "string triggers").await;
    let r = strings.get("/api/phase/artifacts").await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("PhaseNotStarted")),
        "nothing ran: {}",
        r.text
    );
    strings.stop();

    let mutating: Vec<Value> =
        p.stack.journal_since(mark).await.into_iter().filter(|e| e["mutating"] == true).collect();
    assert!(mutating.is_empty(), "no mutating call: {mutating:?}");
    p.drop().await;
}

#[tokio::test]
async fn sigterm_and_sigkill_mid_phase_then_a_post_resumes_it_once() {
    let p = Platform::with_release("serve_kill", &unique_release(72)).await;
    p.publish();
    let env = p.env(&[
        ("VIBEDATA_IMPORT_CONCURRENCY", "1"),
        ("VIBEDATA_IMAGES", "vibedata/api,vibedata/web,vibedata/worker,vibedata/auth"),
    ]);
    let host = Host::start("kill", &env, &[]);
    set_import_duration(&p.stack, 400).await;
    let mark = p.stack.journal_mark().await;
    let logged = import_log(&p.stack).await.len();
    let imports_reach = |n: usize| {
        let stack = &p.stack;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while imports_since(stack, mark).await < n {
                assert!(Instant::now() < deadline, "fewer than {n} imports after 60 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // SIGTERM: the phase stops at a safe point, the ledger records it, the worker exits in 10 s.
    assert_eq!(host.post("/api/phase/artifacts").await.status, 202);
    imports_reach(1).await;
    let pid = host.handler_pid().await;
    let t = Instant::now();
    signal(pid, "TERM");
    let exited = host.event("handler-exited", Duration::from_secs(12));
    assert!(t.elapsed() < Duration::from_secs(10), "exited after {:?}", t.elapsed());
    assert_eq!((exited["pid"].as_u64(), exited["code"].as_i64()), (Some(pid as u64), Some(0)));
    host.event("handler-restarted", Duration::from_secs(30));
    let stopped = host.get("/api/phase/artifacts").await;
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    let v = stopped.json();
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("failed"), Some("Interrupted")), "{v}");

    // The lease was released: the next run starts at once (a held one lapses only after 15 s).
    let before = imports_since(&p.stack, mark).await;
    let t = Instant::now();
    assert_eq!(host.post("/api/phase/artifacts").await.status, 202);
    imports_reach(before + 1).await;
    assert!(t.elapsed() < Duration::from_secs(10), "the second run waited {:?} for the lock", t.elapsed());

    // SIGKILL: nothing is recorded; the status URL says running and a GET does not resume it.
    let pid = host.handler_pid().await;
    signal(pid, "KILL");
    host.event("handler-restarted", Duration::from_secs(30));
    let stale = host.get("/api/phase/artifacts").await;
    assert_eq!(stale.status, 202, "{}", stale.text);
    let attempt = stale.json()["attempt"].as_u64().unwrap();
    assert_eq!(attempt, 2, "{}", stale.text);
    assert_eq!(host.get("/api/phase/artifacts").await.json()["attempt"], attempt, "a GET never resumes");

    // A POST resumes once the killed worker's lease lapses, and finishes the work once.
    assert_eq!(host.post("/api/phase/artifacts").await.status, 202);
    let done = host.until_done("/api/phase/artifacts", Duration::from_secs(120)).await;
    set_import_duration(&p.stack, 0).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // Every import the release pins, each once across the three runs.
    let imports = imports_after(&p.stack, logged).await;
    assert_no_repeats(&imports);
    assert!(imports.iter().any(|t| t.starts_with("vibedata/worker:")), "{imports:?}");
    assert_eq!(imports_since(&p.stack, mark).await, imports.len(), "one importImage per target");
    let resumed = done["changed"].as_array().unwrap().iter().filter(|c| c["action"] == "import").count();
    assert!(resumed < imports.len(), "the resumed run did not start over: {done}");
    host.stop();
    p.drop().await;
}
