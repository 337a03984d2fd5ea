//! `vibedata-bootstrap plan --json`: the single source of the phase order and of each step's
//! required configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub order: u32,
    pub id: String,
    pub kind: String,
    pub command: Option<String>,
    #[serde(default)]
    pub built: bool,
    #[serde(default)]
    pub required_config: Vec<String>,
    /// From `plan --permissions --json`: what the phase's identity needs granted.
    #[serde(default)]
    pub permissions: Vec<Need>,
}

/// One permission of a phase, as `plan --permissions --json` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Need {
    /// `action`, `dataAction` or `noRbac`.
    pub kind: String,
    pub name: String,
    /// The configuration key naming the resource it applies to.
    pub resource: String,
    #[serde(default)]
    pub confirmed: bool,
}

#[derive(Deserialize)]
struct PhasePermissions {
    phase: String,
    permissions: Vec<Need>,
}

impl Phase {
    /// The bootstrap step (`run <step>`), for imperative and mixed phases.
    pub fn step(&self) -> Option<&str> {
        self.command.as_deref().and_then(|c| c.strip_prefix("run "))
    }

    /// The symbolic name of the phase's module in main.bicep: the id in camelCase.
    pub fn module_symbol(&self) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in self.id.chars() {
            if c == '-' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot run {path}: {source} (build it first: cargo build -p vibedata-bootstrap)")]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error("{path} plan --json exited with {status}: {stderr}")]
    Failed { path: PathBuf, status: std::process::ExitStatus, stderr: String },
    #[error("plan --json is not the expected array of phases: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("plan --json lists no phases")]
    Empty,
}

pub fn from_json(text: &str) -> Result<Vec<Phase>, PlanError> {
    let mut phases: Vec<Phase> = serde_json::from_str(text)?;
    if phases.is_empty() {
        return Err(PlanError::Empty);
    }
    phases.sort_by_key(|p| p.order);
    Ok(phases)
}

/// Runs `<binary> plan --json` and `<binary> plan --permissions --json`.
pub fn from_binary(binary: &Path) -> Result<Vec<Phase>, PlanError> {
    let mut phases = from_json(&run(binary, &["plan", "--json"])?)?;
    let perms: Vec<PhasePermissions> = serde_json::from_str(&run(binary, &["plan", "--permissions", "--json"])?)?;
    for p in perms {
        if let Some(phase) = phases.iter_mut().find(|x| x.id == p.phase) {
            phase.permissions = p.permissions;
        }
    }
    Ok(phases)
}

fn run(binary: &Path, args: &[&str]) -> Result<String, PlanError> {
    let out = Command::new(binary)
        .args(args)
        .env_remove("VIBEDATA_CONFIG_FILE")
        .output()
        .map_err(|source| PlanError::Spawn { path: binary.to_owned(), source })?;
    if !out.status.success() {
        return Err(PlanError::Failed {
            path: binary.to_owned(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `vibedata-bootstrap` binary of this build: `VIBEDATA_BOOTSTRAP_BIN`, else the one in the
/// target directory that holds the running executable (tests run from `target/<profile>/deps`).
pub fn default_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VIBEDATA_BOOTSTRAP_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir.join("vibedata-bootstrap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_symbols_are_camel_case_ids() {
        let p = |id: &str| Phase {
            order: 1,
            id: id.into(),
            kind: "declarative".into(),
            command: None,
            built: false,
            required_config: vec![],
            permissions: vec![],
        };
        assert_eq!(p("prereqs-identity").module_symbol(), "prereqsIdentity");
        assert_eq!(p("app-gateway").module_symbol(), "appGateway");
        assert_eq!(p("health").module_symbol(), "health");
    }
}
