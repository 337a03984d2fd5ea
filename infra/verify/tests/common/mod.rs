//! A copy of infra/ to break, and the plan of the binary this workspace built.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vibedata_infra_verify::plan::{self, Phase};
use vibedata_infra_verify::Finding;

pub fn infra_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("infra/verify sits in infra/").to_path_buf()
}

/// `plan --json` of target/<profile>/vibedata-bootstrap. The workspace build (scripts/test)
/// makes it; this test builds nothing.
pub fn plan() -> Vec<Phase> {
    let bin = plan::default_binary();
    plan::from_binary(&bin).unwrap_or_else(|e| panic!("{e}"))
}

pub struct Copy {
    pub dir: tempfile::TempDir,
}

impl Copy {
    /// The templates and the UI definition (not the checker's crate).
    pub fn new() -> Copy {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&infra_root(), dir.path());
        Copy { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the one occurrence of `old` in `file`; a mutation that no longer applies fails
    /// the test instead of passing against an unchanged template.
    pub fn edit(&self, file: &str, old: &str, new: &str) -> &Copy {
        let path = self.dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let n = text.matches(old).count();
        assert_eq!(n, 1, "{file}: expected exactly one `{old}`, found {n}");
        std::fs::write(&path, text.replacen(old, new, 1)).expect("write");
        self
    }

    pub fn check(&self, plan: &[Phase]) -> Vec<Finding> {
        vibedata_infra_verify::check_dir(self.dir.path(), plan).expect("the copy loads")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read infra/") {
        let e = e.expect("entry");
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "verify" {
                copy_dir(&p, &to.join(&name));
            }
        } else if p.extension().is_some_and(|x| x == "bicep" || x == "json") {
            std::fs::copy(&p, to.join(&name)).expect("copy");
        }
    }
}

/// Asserts that a finding of `rule` in `file` mentions every one of `words`.
pub fn assert_finds(findings: &[Finding], rule: &str, file: &str, words: &[&str]) {
    let hit = findings.iter().any(|f| f.rule == rule && f.file == file && words.iter().all(|w| f.message.contains(w)));
    let all: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(hit, "no [{rule}] finding in {file} mentioning {words:?}; findings:\n{}", all.join("\n"));
}
