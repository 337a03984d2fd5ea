//! The package check: a package laid out as scripts/package lays it out passes, and each way
//! of breaking it is named. The packaged "binary" is a small executable that answers
//! `--version` like vibedata-bootstrap (hashing the real 50 MB debug build in every case would
//! dominate the run); scripts/test packages the real binary with scripts/package.

mod common;

use std::path::Path;

use vibedata_infra_verify::package::{self, Expect, BINARY, BINARY_SHA256, FUNCTIONS, MAIN_TEMPLATE, SBOM};
use vibedata_infra_verify::{rule, Finding, Template};

const VERSION: &str = "0.1.0";

fn sbom(name: &str, version: &str) -> String {
    serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"component": {"type": "application", "name": name, "version": version}},
        "components": [{"type": "library", "name": "serde", "version": "1.0.0"}],
    })
    .to_string()
}

/// A complete package (no mainTemplate.json: no compiler here) in a temporary directory.
fn package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path();
    for sub in ["artifacts", "sbom"] {
        std::fs::create_dir_all(p.join(sub)).expect("mkdir");
    }
    std::fs::write(p.join(BINARY), format!("#!/bin/sh\necho 'vibedata-bootstrap {VERSION} (0000000)'\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join(BINARY), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(p.join(BINARY)).unwrap()))
    };
    std::fs::write(p.join(BINARY_SHA256), format!("{digest}  vibedata-bootstrap\n")).unwrap();
    std::fs::copy(common::infra_root().join("createUiDefinition.json"), p.join("createUiDefinition.json")).unwrap();
    std::fs::write(p.join(SBOM), sbom("vibedata-bootstrap", VERSION)).unwrap();
    std::fs::write(p.join(FUNCTIONS), b"PK\x03\x04 not really a zip past its magic").unwrap();
    dir
}

fn check(dir: &Path, expect: Expect) -> Vec<Finding> {
    let t = Template::load(&common::infra_root()).expect("infra/ loads");
    package::check(dir, &t, Expect { no_compile: true, ..expect })
}

fn assert_named(findings: &[Finding], file: &str, words: &str) {
    assert!(
        findings.iter().any(|f| f.rule == rule::PACKAGE && f.file == file && f.message.contains(words)),
        "no package finding for {file} mentioning `{words}`: {findings:?}"
    );
}

#[test]
fn a_complete_package_passes() {
    let dir = package();
    let findings = check(dir.path(), Expect::default());
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn a_binary_that_is_not_the_pinned_one_is_named() {
    let dir = package();
    std::fs::write(dir.path().join(BINARY_SHA256), format!("{}  vibedata-bootstrap\n", "0".repeat(64))).unwrap();
    assert_named(&check(dir.path(), Expect::default()), BINARY_SHA256, "but the binary's SHA-256 is");
}

#[test]
fn a_missing_sbom_and_function_app_are_named() {
    let dir = package();
    std::fs::remove_file(dir.path().join(SBOM)).unwrap();
    std::fs::remove_file(dir.path().join(FUNCTIONS)).unwrap();
    let findings = check(dir.path(), Expect::default());
    assert_named(&findings, SBOM, "is missing");
    assert_named(&findings, FUNCTIONS, "is missing");
    // Left out on purpose, the function app is not missing.
    assert!(!check(dir.path(), Expect { no_functions: true, ..Expect::default() }).iter().any(|f| f.file == FUNCTIONS));
}

#[test]
fn an_sbom_of_another_component_or_version_is_named() {
    let dir = package();
    std::fs::write(dir.path().join(SBOM), sbom("vibedata-emulator", "9.9.9")).unwrap();
    let findings = check(dir.path(), Expect::default());
    assert_named(&findings, SBOM, "describes \"vibedata-emulator\"");
    assert_named(&findings, SBOM, "is for version \"9.9.9\"");
}

#[test]
fn a_compiled_template_must_carry_the_digest() {
    let dir = package();
    std::fs::write(dir.path().join(MAIN_TEMPLATE), r#"{"resources": {}}"#).unwrap();
    let t = Template::load(&common::infra_root()).unwrap();
    let findings = package::check(dir.path(), &t, Expect::default());
    assert_named(&findings, MAIN_TEMPLATE, "does not carry the binary's SHA-256");
}

#[test]
fn stray_files_and_an_edited_ui_definition_are_named() {
    let dir = package();
    std::fs::write(dir.path().join("artifacts/notes.txt"), "x").unwrap();
    std::fs::write(dir.path().join("createUiDefinition.json"), "{}").unwrap();
    let findings = check(dir.path(), Expect::default());
    assert_named(&findings, "artifacts/notes.txt", "is not part of the package layout");
    assert_named(&findings, "createUiDefinition.json", "differs from infra/createUiDefinition.json");
}

#[test]
fn a_binary_that_does_not_start_is_named() {
    let dir = package();
    std::fs::write(dir.path().join(BINARY), "#!/bin/sh\necho 'no such loader' >&2\nexit 127\n").unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(dir.path().join(BINARY)).unwrap()))
    };
    std::fs::write(dir.path().join(BINARY_SHA256), format!("{digest}  vibedata-bootstrap\n")).unwrap();
    assert_named(&check(dir.path(), Expect::default()), BINARY, "--version exited with");
}
