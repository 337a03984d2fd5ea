//! The Managed Application package as `scripts/package` lays it out before zipping: the
//! template and UI definition at the root, the binary and the function app as artifacts
//! (`_artifactsLocation` is the package's root), and the binary's SBOM.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::finding::{rule, Finding};
use crate::template::Template;
use crate::uidef::{self, UI_DEFINITION};

pub const MAIN_TEMPLATE: &str = "mainTemplate.json";
pub const BINARY: &str = "artifacts/vibedata-bootstrap";
pub const BINARY_SHA256: &str = "artifacts/vibedata-bootstrap.sha256";
pub const FUNCTIONS: &str = "artifacts/functions.zip";
pub const SBOM: &str = "sbom/vibedata-bootstrap.cdx.json";

#[derive(Debug, Clone, Copy, Default)]
pub struct Expect {
    /// No Bicep compiler was available: mainTemplate.json is absent.
    pub no_compile: bool,
    /// The function app package was not built (the handler is not in this tree).
    pub no_functions: bool,
}

pub fn check(dir: &Path, infra: &Template, expect: Expect) -> Vec<Finding> {
    let mut out = Vec::new();
    let f = |file: &str, msg: String| Finding::new(rule::PACKAGE, file, 0, msg);
    let read = |rel: &str| std::fs::read(dir.join(rel));

    let mut wanted = vec![UI_DEFINITION, BINARY, BINARY_SHA256, SBOM];
    if !expect.no_compile {
        wanted.push(MAIN_TEMPLATE);
    }
    if !expect.no_functions {
        wanted.push(FUNCTIONS);
    }
    for rel in &wanted {
        if !dir.join(rel).is_file() {
            out.push(f(rel, "is missing from the package".into()));
        }
    }
    for rel in list(dir) {
        let known = [MAIN_TEMPLATE, UI_DEFINITION, BINARY, BINARY_SHA256, FUNCTIONS, SBOM];
        if !known.contains(&rel.as_str()) {
            out.push(f(&rel, "is not part of the package layout".into()));
        } else if !wanted.contains(&rel.as_str()) {
            out.push(f(&rel, "is in the package although it was not built".into()));
        }
    }

    // The binary is the one the template pins, and it starts.
    let mut version = None;
    if let (Ok(bin), Ok(pin)) = (read(BINARY), read(BINARY_SHA256)) {
        let digest = hex::encode(Sha256::digest(&bin));
        let pinned = String::from_utf8_lossy(&pin).split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if pinned != digest {
            out.push(f(BINARY_SHA256, format!("pins {pinned}, but the binary's SHA-256 is {digest}")));
        }
        if let Ok(tmpl) = read(MAIN_TEMPLATE) {
            if !String::from_utf8_lossy(&tmpl).contains(&digest) {
                out.push(f(MAIN_TEMPLATE, format!("does not carry the binary's SHA-256 {digest}")));
            }
        }
        version = binary_version(&dir.join(BINARY)).map_err(|why| out.push(f(BINARY, why))).ok();
    }

    if let Ok(bytes) = read(UI_DEFINITION) {
        let mine = std::fs::read(infra.root.join(UI_DEFINITION)).unwrap_or_default();
        if bytes != mine {
            out.push(f(UI_DEFINITION, "differs from infra/createUiDefinition.json".into()));
        }
        out.extend(uidef::check(infra.main(), UI_DEFINITION, &String::from_utf8_lossy(&bytes)));
    }
    if let Ok(bytes) = read(MAIN_TEMPLATE) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(t) if t["resources"].is_object() || t["resources"].is_array() => {}
            Ok(_) => out.push(f(MAIN_TEMPLATE, "has no resources".into())),
            Err(e) => out.push(f(MAIN_TEMPLATE, format!("is not JSON: {e}"))),
        }
    }
    if let Ok(bytes) = read(SBOM) {
        out.extend(sbom(&bytes, version.as_deref()).into_iter().map(|m| f(SBOM, m)));
    }
    if let Ok(bytes) = read(FUNCTIONS) {
        if !bytes.starts_with(b"PK\x03\x04") {
            out.push(f(FUNCTIONS, "is not a zip file".into()));
        }
    }
    out
}

fn list(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// `vibedata-bootstrap --version` prints `vibedata-bootstrap <version> (<commit>)`.
fn binary_version(bin: &Path) -> Result<String, String> {
    let out = Command::new(bin).arg("--version").output().map_err(|e| format!("does not start: {e}"))?;
    if !out.status.success() {
        return Err(format!("--version exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_owned).ok_or_else(|| format!("--version printed `{}`", text.trim()))
}

fn sbom(bytes: &[u8], version: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let doc: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return vec![format!("is not JSON: {e}")],
    };
    if doc["bomFormat"] != "CycloneDX" || !doc["specVersion"].is_string() {
        out.push("is not a CycloneDX document (bomFormat, specVersion)".into());
    }
    let component = &doc["metadata"]["component"];
    if component["name"] != "vibedata-bootstrap" {
        out.push(format!("describes {}, not vibedata-bootstrap", component["name"]));
    }
    if let Some(v) = version {
        if component["version"].as_str() != Some(v) {
            out.push(format!("is for version {}, but the binary is {v}", component["version"]));
        }
    }
    if doc["components"].as_array().is_none_or(|c| c.is_empty()) {
        out.push("lists no components".into());
    }
    out
}
