//! Copy an image or an image index from one registry to another, keeping its digest.
//!
//! The order is what makes a crash harmless: the source reference is pinned to a digest first;
//! blobs go before the manifests that name them, child manifests before their index, and the tag
//! last. So a tag never points at a manifest whose blobs are missing, and a rerun finds
//! everything already there (one HEAD per manifest, nothing else).
//!
//! Manifests are copied byte for byte (never re-serialized), so the target digest is the source
//! digest; the copy checks that at the end.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::client::{Manifest, Registry};
use super::reference::{valid_repository, valid_tag, Target};
use super::stream::Verify;
use super::{transport, Descriptor, OciError, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

/// Nesting allowed below a root index (an index of indexes is legal, rare, and finite).
const MAX_DEPTH: usize = 4;

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Blobs copied at once (default 4).
    pub jobs: usize,
    /// `(repository, digest)` pairs of the target registry known to hold a blob: mount sources
    /// beyond what this process has pushed or seen itself.
    pub mount_hints: Vec<(String, String)>,
    /// Live counters for a progress line.
    pub progress: Option<Arc<Progress>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { jobs: 4, mount_hints: Vec::new(), progress: None }
    }
}

/// Progress of a copy, readable while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub blobs_total: AtomicUsize,
    pub blobs_done: AtomicUsize,
    /// Bytes streamed so far, updated while streaming (a retried blob counts again).
    pub bytes: Arc<AtomicU64>,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyReport {
    /// The source digest, which the target now has (under `dst_tag` too, when given).
    pub digest: String,
    /// Manifests in the graph: 1 for an image, 1 + children for an index.
    pub manifests: usize,
    /// Manifests written to the target (0 when it had them all).
    pub manifests_pushed: usize,
    pub blobs_copied: usize,
    pub blobs_mounted: usize,
    /// Blobs the target already had (by HEAD, or under a manifest it already had).
    pub blobs_skipped: usize,
    pub bytes_copied: u64,
    /// Whether the tag was created or moved.
    pub tag_updated: bool,
}

/// Copies `src_repo` at `src_ref` (tag or digest) to `dst_repo` by digest, then tags it `dst_tag`.
pub async fn copy(
    src: &Registry,
    src_repo: &str,
    src_ref: &str,
    dst: &Registry,
    dst_repo: &str,
    dst_tag: Option<&str>,
    opts: &CopyOptions,
) -> Result<CopyReport, OciError> {
    for repo in [src_repo, dst_repo] {
        if !valid_repository(repo) {
            return Err(OciError::BadReference { reference: repo.into(), reason: "not a repository name".into() });
        }
    }
    if let Some(t) = dst_tag.filter(|t| !valid_tag(t)) {
        return Err(OciError::BadReference { reference: t.into(), reason: "not a tag".into() });
    }
    let target = Target::parse(src_ref).ok_or_else(|| OciError::BadReference {
        reference: src_ref.into(),
        reason: "neither a tag nor a sha256 digest".into(),
    })?;
    for (repo, digest) in &opts.mount_hints {
        dst.note_blob(repo, digest);
    }

    // 1. Pin the source: from here on everything is by digest.
    let digest = match target {
        Target::Digest(d) => d,
        Target::Tag(t) => src
            .manifest_digest(src_repo, &t)
            .await?
            .ok_or_else(|| OciError::NotFound { registry: src.host().into(), resource: format!("{src_repo}:{t}") })?,
    };

    // A pull,push token up front: it serves the HEADs as well, so a copy that pushes needs one
    // registry token instead of two.
    dst.authorize_push(dst_repo).await?;

    // 2. The graph, children before parents, every manifest verified against its digest.
    let nodes = walk(src, src_repo, &digest).await?;
    let mut report = CopyReport { digest: digest.clone(), manifests: nodes.len(), ..Default::default() };

    // 3. What the target lacks. A manifest the target has vouches for its blobs (registries
    //    refuse a manifest whose blobs are missing), so those are not even looked at.
    // Futures are collected before streaming: a lazy `map` over borrowed items trips rustc's
    // higher-ranked lifetime check when a caller needs this future to be `Send`.
    let lookups: Vec<_> = nodes.iter().map(|n| dst.manifest_digest(dst_repo, &n.manifest.digest)).collect();
    let present: Vec<bool> =
        futures::stream::iter(lookups).buffered(opts.jobs.max(1)).map_ok(|d| d.is_some()).try_collect().await?;
    let mut needed: BTreeMap<String, Descriptor> = BTreeMap::new();
    let mut vouched: HashSet<String> = HashSet::new();
    for (node, present) in nodes.iter().zip(&present) {
        for b in &node.blobs {
            if *present {
                vouched.insert(b.digest.clone());
            } else {
                needed.entry(b.digest.clone()).or_insert_with(|| b.clone());
            }
        }
    }
    report.blobs_skipped = vouched.iter().filter(|d| !needed.contains_key(*d)).count();

    // 4. Blobs, in parallel.
    let progress = opts.progress.clone().unwrap_or_default();
    progress.blobs_total.fetch_add(needed.len(), Ordering::Relaxed);
    let copies: Vec<_> = needed
        .values()
        .map(|b| {
            let progress = progress.clone();
            async move {
                let outcome = copy_blob(src, src_repo, dst, dst_repo, b, &progress).await?;
                progress.blobs_done.fetch_add(1, Ordering::Relaxed);
                Ok::<_, OciError>((outcome, b.size))
            }
        })
        .collect();
    let outcomes: Vec<(Outcome, u64)> =
        futures::stream::iter(copies).buffer_unordered(opts.jobs.max(1)).try_collect().await?;
    for (outcome, size) in outcomes {
        match outcome {
            Outcome::Skipped => report.blobs_skipped += 1,
            Outcome::Mounted => report.blobs_mounted += 1,
            Outcome::Copied => {
                report.blobs_copied += 1;
                report.bytes_copied += size;
            }
        }
    }

    // 5. Manifests after their blobs, children before their index; by digest, untagged.
    for (node, present) in nodes.iter().zip(&present) {
        if !present {
            let m = &node.manifest;
            dst.put_manifest(dst_repo, &m.digest, m.bytes.clone(), &m.media_type).await?;
            report.manifests_pushed += 1;
        }
    }

    // 6. The tag, last.
    let root = &nodes.last().expect("walk returns the root").manifest;
    if let Some(tag) = dst_tag {
        if dst.manifest_digest(dst_repo, tag).await?.as_deref() != Some(digest.as_str()) {
            dst.put_manifest(dst_repo, tag, root.bytes.clone(), &root.media_type).await?;
            report.tag_updated = true;
        }
    }

    // 7. Verify what a reader of the target now gets.
    let reference = dst_tag.unwrap_or(&digest);
    let actual = dst.manifest_digest(dst_repo, reference).await?.unwrap_or_else(|| "nothing".into());
    if actual != digest {
        return Err(OciError::VerifyFailed {
            registry: dst.host().into(),
            repository: dst_repo.into(),
            reference: reference.into(),
            expected: digest,
            actual,
        });
    }
    Ok(report)
}

enum Outcome {
    Skipped,
    Mounted,
    Copied,
}

/// HEAD at the target → mount from a repository known to have it → stream GET→PUT. One blob
/// digest is handled by one task at a time per target registry, so concurrent copies of images
/// sharing a layer upload it once and mount it everywhere else.
async fn copy_blob(
    src: &Registry,
    src_repo: &str,
    dst: &Registry,
    dst_repo: &str,
    blob: &Descriptor,
    progress: &Progress,
) -> Result<Outcome, OciError> {
    let lock = dst.blob_locks.lock().expect("blob locks").entry(blob.digest.clone()).or_default().clone();
    let _held = lock.lock().await;
    if dst.blob_exists(dst_repo, &blob.digest).await? {
        return Ok(Outcome::Skipped);
    }
    for from in dst.blob_sources(&blob.digest, dst_repo) {
        if dst.mount_blob(dst_repo, &from, &blob.digest).await? {
            tracing::debug!(digest = %blob.digest, from = %from, to = %dst_repo, "mounted");
            return Ok(Outcome::Mounted);
        }
    }
    let resource = format!("{src_repo}@{}", blob.digest);
    let uploaded = transport::retry(dst.policy(), &resource, dst.permission_for_push(dst_repo), || async {
        let stream = src.blob_stream(src_repo, &blob.digest).await?;
        let verified = Verify::new(Box::pin(stream), &blob.digest, progress.bytes.clone());
        let result = dst.upload_blob(dst_repo, &blob.digest, verified).await;
        // A mismatch is the source's fault, whichever side noticed it: name the source.
        result.map_err(|e| match e {
            OciError::DigestMismatch { expected, actual, .. } => {
                OciError::DigestMismatch { repository: format!("{}/{src_repo}", src.host()), expected, actual }
            }
            e => e,
        })
    })
    .await;
    match uploaded {
        Ok(()) => Ok(Outcome::Copied),
        // Another process may have committed the same blob while we streamed it, and a registry
        // can refuse the second commit (distribution answers DIGEST_INVALID). Content is addressed
        // by digest: if the target has it now, the copy's goal is met.
        Err(e @ OciError::Registry { .. }) => match dst.blob_exists(dst_repo, &blob.digest).await {
            Ok(true) => Ok(Outcome::Skipped),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// One manifest of the graph and the blobs it names directly.
struct Node {
    manifest: Manifest,
    blobs: Vec<Descriptor>,
}

/// Fetches the manifest `digest` and, for an index, every child (all platforms), returning them
/// children first, root last.
async fn walk(src: &Registry, repo: &str, digest: &str) -> Result<Vec<Node>, OciError> {
    let mut out = Vec::new();
    // (digest, depth, children already expanded)
    let mut stack = vec![(digest.to_owned(), 0usize)];
    let mut pending: Vec<(Manifest, Vec<Descriptor>, usize)> = Vec::new();
    let mut seen = HashSet::new();
    while let Some((d, depth)) = stack.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        let m = src.manifest(repo, &d).await?;
        let parsed = parse(&m.bytes, &m.media_type, &format!("{repo}@{d}"))?;
        match parsed {
            Parsed::Image { blobs } => out.push(Node { manifest: m, blobs }),
            Parsed::Index { children } => {
                if depth >= MAX_DEPTH {
                    return Err(OciError::Manifest {
                        resource: format!("{repo}@{d}"),
                        detail: "indexes nested too deep".into(),
                    });
                }
                stack.extend(children.iter().map(|c| (c.digest.clone(), depth + 1)));
                pending.push((m, Vec::new(), depth));
            }
        }
    }
    // Indexes after every manifest, deepest first, so a child index precedes its parent.
    pending.sort_by_key(|(_, _, depth)| std::cmp::Reverse(*depth));
    out.extend(pending.into_iter().map(|(manifest, blobs, _)| Node { manifest, blobs }));
    Ok(out)
}

enum Parsed {
    Image { blobs: Vec<Descriptor> },
    Index { children: Vec<Descriptor> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

fn parse(bytes: &[u8], media_type: &str, resource: &str) -> Result<Parsed, OciError> {
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| OciError::Manifest { resource: resource.into(), detail: e.to_string() })?;
    let bad = |detail: String| OciError::Manifest { resource: resource.into(), detail };
    for d in raw.config.iter().chain(&raw.layers).chain(raw.manifests.iter().flatten()) {
        if !super::reference::valid_digest(&d.digest) {
            return Err(bad(format!("descriptor digest {:?} is not sha256", d.digest)));
        }
    }
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(Parsed::Index { children: raw.manifests.unwrap_or_default() }),
        _ => {
            let config = raw.config.ok_or_else(|| bad("an image manifest without a config".into()))?;
            Ok(Parsed::Image { blobs: std::iter::once(config).chain(raw.layers).collect() })
        }
    }
}

/// The media type of a manifest from its own `mediaType`, or, where OCI leaves it out, from its
/// shape. Docker schema 1 and unknown types are refused: we could not copy them faithfully.
pub(crate) fn media_type_of(bytes: &[u8], resource: &str) -> Result<String, OciError> {
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| OciError::Manifest { resource: resource.into(), detail: e.to_string() })?;
    if raw.schema_version != Some(2) {
        return Err(OciError::Manifest {
            resource: resource.into(),
            detail: format!("schemaVersion {:?}; only 2 is supported", raw.schema_version),
        });
    }
    match raw.media_type.as_deref() {
        Some(t @ (OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST)) => Ok(t.to_owned()),
        Some(other) => Err(OciError::Manifest { resource: resource.into(), detail: format!("media type {other:?}") }),
        None if raw.manifests.is_some() => Ok(OCI_INDEX.to_owned()),
        None => Ok(OCI_MANIFEST.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_manifest_or_its_shape() {
        let d = format!("sha256:{}", "a".repeat(64));
        let image =
            format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{d}","size":2}},"layers":[]}}"#);
        assert_eq!(media_type_of(image.as_bytes(), "r").unwrap(), OCI_MANIFEST);
        let index =
            format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":2}}]}}"#);
        assert_eq!(media_type_of(index.as_bytes(), "r").unwrap(), OCI_INDEX);
        let docker = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[]}}"#);
        assert_eq!(media_type_of(docker.as_bytes(), "r").unwrap(), DOCKER_MANIFEST_LIST);
        assert!(media_type_of(br#"{"schemaVersion":1,"fsLayers":[]}"#, "r").is_err());
        assert!(media_type_of(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, "r").is_err());
        let Parsed::Image { blobs } = parse(image.as_bytes(), OCI_MANIFEST, "r").unwrap() else { panic!() };
        assert_eq!(blobs.len(), 1);
        let Parsed::Index { children } = parse(index.as_bytes(), OCI_INDEX, "r").unwrap() else { panic!() };
        assert_eq!(children[0].digest, d);
        let evil = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../x","size":2},"layers":[]}"#;
        assert!(parse(evil.as_bytes(), OCI_MANIFEST, "r").is_err());
    }
}

/// `copy` is awaited inside `async_trait` phases, in streams of their own: its future must be
/// `Send` for any lifetime (this only has to compile).
#[cfg(test)]
#[allow(dead_code)]
mod send_check {
    use super::*;

    #[async_trait::async_trait]
    trait Phase {
        async fn run(&self, src: &Registry, dst: &Registry) -> Result<Vec<CopyReport>, OciError>;
    }

    struct P;

    #[async_trait::async_trait]
    impl Phase for P {
        async fn run(&self, src: &Registry, dst: &Registry) -> Result<Vec<CopyReport>, OciError> {
            let repos = ["a".to_owned(), "b".to_owned()];
            let opts = CopyOptions::default();
            // Collected first: a lazy `map` over borrowed items inside a `Send` future trips rustc
            // ("FnOnce is not general enough"), whatever the mapped future is.
            let copies: Vec<_> = repos.iter().map(|r| copy(src, r, "t", dst, r, Some("t"), &opts)).collect();
            futures::stream::iter(copies).buffer_unordered(2).try_collect().await
        }
    }
}
