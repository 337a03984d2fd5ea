//! What Helm would send to the API server, from the real `helm`: `helm template` renders the
//! chart with the release's values (`helm show chart|values` give its metadata and defaults),
//! and every image the rendered objects reference is looked up in the customer registry.

use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use super::cluster::images;
use crate::arm::import::parse_image;
use crate::oci_copy::{self, Auth, Registry, Side};
use crate::state::Shared;

/// The cluster's Kubernetes version (`arm/platform.rs`), for `.Capabilities.KubeVersion`.
pub const KUBE_VERSION: &str = "1.33.3";

pub struct Rendered {
    /// Non-hook documents, as Helm stores the release manifest (`---\n# Source: ...`).
    pub manifest: String,
    /// Non-hook objects, in render order.
    pub objects: Vec<Value>,
    /// Hooks: `(events, weight, object, source, manifest text)`.
    pub hooks: Vec<Hook>,
    pub chart: Value,
    pub chart_values: Value,
}

pub struct Hook {
    pub events: Vec<String>,
    pub weight: i64,
    pub delete_policies: Vec<String>,
    pub object: Value,
    pub path: String,
    pub manifest: String,
}

impl Hook {
    pub fn json(&self, last_run: Value) -> Value {
        json!({
            "name": self.object["metadata"]["name"],
            "kind": self.object["kind"],
            "path": self.path,
            "manifest": self.manifest,
            "events": self.events,
            "last_run": last_run,
            "weight": self.weight,
            "delete_policies": self.delete_policies,
        })
    }
}

pub struct HelmRun<'a> {
    pub helm: &'a Path,
    pub cwd: &'a Path,
    pub home: &'a Path,
}

impl HelmRun<'_> {
    /// Runs the real helm; `Ok(stdout)` or `Err(stderr)`.
    async fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new(self.helm)
            .args(args)
            .current_dir(self.cwd)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.home)
            .env("HELM_CACHE_HOME", self.home.join(".cache/helm"))
            .env("HELM_CONFIG_HOME", self.home.join(".config/helm"))
            .env("HELM_DATA_HOME", self.home.join(".local/share/helm"))
            .output()
            .await
            .map_err(|e| format!("Error: running {}: {e}", self.helm.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_owned())
        }
    }

    /// `helm template` of `chart` as release `name` in `namespace` with the values in `values`.
    pub async fn render(
        &self,
        name: &str,
        chart: &str,
        namespace: &str,
        values: &Path,
        version: Option<&str>,
        is_upgrade: bool,
    ) -> Result<Rendered, String> {
        let values = values.to_string_lossy();
        let mut args =
            vec!["template", name, chart, "--namespace", namespace, "-f", &values, "--kube-version", KUBE_VERSION];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        if is_upgrade {
            args.push("--is-upgrade");
        }
        let out = self.run(&args).await?;
        let mut show = vec!["show", "chart", chart];
        if let Some(v) = version {
            show.extend(["--version", v]);
        }
        let chart_meta = yaml_to_json(&self.run(&show).await?).map_err(|e| format!("Error: Chart.yaml: {e}"))?;
        show[1] = "values";
        let chart_values = yaml_to_json(&self.run(&show).await?).unwrap_or(Value::Null);
        let mut rendered = Rendered {
            manifest: String::new(),
            objects: Vec::new(),
            hooks: Vec::new(),
            chart: chart_meta,
            chart_values,
        };
        for (source, text) in documents(&out) {
            let object = yaml_to_json(&text).map_err(|e| format!("Error: YAML parse error on {source}: {e}"))?;
            if object.is_null() {
                continue;
            }
            let annotations = &object["metadata"]["annotations"];
            match annotations["helm.sh/hook"].as_str() {
                Some(events) => rendered.hooks.push(Hook {
                    events: events.split(',').map(|e| e.trim().to_owned()).collect(),
                    weight: annotations["helm.sh/hook-weight"]
                        .as_str()
                        .and_then(|w| w.trim().parse().ok())
                        .unwrap_or(0),
                    delete_policies: annotations["helm.sh/hook-delete-policy"]
                        .as_str()
                        .map(|p| p.split(',').map(|e| e.trim().to_owned()).collect())
                        .unwrap_or_else(|| vec!["before-hook-creation".to_owned()]),
                    object,
                    path: source.clone(),
                    manifest: text.trim_end().to_owned(),
                }),
                None => {
                    rendered.manifest.push_str(&format!("---\n# Source: {source}\n{}\n", text.trim_end()));
                    rendered.objects.push(object);
                }
            }
        }
        rendered.hooks.sort_by_key(|h| h.weight);
        Ok(rendered)
    }
}

/// `helm template`'s output split into `(source, document)`.
fn documents(out: &str) -> Vec<(String, String)> {
    let mut docs = Vec::new();
    let mut source = String::new();
    let mut text = String::new();
    let mut flush = |source: &mut String, text: &mut String| {
        if !text.trim().is_empty() {
            docs.push((std::mem::take(source), std::mem::take(text)));
        }
        text.clear();
    };
    for line in out.lines() {
        if line == "---" || line.starts_with("--- ") {
            flush(&mut source, &mut text);
            continue;
        }
        if let Some(s) = line.strip_prefix("# Source: ") {
            source = s.trim().to_owned();
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    flush(&mut source, &mut text);
    docs
}

/// One YAML document as JSON (`null` for an empty one).
pub fn yaml_to_json(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let de = serde_norway::Deserializer::from_str(text);
    Value::deserialize(de).map_err(|e| e.to_string())
}

/// Every document of a multi-document YAML stream, as JSON (empty ones dropped).
pub fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// An image an object references that the cluster could not pull.
#[derive(Debug, Clone)]
pub struct MissingImage {
    /// `Deployment airbyte/airbyte-worker (container worker)`.
    pub what: String,
    pub image: String,
    pub why: String,
}

impl std::fmt::Display for MissingImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "image \"{}\" of {} is not in the customer registry: {}", self.image, self.what, self.why)
    }
}

/// Checks every image of `objects` (each `(namespace, object)`) against the customer registry:
/// a private cluster pulls from nowhere else.
pub async fn missing_images(st: &Shared, objects: &[(String, &Value)]) -> Vec<MissingImage> {
    let login = st.config.customer_registry.login_server.clone();
    let mut missing = Vec::new();
    let mut checked: Vec<(String, Result<(), String>)> = Vec::new();
    for (ns, obj) in objects {
        for (container, image) in images(obj) {
            let what = format!(
                "{} {ns}/{} (container {container})",
                obj["kind"].as_str().unwrap_or_default(),
                obj["metadata"]["name"].as_str().unwrap_or_default()
            );
            let verdict = match checked.iter().find(|(i, _)| *i == image) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = check_image(st, &login, &image).await;
                    checked.push((image.clone(), v.clone()));
                    v
                }
            };
            if let Err(why) = verdict {
                missing.push(MissingImage { what, image, why });
            }
        }
    }
    missing
}

async fn check_image(st: &Shared, login: &str, image: &str) -> Result<(), String> {
    let Some(rest) = image.strip_prefix(&format!("{login}/")) else {
        let host = image.split('/').next().filter(|h| h.contains('.') || h.contains(':') || *h == "localhost");
        return Err(format!(
            "it is not in {login} (it names {}; the cluster is private and pulls only from the customer registry): ErrImagePull",
            host.unwrap_or("docker.io")
        ));
    };
    let Some(reference) = parse_image(rest) else {
        return Err(format!("'{rest}' is not a valid image reference: InvalidImageName"));
    };
    let Some(ca) = &st.config.ca_file else {
        return Err("the emulator has no caFile to reach the registry with".into());
    };
    let pem = std::fs::read(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
    let client = oci_copy::client_for(login, &pem)?;
    let scope = format!("repository:{}:pull", reference.repo);
    let token = crate::acr_auth::service_access_token(st, "aks-kubelet", &[scope.as_str()]);
    let registry = Registry::new(login, client, Auth::Bearer(token), Side::Target);
    match registry.manifest_exists(&reference.repo, &reference.reference()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{}: manifest unknown: ErrImagePull", reference.reference())),
        Err(e) => Err(format!("{}: {}: ErrImagePull", e.context, e.detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_template_output_into_sourced_documents() {
        let out = "---\n# Source: airbyte/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: airbyte/templates/b.yaml\n\n---\n# Source: airbyte/templates/c.yaml\nkind: Secret\n";
        let docs = documents(out);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].0, "airbyte/templates/a.yaml");
        assert_eq!(yaml_to_json(&docs[0].1).unwrap()["metadata"]["name"], "a");
        assert_eq!(docs[1].0, "airbyte/templates/c.yaml");
    }

    #[test]
    fn reads_multi_document_yaml() {
        let docs = yaml_documents("a: 1\n---\n---\nb: [x, y]\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": ["x", "y"]})]);
    }
}
