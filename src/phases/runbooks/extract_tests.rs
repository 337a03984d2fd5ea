use super::super::fixtures::{bad_cases, layer, powershell, Raw};
use super::*;
use crate::release::ArtifactRef;

const LIMIT: u64 = 4096;

fn entry(name: &str, runbook_type: &str) -> RunbookEntry {
    RunbookEntry {
        name: name.into(),
        runbook_type: runbook_type.into(),
        runtime_environment: format!("{runbook_type}-env"),
        artifact: ArtifactRef { repository: "vibedata/runbooks/x".into(), digest: crate::oci::sha256_digest(b"x") },
    }
}

#[test]
fn a_good_powershell_runbook() {
    let text = "\u{feff}param([string]$Vault)\nWrite-Output \"rotating $Vault\"\n";
    let s = extract(&powershell("Rotate-Keys", text), &entry("Rotate-Keys", "PowerShell"), LIMIT).unwrap();
    assert_eq!(s.file_name, "Rotate-Keys.ps1");
    assert_eq!(s.text, text, "the bytes are kept as they are, BOM included");
    assert_eq!(s.digest, crate::oci::sha256_digest(text.as_bytes()));
}

#[test]
fn a_good_python_runbook_and_a_leading_dot_slash() {
    let text = "import sys\nprint('purge', sys.argv)\n";
    let l = layer(&[Raw::file("./Purge_Staging.py", text.as_bytes())]);
    let s = extract(&l, &entry("Purge_Staging", "Python"), LIMIT).unwrap();
    assert_eq!((s.file_name.as_str(), s.text.as_str()), ("Purge_Staging.py", text));
}

#[test]
fn a_script_of_exactly_the_limit_is_accepted() {
    let text = "#".repeat(LIMIT as usize);
    assert!(extract(&powershell("Edge", &text), &entry("Edge", "PowerShell"), LIMIT).is_ok());
}

#[test]
fn every_bad_layer_is_refused_with_its_reason() {
    for case in bad_cases("Bad-One", LIMIT) {
        let err = extract(&case.layer, &entry("Bad-One", "PowerShell"), LIMIT).expect_err(case.id);
        assert!(err.to_string().contains(case.expect), "{}: {err}", case.id);
    }
}

#[test]
fn the_variants_are_the_specific_ones() {
    let e = entry("Bad-One", "PowerShell");
    let by_id = |id: &str| {
        let case = bad_cases("Bad-One", LIMIT).into_iter().find(|c| c.id == id).unwrap();
        extract(&case.layer, &e, LIMIT).unwrap_err()
    };
    assert!(matches!(by_id("traversal"), ExtractError::PathTraversal { .. }));
    assert!(matches!(by_id("absolute"), ExtractError::AbsolutePath { .. }));
    assert!(matches!(by_id("symlink"), ExtractError::Link { target, .. } if target == "/etc/passwd"));
    assert!(matches!(by_id("hardlink"), ExtractError::Link { .. }));
    assert!(matches!(by_id("char-device"), ExtractError::Device { .. }));
    assert!(matches!(by_id("entry-oversize"), ExtractError::EntryTooLarge { .. }));
    assert!(matches!(by_id("total-oversize"), ExtractError::TotalTooLarge { .. }));
    assert!(matches!(by_id("not-utf8"), ExtractError::NotUtf8 { offset: 14, .. }));
    assert!(matches!(by_id("two-files"), ExtractError::ExtraEntry { .. }));
    assert!(matches!(by_id("wrong-extension"), ExtractError::NameMismatch { .. }));
    assert!(matches!(by_id("empty"), ExtractError::Empty { .. }));
    assert!(matches!(by_id("not-gzip"), ExtractError::Corrupt(_)));
}

#[test]
fn windows_style_paths_are_refused_too() {
    let e = entry("W", "PowerShell");
    for (path, want) in [("..\\W.ps1", "path traversal"), ("C:\\W.ps1", "absolute path"), ("\\W.ps1", "absolute path")]
    {
        let err = extract(&layer(&[Raw::file(path, b"x")]), &e, LIMIT).unwrap_err().to_string();
        assert!(err.contains(want), "{path}: {err}");
    }
}

#[test]
fn an_unknown_runbook_type_is_refused_before_reading() {
    assert!(matches!(extract(b"", &entry("G", "Graph"), LIMIT), Err(ExtractError::UnknownType(_))));
}

#[test]
fn bounded_reader_stops_exactly_at_the_limit() {
    let mut ok = Bounded { inner: &b"abcd"[..], left: 4 };
    let mut out = Vec::new();
    assert_eq!(ok.read_to_end(&mut out).unwrap(), 4);
    let mut over = Bounded { inner: &b"abcde"[..], left: 4 };
    let err = over.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains(OVER_LIMIT));
}
