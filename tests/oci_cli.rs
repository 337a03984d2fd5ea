//! The `copy` subcommand as a user runs it: exit codes, the JSON report on stdout, progress and
//! errors on stderr, credentials only from the environment.

mod oci_support;

use std::process::Command;

use oci_support::{run_prefix, runtime, stack, RELEASE};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
}

#[test]
fn bad_references_exit_2_before_anything_is_sent() {
    for (src, dst) in [
        ("vibedata/api:1", "127.0.0.1:1/a:1"),
        ("127.0.0.1:1/vibedata/api", "127.0.0.1:1/a"),
        ("127.0.0.1:1/Vibedata/api:1", "127.0.0.1:1/a"),
        ("127.0.0.1:1/a:1", "127.0.0.1:1/b@sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let out = bin().args(["copy", src, dst]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{src} {dst}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    let out = bin()
        .args(["copy", "127.0.0.1:1/a:1", "127.0.0.1:1/b", "--src-creds-env", "VIBEDATA_TEST_NO_SUCH_VAR"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VIBEDATA_TEST_NO_SUCH_VAR"));
}

#[test]
fn copies_to_the_customer_as_the_managed_identity_and_reports_json() {
    let Some(stack) = stack() else { return };
    let src = format!("{}/vibedata/worker:{RELEASE}", stack.get("VIBEDATA_PUBLISHER_REGISTRY"));
    let dst = format!("{}/{}/cli/worker", stack.get("VIBEDATA_ACR_LOGIN_SERVER"), run_prefix());
    let creds =
        format!("{}:{}", stack.get("VIBEDATA_STACK_PUBLISHER_USER"), stack.get("VIBEDATA_STACK_PUBLISHER_PASSWORD"));
    let run = || {
        bin()
            .args(["copy", &src, &dst, "--src-creds-env", "BENCH_TEST_PUB", "--dst-acr", "--jobs", "2"])
            .envs(&stack.env)
            .env("BENCH_TEST_PUB", &creds)
            .output()
            .unwrap()
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("blobs, ") && stderr.contains(" MiB"), "a progress line: {stderr}");
    assert!(!stderr.contains(stack.get("VIBEDATA_STACK_PUBLISHER_PASSWORD")), "the password never shows");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["target"], format!("{dst}:{RELEASE}"));
    assert!(doc["report"]["blobsCopied"].as_u64().unwrap() > 0);
    assert_eq!(doc["report"]["tagUpdated"], true);

    let again = run();
    assert_eq!(again.status.code(), Some(0));
    let doc2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc2["report"]["digest"], doc["report"]["digest"]);
    assert_eq!(doc2["report"]["blobsCopied"], 0);
    assert_eq!(doc2["report"]["blobsSkipped"], doc["report"]["blobsCopied"]);

    // A missing source fails with exit 1 and one line naming it.
    let missing = bin()
        .args([
            "copy",
            &format!("{}/vibedata/nope:1", stack.get("VIBEDATA_PUBLISHER_REGISTRY")),
            &dst,
            "--src-creds-env",
            "BENCH_TEST_PUB",
            "--dst-acr",
        ])
        .envs(&stack.env)
        .env("BENCH_TEST_PUB", &creds)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).lines().last().unwrap().contains("vibedata/nope:1"));
}

#[test]
fn copy_release_copies_everything_the_manifest_pins_in_one_process_and_a_rerun_copies_nothing() {
    let Some(stack) = stack() else { return };
    let publisher = stack.get("VIBEDATA_PUBLISHER_REGISTRY");
    let src = format!("{publisher}/vibedata/release-manifest:{RELEASE}");
    let prefix = format!("{}/release", run_prefix());
    let dst = format!("{}/{prefix}", stack.get("VIBEDATA_ACR_LOGIN_SERVER"));
    let creds =
        format!("{}:{}", stack.get("VIBEDATA_STACK_PUBLISHER_USER"), stack.get("VIBEDATA_STACK_PUBLISHER_PASSWORD"));
    let run = || {
        bin()
            .args(["copy", "--release", &src, &dst, "--src-creds-env", "BENCH_TEST_PUB", "--dst-acr", "--images", "3"])
            .envs(&stack.env)
            .env("BENCH_TEST_PUB", &creds)
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["release"], RELEASE);
    let items = doc["items"].as_array().unwrap();
    assert!(items.len() >= 20, "images, runbooks, migrations, chart, AI: {}", items.len());
    let sum = |v: &serde_json::Value, k: &str| {
        v["items"].as_array().unwrap().iter().map(|i| i["report"][k].as_u64().unwrap()).sum::<u64>()
    };
    assert!(sum(&doc, "blobsMounted") > 0, "layers shared between images are mounted, not uploaded again");

    // Every pinned target is in the customer registry at its pinned digest, and the manifest too.
    let customer = stack.customer();
    runtime().block_on(async {
        for item in items {
            let target = item["target"].as_str().unwrap();
            let (repo, tag) = target.rsplit_once(':').unwrap();
            assert_eq!(
                customer.manifest_digest(repo, tag).await.unwrap().as_deref(),
                item["digest"].as_str(),
                "{target}"
            );
        }
        let manifest = customer.manifest_digest(&format!("{prefix}/vibedata/release-manifest"), RELEASE).await.unwrap();
        assert_eq!(manifest.as_deref(), doc["manifestDigest"].as_str());
    });

    let again = run();
    assert_eq!(again.status.code(), Some(0));
    let doc2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(sum(&doc2, "blobsCopied") + sum(&doc2, "blobsMounted"), 0, "a rerun moves no blob");

    // A DST with a tag is not a registry: exit 2, nothing sent.
    let bad = bin().args(["copy", "--release", &src, &format!("{dst}:1")]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("prefix must be a repository path"));
}
