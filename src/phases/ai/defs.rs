//! The release's AI definitions (manifest-v2: a gzip tar of JSON files), read and validated whole
//! before any call: Search indexes, Foundry project index assets, agents.
//!
//! Everything wrong here is bad input (exit 2): a path outside the three folders, a non-JSON or
//! oversize file, an index without exactly one `Edm.String` key, names that break their rules,
//! a name twice, an asset on an index the release does not define, a hosted agent whose image is
//! not one of the release's images, an agent kind this binary does not know.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use crate::names;

/// The largest definitions file: they are a few KiB.
const MAX_FILE: u64 = 256 * 1024;
/// The largest archive, unpacked.
const MAX_TOTAL: u64 = 8 * 1024 * 1024;

/// Agent kinds and the `Foundry-Features` value each needs (`None`: generally available).
pub const KINDS: &[(&str, Option<&str>)] = &[
    ("prompt", None),
    ("hosted", None),
    ("workflow", Some("WorkflowAgents=V1Preview")),
    ("external", Some("ExternalAgents=V1Preview")),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub name: String,
    pub description: Option<String>,
    pub definition: Value,
    /// For a hosted agent: the release image repository it runs.
    pub image: Option<String>,
}

impl Agent {
    pub fn kind(&self) -> &str {
        self.definition["kind"].as_str().unwrap_or_default()
    }

    pub fn features(&self) -> Option<&'static str> {
        KINDS.iter().find(|(k, _)| *k == self.kind()).and_then(|(_, f)| *f)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    pub name: String,
    pub version: String,
    /// The PATCH body: everything but name and version.
    pub body: Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definitions {
    /// Search index name → definition.
    pub indexes: BTreeMap<String, Value>,
    pub assets: Vec<Asset>,
    pub agents: Vec<Agent>,
}

/// Why the definitions were refused: the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct DefinitionError {
    pub file: String,
    pub message: String,
}

fn bad(file: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError { file: file.to_owned(), message: message.into() }
}

/// Reads the tar.gz `layer`; `images` are the release's image repositories.
pub fn parse(layer: &[u8], images: &[String]) -> Result<Definitions, DefinitionError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut files: Vec<(String, Value)> = Vec::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| bad("archive", format!("not a gzip tar: {e}")))? {
        let mut entry = entry.map_err(|e| bad("archive", format!("not a gzip tar: {e}")))?;
        let path = entry.path().map_err(|e| bad("archive", e.to_string()))?.to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(&path, "is not a regular file"));
        }
        let known = ["search/indexes/", "foundry/indexes/", "foundry/agents/"];
        let Some(folder) = known.iter().find(|k| path.starts_with(*k)) else {
            return Err(bad(&path, "is outside search/indexes/, foundry/indexes/ and foundry/agents/"));
        };
        let file = &path[folder.len()..];
        if file.contains('/') || !file.ends_with(".json") || path.contains("..") {
            return Err(bad(&path, "is not a .json file directly in its folder"));
        }
        if entry.size() > MAX_FILE {
            return Err(bad(&path, format!("is {} bytes, over the {MAX_FILE}-byte limit", entry.size())));
        }
        total += entry.size();
        if total > MAX_TOTAL {
            return Err(bad("archive", format!("unpacks to more than {MAX_TOTAL} bytes")));
        }
        let mut text = Vec::new();
        entry.by_ref().take(MAX_FILE + 1).read_to_end(&mut text).map_err(|e| bad(&path, e.to_string()))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| bad(&path, format!("is not JSON: {e}")))?;
        files.push((path, value));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));

    let mut defs = Definitions::default();
    for (path, v) in &files {
        let stem = path.rsplit('/').next().unwrap_or_default().trim_end_matches(".json");
        if path.starts_with("search/indexes/") {
            let name = index(path, stem, v)?;
            defs.indexes.insert(name, v.clone());
        }
    }
    for (path, v) in &files {
        let stem = path.rsplit('/').next().unwrap_or_default().trim_end_matches(".json");
        if path.starts_with("foundry/indexes/") {
            let asset = asset(path, stem, v, &defs.indexes)?;
            if defs.assets.iter().any(|a| a.name == asset.name && a.version == asset.version) {
                return Err(bad(
                    path,
                    format!("index asset {} version {} is defined twice", asset.name, asset.version),
                ));
            }
            defs.assets.push(asset);
        } else if path.starts_with("foundry/agents/") {
            let agent = agent(path, stem, v, images)?;
            defs.agents.push(agent);
        }
    }
    Ok(defs)
}

fn name_of<'a>(path: &str, stem: &str, v: &'a Value) -> Result<&'a str, DefinitionError> {
    let name = v["name"].as_str().ok_or_else(|| bad(path, "has no \"name\""))?;
    if name != stem {
        return Err(bad(path, format!("names {name:?}; the file must be named after it")));
    }
    Ok(name)
}

fn index(path: &str, stem: &str, v: &Value) -> Result<String, DefinitionError> {
    let name = name_of(path, stem, v)?;
    names::SEARCH_INDEX.check(name).map_err(|e| bad(path, e.to_string()))?;
    let fields = v["fields"].as_array().ok_or_else(|| bad(path, "has no \"fields\" list"))?;
    let mut seen = std::collections::BTreeSet::new();
    for f in fields {
        let fname = f["name"].as_str().ok_or_else(|| bad(path, "has a field without a name"))?;
        if !seen.insert(fname.to_ascii_lowercase()) {
            return Err(bad(path, format!("defines field {fname:?} twice")));
        }
    }
    let keys: Vec<&Value> = fields.iter().filter(|f| f["key"].as_bool() == Some(true)).collect();
    match keys.as_slice() {
        [k] if k["type"] == "Edm.String" => Ok(name.to_owned()),
        [k] => Err(bad(path, format!("its key field {} is {}, not Edm.String", k["name"], k["type"]))),
        _ => Err(bad(path, format!("has {} key fields; an index has exactly one, of type Edm.String", keys.len()))),
    }
}

fn asset(path: &str, stem: &str, v: &Value, indexes: &BTreeMap<String, Value>) -> Result<Asset, DefinitionError> {
    let name = name_of(path, stem, v)?;
    let version =
        v["version"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| bad(path, "has no \"version\" string"))?;
    let target = v["indexName"].as_str().ok_or_else(|| bad(path, "has no \"indexName\""))?;
    if !indexes.contains_key(target) {
        return Err(bad(path, format!("points at index {target:?}, which the release does not define")));
    }
    if v["type"].as_str() != Some("AzureSearch") || v["connectionName"].as_str().is_none_or(str::is_empty) {
        return Err(bad(path, "must be of \"type\": \"AzureSearch\" with a \"connectionName\""));
    }
    let mut body = v.clone();
    let obj = body.as_object_mut().expect("checked to be an object");
    obj.remove("name");
    obj.remove("version");
    Ok(Asset { name: name.to_owned(), version: version.to_owned(), body })
}

fn agent(path: &str, stem: &str, v: &Value, images: &[String]) -> Result<Agent, DefinitionError> {
    let name = name_of(path, stem, v)?;
    names::AGENT.check(name).map_err(|e| bad(path, e.to_string()))?;
    let definition =
        v.get("definition").filter(|d| d.is_object()).ok_or_else(|| bad(path, "has no \"definition\" object"))?;
    let kind = definition["kind"].as_str().unwrap_or_default();
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        return Err(bad(path, format!("has agent kind {kind:?}; known: {}", known.join(", "))));
    }
    let image = if kind == "hosted" {
        let image = definition
            .pointer("/container_configuration/image")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, "is a hosted agent without container_configuration.image"))?;
        if !images.iter().any(|i| i == image) {
            return Err(bad(path, format!("runs image {image:?}, which is not one of the release's images")));
        }
        Some(image.to_owned())
    } else {
        None
    };
    Ok(Agent {
        name: name.to_owned(),
        description: v["description"].as_str().map(str::to_owned),
        definition: definition.clone(),
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn targz(files: &[(&str, Value)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, v) in files {
            let data = serde_json::to_vec(v).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, data.as_slice()).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    fn good() -> Vec<(&'static str, Value)> {
        vec![
            (
                "search/indexes/docs.json",
                json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}]}),
            ),
            (
                "foundry/indexes/docs-asset.json",
                json!({"name": "docs-asset", "version": "1", "type": "AzureSearch", "connectionName": "s", "indexName": "docs"}),
            ),
            (
                "foundry/agents/triage.json",
                json!({"name": "triage", "definition": {"kind": "prompt", "model": "m", "instructions": "i"}}),
            ),
            (
                "foundry/agents/assistant.json",
                json!({"name": "assistant", "definition": {"kind": "hosted", "container_configuration": {"image": "vibedata/assistant"}}}),
            ),
        ]
    }

    #[test]
    fn the_sample_shape_parses() {
        let d = parse(&targz(&good()), &["vibedata/assistant".into()]).unwrap();
        assert_eq!(d.indexes.keys().collect::<Vec<_>>(), ["docs"]);
        assert_eq!(d.assets[0].body["indexName"], "docs");
        assert!(d.assets[0].body.get("name").is_none());
        assert_eq!(d.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["assistant", "triage"]);
        assert_eq!(d.agents[0].image.as_deref(), Some("vibedata/assistant"));
    }

    /// `(edit, what the message must say)`: every bad definition is refused, naming its file.
    #[test]
    fn each_bad_definition_is_refused_naming_the_file() {
        type Edit = Box<dyn Fn(&mut Vec<(&'static str, Value)>)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|f| f[0].1["fields"][0]["key"] = json!(false)), "search/indexes/docs.json: has 0 key fields"),
            (Box::new(|f| f[0].1["fields"][0]["type"] = json!("Edm.Int32")), "its key field \"id\" is \"Edm.Int32\""),
            (
                Box::new(|f| f[0] = ("search/indexes/Docs.json", json!({"name": "Docs", "fields": []}))),
                "not a valid search index name",
            ),
            (
                Box::new(|f| f[1].1["indexName"] = json!("other")),
                "points at index \"other\", which the release does not define",
            ),
            (Box::new(|f| f[2].1["name"] = json!("other")), "names \"other\"; the file must be named after it"),
            (
                Box::new(|f| {
                    f[2] = ("foundry/agents/t_1.json", json!({"name": "t_1", "definition": {"kind": "prompt"}}))
                }),
                "not a valid agent name",
            ),
            (Box::new(|f| f[2].1["definition"]["kind"] = json!("voice")), "has agent kind \"voice\""),
            (
                Box::new(|f| f[3].1["definition"]["container_configuration"]["image"] = json!("docker.io/evil")),
                "runs image \"docker.io/evil\", which is not one of the release's images",
            ),
            (Box::new(|f| f.push(("foundry/tools/x.json", json!({})))), "is outside search/indexes/"),
            (
                Box::new(|f| {
                    f[0].1["fields"].as_array_mut().unwrap().push(json!({"name": "ID", "type": "Edm.String"}))
                }),
                "defines field \"ID\" twice",
            ),
        ];
        for (edit, expected) in cases {
            let mut files = good();
            edit(&mut files);
            let err = parse(&targz(&files), &["vibedata/assistant".into()]).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }
}
