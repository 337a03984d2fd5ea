//! The OCI Image Layout in artifact storage, against Azurite over HTTPS with the managed
//! identity's bearer token.

mod oci_support;

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_support::{run_prefix, stack};
use vibedata_bootstrap::azure::blob::Container;
use vibedata_bootstrap::azure::retry::RetryPolicy;
use vibedata_bootstrap::oci::{sha256_digest, Descriptor, Layout, OciError};

#[tokio::test(flavor = "multi_thread")]
async fn the_layout_writes_only_what_changed_and_verifies_blobs() {
    let Some(stack) = stack() else { return };
    let url = url::Url::parse(stack.get("VIBEDATA_STORAGE_BLOB_URL")).unwrap();
    let container =
        Container::new(&url, &format!("oci-{}", run_prefix()), &stack.http(), &RetryPolicy::default(), &stack.tokens())
            .unwrap();
    container.ensure().await.unwrap();
    let layout = Layout::new(container.clone());

    assert!(layout.init().await.unwrap(), "first init writes oci-layout");
    assert!(!layout.init().await.unwrap(), "a rerun writes nothing");

    let blob = Bytes::from_static(b"runbook tarball bytes");
    let digest = sha256_digest(&blob);
    assert!(layout.put_blob(&digest, blob.clone()).await.unwrap());
    assert!(!layout.put_blob(&digest, blob.clone()).await.unwrap(), "an existing blob is skipped");
    let wrong = layout.put_blob(&digest, Bytes::from_static(b"other")).await.unwrap_err();
    assert!(matches!(wrong, OciError::DigestMismatch { .. }), "{wrong}");
    assert_eq!(layout.get_blob(&digest).await.unwrap().as_deref(), Some(blob.as_ref()));
    assert_eq!(layout.get_blob(&sha256_digest(b"absent")).await.unwrap(), None);

    let desc = |digest: &str| Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: digest.into(),
        size: 21,
        artifact_type: Some("application/vnd.vibedata.runbook.v1".into()),
        annotations: BTreeMap::new(),
    };
    assert!(layout.add_ref("2026.11.0/runbook/rotate-keys", &desc(&digest)).await.unwrap());
    assert!(layout.add_ref("2026.11.0/migrations/db", &desc(&digest)).await.unwrap());
    assert!(
        !layout.add_ref("2026.11.0/runbook/rotate-keys", &desc(&digest)).await.unwrap(),
        "same ref, same content: no write"
    );
    let other = sha256_digest(b"x");
    assert!(layout.add_ref("2026.11.0/runbook/rotate-keys", &desc(&other)).await.unwrap(), "a moved ref is written");
    let resolved = layout.resolve("2026.11.0/runbook/rotate-keys").await.unwrap().unwrap();
    assert_eq!(resolved.digest, other);
    assert_eq!(resolved.annotations["org.opencontainers.image.ref.name"], "2026.11.0/runbook/rotate-keys");
    assert_eq!(layout.resolve("2026.11.0/runbook/none").await.unwrap(), None);
    let index: serde_json::Value =
        serde_json::from_slice(&container.get("oci/index.json").await.unwrap().unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "replaced, not appended: {index}");
    assert_eq!(index["schemaVersion"], 2);
    assert!(layout.add_ref("../x", &desc(&digest)).await.is_err());

    // A blob changed behind our back is refused on the way out.
    let path = format!("oci/blobs/sha256/{}", &digest[7..]);
    container.put(&path, Bytes::from_static(b"tampered"), "application/octet-stream", None).await.unwrap();
    assert!(matches!(layout.get_blob(&digest).await.unwrap_err(), OciError::DigestMismatch { .. }));
}
