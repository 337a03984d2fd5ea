//! Running one command the way the `command-<id>` pod does: `bash -c <command>` in a folder
//! holding the unpacked context, stdout and stderr into one log (truncated at 512 KiB), the
//! exit code into the result. The PATH starts with this command's `helm`, `kubectl` and `curl`
//! (the emulator binary under those names, see `shim.rs`), then the machine's own tools (bash,
//! jq, grep, awk, as in the runtime image).

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use super::context::{self, Member};
use super::lro::Outcome;
use super::shim;
use crate::faults::CommandFault;
use crate::state::Shared;

/// AKS keeps this much of the command's output (R4: "logs truncated at 512 kB").
pub const LOG_LIMIT: usize = 512 * 1024;

pub struct Job {
    pub id: String,
    pub cluster: String,
    pub command: String,
    pub members: Vec<Member>,
    /// Whether the clusterToken was good: the API server refuses every call otherwise.
    pub authorized: bool,
    pub fault: Option<CommandFault>,
    pub started: String,
    /// No result shows before this (the simulated pod start).
    pub not_before: tokio::time::Instant,
}

/// What the shim server needs to know about a running command.
#[derive(Debug, Clone)]
pub struct Running {
    pub id: String,
    pub cluster: String,
    pub authorized: bool,
    /// The command's working directory and home.
    pub work: PathBuf,
    pub home: PathBuf,
    /// The process group of `bash` (killed to emulate a pod that died mid-install).
    pub pgid: Option<i32>,
}

/// Where scratch folders go: `stateDir/aks` when configured, else the temp folder.
fn scratch_root(st: &Shared) -> PathBuf {
    st.config.state_dir.clone().unwrap_or_else(std::env::temp_dir).join("aks-commands")
}

pub async fn run(st: Shared, job: Job) {
    let (exit, logs) = match &job.fault {
        Some(CommandFault::Failed { reason }) => {
            tokio::time::sleep_until(job.not_before).await;
            finish(&st, &job, Err(reason.clone()));
            return;
        }
        _ => execute(&st, &job).await,
    };
    tokio::time::sleep_until(job.not_before).await;
    match exit {
        Ok(code) => finish(&st, &job, Ok((code, logs))),
        Err(reason) => finish(&st, &job, Err(reason)),
    }
}

fn finish(st: &Shared, job: &Job, result: Result<(i32, Vec<u8>), String>) {
    let finished = crate::http::now_rfc3339();
    let mut aks = st.aks.lock();
    let (body, status, exit, reason) = match result {
        Ok((code, logs)) => {
            let logs = truncate(&logs);
            let state = aks.state_word("Succeeded");
            let body = json!({"id": job.id, "properties": {"provisioningState": state, "exitCode": code,
                               "startedAt": job.started, "finishedAt": finished, "logs": logs}});
            (body, "Succeeded", Some(code), None)
        }
        Err(reason) => {
            let state = aks.state_word("Failed");
            let body = json!({"id": job.id, "properties": {"provisioningState": state, "startedAt": job.started,
                               "finishedAt": finished, "reason": reason}});
            (body, "Failed", None, Some(reason))
        }
    };
    if let Some(rec) = aks.record(&job.id) {
        rec.finished_at = Some(finished);
        rec.status = status.to_owned();
        rec.exit_code = exit;
        rec.reason = reason;
    }
    if let Some(op) = aks.ops.get_mut(&job.id) {
        op.finish(Outcome::Succeeded(Some(body)));
    }
    tracing::info!(command = %job.id, status, exit, "runCommand finished");
}

/// The first [`LOG_LIMIT`] bytes, cut at a character boundary.
fn truncate(logs: &[u8]) -> String {
    let text = String::from_utf8_lossy(&logs[..logs.len().min(LOG_LIMIT)]).into_owned();
    if logs.len() <= LOG_LIMIT {
        return text;
    }
    let mut end = text.len().min(LOG_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Runs the command; `Ok(exit code, output)`, or `Err(reason)` when the pod could not run it.
async fn execute(st: &Shared, job: &Job) -> (Result<i32, String>, Vec<u8>) {
    let root = scratch_root(st).join(&job.id);
    let (work, home, bin) = (root.join("work"), root.join("home"), root.join("bin"));
    let setup = || -> std::io::Result<()> {
        for d in [&work, &home, &bin] {
            std::fs::create_dir_all(d)?;
        }
        context::unpack(&job.members, &work)?;
        // Our own /proc entry, not the path: a rebuild that replaces the binary while the
        // emulator runs would leave the path pointing at a deleted file.
        let me = std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        for tool in shim::TOOLS {
            std::os::unix::fs::symlink(&me, bin.join(tool))?;
        }
        Ok(())
    };
    if let Err(e) = setup() {
        return (
            Err(format!("ContainerCreateError: preparing the command folder {}: {e}", root.display())),
            Vec::new(),
        );
    }
    let socket = match shim::ensure_server(st) {
        Ok(p) => p,
        Err(e) => return (Err(format!("ContainerCreateError: {e}")), Vec::new()),
    };
    let token = uuid::Uuid::new_v4().simple().to_string();
    let (helm, timeout, keep) = {
        let aks = st.aks.lock();
        (aks.settings.helm.clone(), aks.settings.command_timeout_seconds, aks.settings.keep_scratch)
    };
    let running = Running {
        id: job.id.clone(),
        cluster: job.cluster.clone(),
        authorized: job.authorized,
        work: work.clone(),
        home: home.clone(),
        pgid: None,
    };
    st.aks.lock().running.insert(token.clone(), running);

    let result = spawn_and_wait(st, job, &token, &socket, &bin, &work, &home, helm.as_deref(), timeout).await;
    st.aks.lock().running.remove(&token);
    if !keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn spawn_and_wait(
    st: &Shared,
    job: &Job,
    token: &str,
    socket: &Path,
    bin: &Path,
    work: &Path,
    home: &Path,
    helm: Option<&Path>,
    timeout_secs: u64,
) -> (Result<i32, String>, Vec<u8>) {
    // One pipe for stdout and stderr, so the log interleaves them as a pod's log does.
    let (read_end, write_end) = match pipe() {
        Ok(p) => p,
        Err(e) => return (Err(format!("ContainerCreateError: pipe: {e}")), Vec::new()),
    };
    let write_err = match write_end.try_clone() {
        Ok(w) => w,
        Err(e) => return (Err(format!("ContainerCreateError: pipe: {e}")), Vec::new()),
    };
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(&job.command)
        .current_dir(work)
        .env_clear()
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()))
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("HOSTNAME", format!("command-{}", job.id))
        .env("KUBERNETES_SERVICE_HOST", "172.16.0.1")
        .env("KUBERNETES_SERVICE_PORT", "443")
        .env(shim::ENV_SOCKET, socket)
        .env(shim::ENV_TOKEN, token)
        .env("HELM_CACHE_HOME", home.join(".cache/helm"))
        .env("HELM_CONFIG_HOME", home.join(".config/helm"))
        .env("HELM_DATA_HOME", home.join(".local/share/helm"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_err))
        .process_group(0)
        .kill_on_drop(true);
    if let Some(h) = helm {
        cmd.env(shim::ENV_REAL_HELM, h);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (Err(format!("ContainerCannotRun: bash: {e}")), Vec::new()),
    };
    // Dropping the Command closes our copies of the pipe's write end, so the reader sees EOF
    // once every process of the command has exited.
    drop(cmd);
    let pgid = child.id().map(|p| p as i32);
    if let Some(r) = st.aks.lock().running.get_mut(token) {
        r.pgid = pgid;
    }
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(read_end);
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        // Read everything (a full pipe would block the command), keep what the log keeps.
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = (LOG_LIMIT + 4).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    });
    let status = match tokio::time::timeout(Duration::from_secs(timeout_secs), child.wait()).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(_)) => None,
        Err(_) => {
            kill_group(pgid);
            child.wait().await.ok()
        }
    };
    // Orphans of the command (background jobs) go with it, as with the pod.
    kill_group(pgid);
    let logs = tokio::task::spawn_blocking(move || reader.join().unwrap_or_default()).await.unwrap_or_default();
    let code = status.map_or(137, |s| {
        use std::os::unix::process::ExitStatusExt;
        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
    });
    (Ok(code), logs)
}

/// SIGKILL to a whole process group.
pub fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid.filter(|p| *p > 1) {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we then own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_the_limit_on_a_character_boundary() {
        assert_eq!(truncate(b"short"), "short");
        let mut long = vec![b'a'; LOG_LIMIT - 1];
        long.extend("é and more".as_bytes());
        let t = truncate(&long);
        assert!(t.len() <= LOG_LIMIT);
        assert!(t.ends_with('a'));
    }
}
