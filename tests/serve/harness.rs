//! The Functions host stand-in (`scripts/serve-local`, the same program a developer runs) driven
//! from a test: started with the platform's env as app settings, its JSON events read from
//! stdout, the handler's log kept under `target/test-output/serve/`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn output_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-output/serve"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Host {
    child: Child,
    events: Receiver<Value>,
    pub url: String,
    pub ready: Value,
    http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Host {
    /// Starts serve-local with `args` (e.g. `--proxy`, `--timeout 3`); returns once it is ready.
    pub fn start(name: &str, env: &BTreeMap<String, String>, args: &[&str]) -> Host {
        let port = free_port().to_string();
        let log = std::fs::File::create(output_dir().join(format!("{name}.log"))).unwrap();
        let mut child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/serve-local"))
            .args(["--binary", env!("CARGO_BIN_EXE_vibedata-bootstrap"), "--port", &port])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("scripts/serve-local starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut host = Host {
            child,
            events,
            url: format!("http://127.0.0.1:{port}"),
            ready: Value::Null,
            http: reqwest::Client::new(),
        };
        host.ready = host.event("ready", Duration::from_secs(60));
        host
    }

    /// The next event named `name`, skipping others.
    pub fn event(&self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["event"] == name => return v,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!("no {name} event from serve-local within {within:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("serve-local ended before a {name} event"),
            }
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Reply {
        let mut r = self.http.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let res = r.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        Reply { status, headers, text: res.text().await.unwrap() }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str) -> Reply {
        self.call("POST", path, None).await
    }

    /// Polls a status URL until the phase is done (200); the protocol's own wait: 202 while
    /// running, with Retry-After.
    pub async fn until_done(&self, status_url: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get(status_url).await;
            match r.status {
                200 => return r.json(),
                202 => assert_eq!(r.json()["status"], "running", "{}", r.text),
                other => panic!("GET {status_url}: {other} {}", r.text),
            }
            assert!(Instant::now() < deadline, "{status_url} still running after {within:?}: {}", r.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn handler_pid(&self) -> u32 {
        self.get("/admin/host/status").await.json()["handlerPid"].as_u64().unwrap() as u32
    }

    /// SIGTERM to serve-local, which stops the handler the same way, and waits for both.
    pub fn stop(mut self) {
        signal(self.child.id(), "TERM");
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            let _ = self.child.wait();
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Headless Chromium (Debian's `chromium`, which scripts/setup installs): the DOM after load,
/// and a screenshot at `png`.
pub fn chromium(url: &str, png: &std::path::Path) -> String {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new("sh").args(["-c", &format!("command -v {b}")]).output().is_ok_and(|o| o.status.success())
        })
        .expect("chromium is installed (scripts/setup installs Debian's chromium)");
    let profile = tempfile::tempdir().unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1200,1600",
    ];
    let user_dir = format!("--user-data-dir={}", profile.path().display());
    let shot = Command::new(bin)
        .args(common)
        .arg(&user_dir)
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(shot.status.success() && png.exists(), "chromium --screenshot: {}", String::from_utf8_lossy(&shot.stderr));
    let dom = Command::new(bin).args(common).arg(&user_dir).arg("--dump-dom").arg(url).output().unwrap();
    assert!(dom.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&dom.stderr));
    String::from_utf8(dom.stdout).unwrap()
}

/// A bad request of the corpus (`tests/corpus/handler-*.json`) and the answer it must get.
pub struct BadRequest {
    pub name: String,
    pub method: String,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub status: u16,
    pub code: String,
}

/// The handler cases of the bad-input corpus; a body may be `{"$repeat": [s, n]}`.
pub fn bad_requests() -> Vec<BadRequest> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"));
    let mut cases: Vec<BadRequest> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("handler-"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let r = &v["request"];
            let body = match &r["body"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone().into_bytes()),
                Value::Object(m) if m.contains_key("$repeat") => {
                    let (s, n) = (m["$repeat"][0].as_str().unwrap(), m["$repeat"][1].as_u64().unwrap());
                    Some(s.repeat(n as usize).into_bytes())
                }
                other => Some(other.to_string().into_bytes()),
            };
            BadRequest {
                name: p.file_stem().unwrap().to_str().unwrap().to_owned(),
                method: r["method"].as_str().unwrap().to_owned(),
                path: r["path"].as_str().unwrap().to_owned(),
                body,
                status: v["status"].as_u64().unwrap() as u16,
                code: v["code"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 9, "the corpus lost handler cases");
    cases
}
