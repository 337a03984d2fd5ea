//! The command's `helm`, `kubectl` and `curl`: the emulator binary itself, linked under those
//! names into the command's `bin/`. Started that way (`argv[0]`) with the shim environment
//! set, it is a client: `helm template|lint|show|version|package|...` exec the real Helm; every
//! call that needs the cluster goes, with its arguments, working directory and (for
//! `kubectl apply -f -`) stdin, over a Unix socket to the emulator, which answers it from the
//! emulated cluster (`helm.rs`, `kubectl.rs`) and sends back stdout, stderr and the exit code.
//!
//! Each command gets its own token, so a call is always attributed to its command (and the
//! command log records it).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{helm, kubectl, Call};
use crate::state::Shared;

pub const TOOLS: &[&str] = &["helm", "kubectl", "curl"];
pub const ENV_SOCKET: &str = "VIBEDATA_AKS_SHIM_SOCKET";
pub const ENV_TOKEN: &str = "VIBEDATA_AKS_SHIM_TOKEN";
pub const ENV_REAL_HELM: &str = "VIBEDATA_AKS_REAL_HELM";

/// Helm subcommands that need no cluster: the real binary runs them.
const LOCAL_HELM: &[&str] = &[
    "template",
    "lint",
    "show",
    "inspect",
    "version",
    "package",
    "dependency",
    "dep",
    "dependencies",
    "create",
    "env",
    "completion",
    "verify",
    "search",
    "repo",
    "pull",
    "push",
    "registry",
    "plugin",
    "help",
];

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub token: String,
    pub tool: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    #[serde(default)]
    pub stdin: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub exit: i32,
}

impl Output {
    pub fn ok(stdout: impl Into<String>) -> Output {
        Output { stdout: stdout.into(), stderr: String::new(), exit: 0 }
    }

    pub fn err(stderr: impl Into<String>) -> Output {
        let mut stderr = stderr.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Output { stdout: String::new(), stderr, exit: 1 }
    }
}

/// The first argument that is not a flag (skipping the values of Helm's global flags).
pub fn subcommand(args: &[String]) -> Option<&str> {
    const VALUE_FLAGS: &[&str] = &[
        "-n",
        "--namespace",
        "--kube-context",
        "--kubeconfig",
        "--registry-config",
        "--repository-cache",
        "--repository-config",
        "--burst-limit",
        "--qps",
        "--kube-apiserver",
        "--kube-token",
    ];
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if VALUE_FLAGS.contains(&a) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some(a);
        }
    }
    None
}

/// In a process started as `helm`, `kubectl` or `curl` inside an emulated command: does the
/// tool's work and returns its exit code. `None` for an ordinary start of the emulator.
pub fn shim_main() -> Option<i32> {
    let argv0 = std::env::args_os().next()?;
    let tool = std::path::Path::new(&argv0).file_name()?.to_str()?.to_owned();
    if !TOOLS.contains(&tool.as_str()) {
        return None;
    }
    let socket = std::env::var_os(ENV_SOCKET)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if tool == "helm" && subcommand(&args).is_none_or(|s| LOCAL_HELM.contains(&s)) {
        let Some(real) = std::env::var_os(ENV_REAL_HELM) else {
            eprintln!("helm: not installed in this emulator (start it with aks.helm; scripts/setup installs Helm into .tools/)");
            return Some(127);
        };
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(real).args(&args).exec();
        eprintln!("helm: {err}");
        return Some(127);
    }
    let wants_stdin = tool == "kubectl"
        && (args.windows(2).any(|w| matches!(w[0].as_str(), "-f" | "--filename") && w[1] == "-")
            || args.iter().any(|a| a == "--filename=-" || a == "-f-"));
    let stdin = wants_stdin.then(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_to_string(&mut s);
        s
    });
    let request = Request {
        token: std::env::var(ENV_TOKEN).unwrap_or_default(),
        tool: tool.clone(),
        args,
        cwd: std::env::current_dir().unwrap_or_default(),
        stdin,
    };
    let answer = (|| -> std::io::Result<Output> {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket)?;
        stream.write_all(&serde_json::to_vec(&request)?)?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf)?;
        Ok(serde_json::from_slice(&buf)?)
    })();
    match answer {
        Ok(out) => {
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            let _ = std::io::stdout().flush();
            Some(out.exit)
        }
        Err(e) => {
            // The API server is gone (the emulator stopped): what kubectl says then.
            eprintln!("{tool}: the connection to the server was lost: {e}");
            Some(1)
        }
    }
}

static SOCKET: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The socket the shims talk to; bound (and served) on first use.
pub fn ensure_server(st: &Shared) -> Result<PathBuf, String> {
    SOCKET
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("vibedata-emulator-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let path = dir.join("shim.sock");
            let _ = std::fs::remove_file(&path);
            let listener =
                tokio::net::UnixListener::bind(&path).map_err(|e| format!("binding {}: {e}", path.display()))?;
            let st = st.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(st.clone(), stream));
                }
            });
            Ok(path)
        })
        .clone()
}

async fn serve(st: Shared, mut stream: tokio::net::UnixStream) {
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).await.is_err() {
        return;
    }
    let out = match serde_json::from_slice::<Request>(&buf) {
        Ok(req) => handle(&st, req).await,
        Err(e) => Output::err(format!("shim: bad request: {e}")),
    };
    let _ = stream.write_all(&serde_json::to_vec(&out).unwrap_or_default()).await;
    let _ = stream.shutdown().await;
}

async fn handle(st: &Shared, req: Request) -> Output {
    let running = st.aks.lock().running.get(&req.token).cloned();
    let Some(running) = running else {
        return Output::err(format!("{}: this command is no longer running", req.tool));
    };
    let out = match req.tool.as_str() {
        "helm" if !running.authorized => Output::err(
            "Error: Kubernetes cluster unreachable: the server has asked for the client to provide credentials",
        ),
        "kubectl" if !running.authorized => Output::err("error: You must be logged in to the server (Unauthorized)"),
        "helm" => helm::run(st, &running, &req.cwd, &req.args).await,
        "kubectl" => kubectl::run(st, &running, &req.cwd, &req.args, req.stdin.as_deref()).await,
        "curl" => kubectl::curl(st, &running, &req.args).await,
        other => Output::err(format!("{other}: not a shim")),
    };
    if let Some(rec) = st.aks.lock().record(&running.id) {
        rec.calls.push(Call { tool: req.tool.clone(), args: req.args.clone(), exit: out.exit });
    }
    out
}
