//! Where raw values come from: the environment, over an optional JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::keys::KEYS;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// The configuration is incomplete or invalid. Lists every problem at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.iter().map(|p| format!("{} {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// Raw key/value pairs, environment over file.
#[derive(Debug, Clone, Default)]
pub struct Source {
    values: BTreeMap<String, String>,
}

impl Source {
    /// Reads the process environment and, when `VIBEDATA_CONFIG_FILE` or `file` names one, a JSON file.
    pub fn load(file: Option<&Path>) -> Result<Source, ConfigError> {
        Self::from_env(std::env::vars(), file)
    }

    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
        file: Option<&Path>,
    ) -> Result<Source, ConfigError> {
        let env: BTreeMap<String, String> =
            vars.into_iter().filter(|(k, _)| k.starts_with("VIBEDATA_") || k.starts_with("AZ_SCRIPTS_")).collect();
        let file = file.map(Path::to_path_buf).or_else(|| env.get("VIBEDATA_CONFIG_FILE").map(PathBuf::from));
        let mut values = match file {
            Some(path) => read_json_file(&path)?,
            None => BTreeMap::new(),
        };
        values.extend(env.into_iter().filter(|(_, v)| !v.is_empty()));
        Ok(Source { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

fn read_json_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let fail =
        |message: String| ConfigError { problems: vec![Problem { key: "VIBEDATA_CONFIG_FILE".into(), message }] };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("{} is not JSON: {e}", path.display())))?;
    let obj = doc.as_object().ok_or_else(|| fail(format!("{} must hold a JSON object", path.display())))?;
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for (k, v) in obj {
        if !KEYS.iter().any(|spec| spec.name == k) {
            unknown.push(k.clone());
            continue;
        }
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.insert(k.clone(), s);
    }
    if !unknown.is_empty() {
        return Err(fail(format!("{} has unknown keys: {}", path.display(), unknown.join(", "))));
    }
    Ok(out)
}
