//! The release manifest (DESIGN §4): parsing and validation, with no I/O.
//!
//! Everything after the manifest is imported by the digest it pins, so this is the one document
//! whose mistakes would spread. It is validated whole before anything else is imported, and every
//! problem is bad input (exit 2).

use serde::{Deserialize, Serialize};

use crate::names;
use crate::oci::reference::{valid_digest, valid_repository, valid_tag};

/// The artifactType and layer media type of a release manifest.
pub const MANIFEST_ARTIFACT_TYPE: &str = "application/vnd.vibedata.release.manifest.v1+json";
pub const RUNBOOK_ARTIFACT_TYPE: &str = "application/vnd.vibedata.runbook.v1";
pub const RUNBOOK_LAYER_TYPE: &str = "application/vnd.vibedata.runbook.layer.v1.tar+gzip";
pub const MIGRATIONS_ARTIFACT_TYPE: &str = "application/vnd.vibedata.migrations.v1";
pub const MIGRATIONS_LAYER_TYPE: &str = "application/vnd.vibedata.migrations.layer.v1.tar+gzip";
/// A Helm chart as `helm push` stores it: config is Chart.yaml as JSON, one layer the .tgz.
pub const HELM_CONFIG_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART_LAYER_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The AI definitions: a gzip tar of JSON files (Search indexes, project index assets, agents).
pub const AI_ARTIFACT_TYPE: &str = "application/vnd.vibedata.ai.v1";
pub const AI_LAYER_TYPE: &str = "application/vnd.vibedata.ai.layer.v1.tar+gzip";

/// A manifest larger than this is refused before it is parsed: a real one is a few KiB.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// The schema versions this binary understands. Version 2 adds the optional `charts` and `ai`.
pub const SCHEMA_VERSIONS: &[u32] = &[1, 2];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseManifest {
    pub schema_version: u32,
    pub release: String,
    pub images: Vec<ImageEntry>,
    #[serde(default)]
    pub runbooks: Vec<RunbookEntry>,
    #[serde(default)]
    pub migrations: Option<MigrationsEntry>,
    /// Helm charts to install (schemaVersion 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartEntry>,
    /// The AI definitions (schemaVersion 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartEntry {
    pub name: String,
    /// The chart's semver; also its tag in the registry, as `helm push` tags it.
    pub version: String,
    /// The Kubernetes namespace it is installed into.
    pub namespace: String,
    pub artifact: ArtifactRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiEntry {
    pub artifact: ArtifactRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageEntry {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunbookEntry {
    pub name: String,
    pub runbook_type: String,
    pub runtime_environment: String,
    pub artifact: ArtifactRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MigrationsEntry {
    pub artifact: ArtifactRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactRef {
    pub repository: String,
    pub digest: String,
}

/// What the manifest asks to be imported: one entry per target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub kind: Kind,
    /// The image repository, or the runbook name, or `migrations`.
    pub name: String,
    pub repository: String,
    pub digest: String,
    /// The target tag: images keep theirs, artifacts are tagged with the release.
    pub tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Image,
    Runbook,
    Migrations,
    Chart,
    Ai,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Image, Kind::Runbook, Kind::Migrations, Kind::Chart, Kind::Ai];

    /// For progress lines: "imported 3/12 images".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Image => "images",
            Kind::Runbook => "runbooks",
            Kind::Migrations => "migration artifacts",
            Kind::Chart => "charts",
            Kind::Ai => "AI definition artifacts",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Runbook => "runbook",
            Kind::Migrations => "migrations",
            Kind::Chart => "chart",
            Kind::Ai => "ai",
        }
    }
}

/// Why a manifest was refused. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is {size} bytes, over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("the manifest is not valid JSON: {0}")]
    Malformed(String),
    /// Valid JSON whose fields do not have the schema's shape (a missing field, a wrong type,
    /// an unknown key).
    #[error("the manifest does not match the release manifest schema: {0}")]
    Shape(String),
    #[error("schemaVersion {0} is not supported by this binary (supported: 1, 2)")]
    UnknownSchema(u64),
    /// Two entries would write the same target, or say the same thing twice.
    #[error("{first} and {second} both {what}")]
    Duplicate { first: String, second: String, what: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field} names registry {host}; every entry must come from the publisher registry {publisher}")]
    ForeignRegistry { field: String, host: String, publisher: String },
    #[error("the template expects image {0}, which the manifest does not list")]
    MissingImage(String),
}

/// Parses and validates `bytes`. `publisher` is the configured publisher login server; entries
/// may name it explicitly or give a repository relative to it, nothing else. `expected_images`
/// is the list the template hard-codes.
pub fn parse(bytes: &[u8], publisher: &str, expected_images: &[String]) -> Result<ReleaseManifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge { size: bytes.len(), max: MAX_MANIFEST_BYTES });
    }
    // Read the version first, so a v2 manifest is "unknown version", not a confusing field error.
    let probe: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    match probe.get("schemaVersion") {
        None => return Err(invalid("schemaVersion", "is missing")),
        Some(v) => match v.as_u64() {
            Some(n) if SCHEMA_VERSIONS.iter().any(|s| u64::from(*s) == n) => {}
            Some(n) if n > u64::from(u32::MAX) => {
                return Err(invalid("schemaVersion", &format!("{n} is out of range (supported: 1, 2)")))
            }
            Some(n) => return Err(ManifestError::UnknownSchema(n)),
            None => return Err(invalid("schemaVersion", &format!("{v} is not a whole number"))),
        },
    }
    let mut m: ReleaseManifest = serde_json::from_value(probe).map_err(|e| ManifestError::Shape(e.to_string()))?;

    if !valid_tag(&m.release) {
        return Err(invalid("release", &format!("{:?} is not usable as a tag", m.release)));
    }
    if m.images.is_empty() {
        return Err(invalid("images", "is empty"));
    }
    for (i, image) in m.images.iter_mut().enumerate() {
        let field = format!("images[{i}]");
        image.repository = relative(&image.repository, publisher, &format!("{field}.repository"))?;
        check_digest(&image.digest, &format!("{field}.digest"))?;
        if !valid_tag(&image.tag) {
            return Err(invalid(&format!("{field}.tag"), &format!("{:?} is not a valid tag", image.tag)));
        }
    }
    check_runbooks(&m.runbooks)?;
    for (i, rb) in m.runbooks.iter_mut().enumerate() {
        let field = format!("runbooks[{i}]");
        rb.artifact.repository = relative(&rb.artifact.repository, publisher, &format!("{field}.artifact.repository"))?;
        check_digest(&rb.artifact.digest, &format!("{field}.artifact.digest"))?;
    }
    if let Some(mig) = &mut m.migrations {
        mig.artifact.repository = relative(&mig.artifact.repository, publisher, "migrations.artifact.repository")?;
        check_digest(&mig.artifact.digest, "migrations.artifact.digest")?;
    }
    if m.schema_version < 2 && (!m.charts.is_empty() || m.ai.is_some()) {
        let field = if m.charts.is_empty() { "ai" } else { "charts" };
        return Err(invalid(field, "needs schemaVersion 2"));
    }
    for (i, c) in m.charts.iter_mut().enumerate() {
        let field = format!("charts[{i}]");
        if let Err(e) = names::HELM_CHART.check(&c.name) {
            return Err(invalid(&format!("{field}.name"), &e.to_string()));
        }
        // The version is the chart's tag, and Helm's OCI tags are its semver.
        if !valid_tag(&c.version) || !c.version.starts_with(|ch: char| ch.is_ascii_digit()) {
            return Err(invalid(
                &format!("{field}.version"),
                &format!("{:?} is not a chart version usable as a tag", c.version),
            ));
        }
        if let Err(e) = names::K8S_NAMESPACE.check(&c.namespace) {
            return Err(invalid(&format!("{field}.namespace"), &e.to_string()));
        }
        c.artifact.repository = relative(&c.artifact.repository, publisher, &format!("{field}.artifact.repository"))?;
        check_digest(&c.artifact.digest, &format!("{field}.artifact.digest"))?;
    }
    if let Some(first) = m
        .charts
        .iter()
        .enumerate()
        .find_map(|(j, c)| m.charts[..j].iter().position(|a| a.name == c.name).map(|i| (i, j)))
    {
        return Err(ManifestError::Duplicate {
            first: format!("charts[{}].name", first.0),
            second: format!("charts[{}].name", first.1),
            what: format!("name chart {:?}", m.charts[first.1].name),
        });
    }
    if let Some(ai) = &mut m.ai {
        ai.artifact.repository = relative(&ai.artifact.repository, publisher, "ai.artifact.repository")?;
        check_digest(&ai.artifact.digest, "ai.artifact.digest")?;
    }
    check_unique(&m)?;
    for expected in expected_images {
        if !m.images.iter().any(|i| &i.repository == expected) {
            return Err(ManifestError::MissingImage(expected.clone()));
        }
    }
    Ok(m)
}

impl ReleaseManifest {
    /// Everything to import, in a stable order.
    pub fn pinned(&self) -> Vec<Pinned> {
        let mut out: Vec<Pinned> = self
            .images
            .iter()
            .map(|i| Pinned {
                kind: Kind::Image,
                name: i.repository.clone(),
                repository: i.repository.clone(),
                digest: i.digest.clone(),
                tag: i.tag.clone(),
            })
            .collect();
        out.extend(self.runbooks.iter().map(|r| Pinned {
            kind: Kind::Runbook,
            name: r.name.clone(),
            repository: r.artifact.repository.clone(),
            digest: r.artifact.digest.clone(),
            tag: self.release.clone(),
        }));
        out.extend(self.migrations.iter().map(|m| Pinned {
            kind: Kind::Migrations,
            name: "migrations".into(),
            repository: m.artifact.repository.clone(),
            digest: m.artifact.digest.clone(),
            tag: self.release.clone(),
        }));
        out.extend(self.charts.iter().map(|c| Pinned {
            kind: Kind::Chart,
            name: c.name.clone(),
            repository: c.artifact.repository.clone(),
            digest: c.artifact.digest.clone(),
            tag: c.version.clone(),
        }));
        out.extend(self.ai.iter().map(|a| Pinned {
            kind: Kind::Ai,
            name: "ai".into(),
            repository: a.artifact.repository.clone(),
            digest: a.artifact.digest.clone(),
            tag: self.release.clone(),
        }));
        out
    }
}

/// Refuses an entry given twice and two entries that would write one target tag: imported
/// concurrently, the tag would end at whichever finished last.
fn check_unique(m: &ReleaseManifest) -> Result<(), ManifestError> {
    let fields: Vec<String> = (0..m.images.len())
        .map(|i| format!("images[{i}]"))
        .chain((0..m.runbooks.len()).map(|i| format!("runbooks[{i}].artifact")))
        .chain(m.migrations.iter().map(|_| "migrations.artifact".to_owned()))
        .chain((0..m.charts.len()).map(|i| format!("charts[{i}].artifact")))
        .chain(m.ai.iter().map(|_| "ai.artifact".to_owned()))
        .collect();
    let pinned = m.pinned();
    for (j, b) in pinned.iter().enumerate() {
        if let Some(i) = pinned[..j].iter().position(|a| a.repository == b.repository && a.tag == b.tag) {
            let a = &pinned[i];
            let what = if a.digest == b.digest {
                format!("pin {}:{} to {} (an entry given twice)", b.repository, b.tag, b.digest)
            } else {
                format!("target {}:{}, at {} and {}", b.repository, b.tag, a.digest, b.digest)
            };
            return Err(ManifestError::Duplicate { first: fields[i].clone(), second: fields[j].clone(), what });
        }
    }
    Ok(())
}

/// Checks what a runbook entry says about the runbook itself (name, uniqueness, type, runtime
/// environment), but not where its artifact comes from. The Runbook Bootstrap reruns it on the
/// manifest it reads back from artifact storage.
pub fn check_runbooks(runbooks: &[RunbookEntry]) -> Result<(), ManifestError> {
    let mut seen = std::collections::HashMap::new();
    for (i, rb) in runbooks.iter().enumerate() {
        let field = format!("runbooks[{i}]");
        if let Err(e) = names::RUNBOOK.check(&rb.name) {
            return Err(invalid(&format!("{field}.name"), &e.to_string()));
        }
        // Automation names are case-insensitive, so `Rotate-Keys` and `rotate-keys` collide.
        if let Some(first) = seen.insert(rb.name.to_ascii_lowercase(), i) {
            return Err(ManifestError::Duplicate {
                first: format!("runbooks[{first}].name"),
                second: format!("{field}.name"),
                what: format!("name runbook {:?} (Automation names are case-insensitive)", rb.name),
            });
        }
        if !["PowerShell", "Python"].contains(&rb.runbook_type.as_str()) {
            return Err(invalid(
                &format!("{field}.runbookType"),
                &format!("{:?} is not PowerShell or Python", rb.runbook_type),
            ));
        }
        if let Err(e) = names::RUNTIME_ENVIRONMENT.check(&rb.runtime_environment) {
            return Err(invalid(&format!("{field}.runtimeEnvironment"), &e.to_string()));
        }
    }
    Ok(())
}

fn invalid(field: &str, message: &str) -> ManifestError {
    ManifestError::Invalid { field: field.to_owned(), message: message.to_owned() }
}

fn check_digest(d: &str, field: &str) -> Result<(), ManifestError> {
    if valid_digest(d) {
        Ok(())
    } else {
        Err(invalid(field, &format!("{d:?} is not a sha256 digest")))
    }
}

/// Makes `repo` relative to the publisher. The first path component names a registry host when
/// it has a dot or a port or is `localhost` — the rule Docker uses.
fn relative(repo: &str, publisher: &str, field: &str) -> Result<String, ManifestError> {
    let (first, rest) = repo.split_once('/').unwrap_or((repo, ""));
    let names_host = first.contains('.') || first.contains(':') || first == "localhost";
    let repo = if names_host {
        if !first.eq_ignore_ascii_case(publisher) {
            return Err(ManifestError::ForeignRegistry {
                field: field.to_owned(),
                host: first.to_owned(),
                publisher: publisher.to_owned(),
            });
        }
        rest
    } else {
        repo
    };
    if !valid_repository(repo) {
        return Err(invalid(field, &format!("{repo:?} is not a repository name")));
    }
    Ok(repo.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn doc() -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": 1, "release": "2026.11.0",
            "images": [{"repository": "vibedata/api", "tag": "2026.11.0", "digest": D}],
            "runbooks": [{"name": "Rotate-Keys", "runbookType": "PowerShell", "runtimeEnvironment": "PowerShell-7.4",
                          "artifact": {"repository": "vibedata/runbooks/rotate-keys", "digest": D}}],
            "migrations": {"artifact": {"repository": "vibedata/db-migrations", "digest": D}}
        })
    }

    fn parse_doc(v: &serde_json::Value) -> Result<ReleaseManifest, ManifestError> {
        parse(v.to_string().as_bytes(), "pub.azurecr.io", &["vibedata/api".to_owned()])
    }

    #[test]
    fn a_good_manifest_pins_images_runbooks_and_migrations() {
        let m = parse_doc(&doc()).unwrap();
        let pinned = m.pinned();
        assert_eq!(pinned.len(), 3);
        assert_eq!(pinned[0].tag, "2026.11.0");
        assert_eq!((pinned[1].kind, pinned[1].tag.as_str()), (Kind::Runbook, "2026.11.0"));
        assert_eq!(pinned[2].kind, Kind::Migrations);
    }

    #[test]
    fn each_bad_input_is_named() {
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|v| v["schemaVersion"] = 3.into()), "schemaVersion 3"),
            (
                Box::new(|v| v["ai"] = serde_json::json!({"artifact": {"repository": "vibedata/ai", "digest": D}})),
                "ai: needs schemaVersion 2",
            ),
            (Box::new(|v| v["images"][0]["digest"] = "sha256:xyz".into()), "images[0].digest"),
            (
                Box::new(|v| v["images"][0]["repository"] = "evil.example.com/vibedata/api".into()),
                "names registry evil.example.com",
            ),
            (
                Box::new(|v| v["images"][0]["repository"] = "127.0.0.1:5000/vibedata/api".into()),
                "names registry 127.0.0.1:5000",
            ),
            (Box::new(|v| v["images"][0]["repository"] = "vibedata/other".into()), "expects image vibedata/api"),
            (Box::new(|v| v["runbooks"][0]["name"] = "9lives".into()), "runbooks[0].name"),
            (Box::new(|v| v["runbooks"][0]["runbookType"] = "Graph".into()), "runbooks[0].runbookType"),
            (Box::new(|v| v["images"][0]["extra"] = 1.into()), "unknown field"),
            (
                Box::new(|v| v["migrations"]["artifact"]["repository"] = "Upper/Case".into()),
                "migrations.artifact.repository",
            ),
        ];
        for (mutate, expected) in cases {
            let mut v = doc();
            mutate(&mut v);
            let err = parse_doc(&v).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    fn v2() -> serde_json::Value {
        let mut v = doc();
        v["schemaVersion"] = 2.into();
        v["charts"] = serde_json::json!([{"name": "airbyte", "version": "2.2.0", "namespace": "airbyte",
                                          "artifact": {"repository": "vibedata/charts/airbyte", "digest": D}}]);
        v["ai"] = serde_json::json!({"artifact": {"repository": "vibedata/ai-definitions", "digest": D}});
        v
    }

    #[test]
    fn version_2_pins_charts_by_their_version_and_the_ai_definitions_by_the_release() {
        let m = parse_doc(&v2()).unwrap();
        let pinned = m.pinned();
        assert_eq!(pinned.len(), 5);
        assert_eq!(
            (pinned[3].kind, pinned[3].repository.as_str(), pinned[3].tag.as_str()),
            (Kind::Chart, "vibedata/charts/airbyte", "2.2.0")
        );
        assert_eq!((pinned[4].kind, pinned[4].tag.as_str()), (Kind::Ai, "2026.11.0"));
        // A version 1 manifest without the new sections stays valid, and both read back.
        assert!(parse_doc(&doc()).unwrap().charts.is_empty());
    }

    #[test]
    fn version_2_sections_are_validated() {
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|v| v["charts"][0]["name"] = "Airbyte".into()), "charts[0].name"),
            (Box::new(|v| v["charts"][0]["namespace"] = "air_byte".into()), "charts[0].namespace"),
            (Box::new(|v| v["charts"][0]["version"] = "latest".into()), "charts[0].version"),
            (Box::new(|v| v["charts"][0]["artifact"]["digest"] = "sha256:1".into()), "charts[0].artifact.digest"),
            (
                Box::new(|v| {
                    let c = v["charts"][0].clone();
                    v["charts"].as_array_mut().unwrap().push(c);
                }),
                "charts[0].name and charts[1].name both name chart \"airbyte\"",
            ),
            (
                Box::new(|v| v["ai"]["artifact"]["repository"] = "evil.example.com/x".into()),
                "names registry evil.example.com",
            ),
        ];
        for (mutate, expected) in cases {
            let mut v = v2();
            mutate(&mut v);
            let err = parse_doc(&v).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn the_publisher_may_be_named_explicitly() {
        let mut v = doc();
        v["images"][0]["repository"] = "pub.azurecr.io/vibedata/api".into();
        assert_eq!(parse_doc(&v).unwrap().images[0].repository, "vibedata/api");
    }

    #[test]
    fn malformed_and_oversized_input_is_refused_before_parsing_fields() {
        assert!(matches!(parse(b"{not json", "p", &[]), Err(ManifestError::Malformed(_))));
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(parse(&big, "p", &[]), Err(ManifestError::TooLarge { .. })));
    }

    #[test]
    fn duplicate_runbook_names_are_refused_naming_both() {
        let mut v = doc();
        let mut rb = v["runbooks"][0].clone();
        rb["name"] = "rotate-keys".into();
        rb["artifact"]["repository"] = "vibedata/runbooks/other".into();
        v["runbooks"].as_array_mut().unwrap().push(rb);
        let e = parse_doc(&v).unwrap_err().to_string();
        assert_eq!(
            e,
            "runbooks[0].name and runbooks[1].name both name runbook \"rotate-keys\" (Automation names are case-insensitive)"
        );
    }

    /// `(mutation, the exact message)`: every list refuses what it holds twice.
    #[test]
    fn an_entry_twice_or_two_entries_for_one_target_are_refused_naming_both() {
        const E: &str = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Mutation, String)> = vec![
            (
                Box::new(|v| {
                    let i = v["images"][0].clone();
                    v["images"].as_array_mut().unwrap().push(i);
                }),
                format!("images[0] and images[1] both pin vibedata/api:2026.11.0 to {D} (an entry given twice)"),
            ),
            (
                Box::new(|v| {
                    let mut i = v["images"][0].clone();
                    i["digest"] = E.into();
                    v["images"].as_array_mut().unwrap().push(i);
                }),
                format!("images[0] and images[1] both target vibedata/api:2026.11.0, at {D} and {E}"),
            ),
            (
                Box::new(|v| v["runbooks"][0]["artifact"]["repository"] = "vibedata/db-migrations".into()),
                format!("runbooks[0].artifact and migrations.artifact both pin vibedata/db-migrations:2026.11.0 to {D} (an entry given twice)"),
            ),
        ];
        for (mutate, expected) in cases {
            let mut v = doc();
            mutate(&mut v);
            assert_eq!(parse_doc(&v).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn names_are_held_to_azures_limits() {
        let mut v = doc();
        v["runbooks"][0]["name"] = "R".repeat(200).into();
        let e = parse_doc(&v).unwrap_err().to_string();
        assert!(e.starts_with("runbooks[0].name: \"RRRR"), "{e}");
        assert!(e.contains("is 200 characters; a runbook name is 1-63"), "{e}");
        let mut v = doc();
        v["runbooks"][0]["runtimeEnvironment"] = format!("P{}", "o".repeat(80)).into();
        assert!(parse_doc(&v).unwrap_err().to_string().contains("runbooks[0].runtimeEnvironment"));
    }

    #[test]
    fn schema_versions_out_of_range_are_named_as_such() {
        let mut v = doc();
        v["schemaVersion"] = 4_294_967_297u64.into();
        assert_eq!(
            parse_doc(&v).unwrap_err().to_string(),
            "schemaVersion: 4294967297 is out of range (supported: 1, 2)"
        );
        v["schemaVersion"] = "1".into();
        assert_eq!(parse_doc(&v).unwrap_err().to_string(), "schemaVersion: \"1\" is not a whole number");
        let mut v = doc();
        v["images"] = 3.into();
        assert!(parse_doc(&v)
            .unwrap_err()
            .to_string()
            .starts_with("the manifest does not match the release manifest schema"));
    }
}
