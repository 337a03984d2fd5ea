//! The emulated cluster behind runCommand: namespaces, the objects that `kubectl apply` and
//! Helm put there, and Helm's release history (what Helm keeps in its `sh.helm.release.v1.*`
//! Secrets). No pod runs: a Deployment is *Available* once `readyAfterMs` has passed since its
//! pod template last changed, unless an image is missing or a test made it unavailable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::now_rfc3339;

/// A kind the emulated API server knows: its plural (the REST resource), short names, API
/// group/version and whether it lives in a namespace.
pub struct Kind {
    pub kind: &'static str,
    pub plural: &'static str,
    pub short: &'static [&'static str],
    pub api_version: &'static str,
    pub namespaced: bool,
}

const fn k(
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    api_version: &'static str,
    namespaced: bool,
) -> Kind {
    Kind { kind, plural, short, api_version, namespaced }
}

pub const KINDS: &[Kind] = &[
    k("Namespace", "namespaces", &["ns"], "v1", false),
    k("Pod", "pods", &["po"], "v1", true),
    k("Service", "services", &["svc"], "v1", true),
    k("Secret", "secrets", &[], "v1", true),
    k("ConfigMap", "configmaps", &["cm"], "v1", true),
    k("ServiceAccount", "serviceaccounts", &["sa"], "v1", true),
    k("PersistentVolumeClaim", "persistentvolumeclaims", &["pvc"], "v1", true),
    k("Deployment", "deployments", &["deploy"], "apps/v1", true),
    k("StatefulSet", "statefulsets", &["sts"], "apps/v1", true),
    k("DaemonSet", "daemonsets", &["ds"], "apps/v1", true),
    k("ReplicaSet", "replicasets", &["rs"], "apps/v1", true),
    k("Job", "jobs", &[], "batch/v1", true),
    k("CronJob", "cronjobs", &["cj"], "batch/v1", true),
    k("Role", "roles", &[], "rbac.authorization.k8s.io/v1", true),
    k("RoleBinding", "rolebindings", &[], "rbac.authorization.k8s.io/v1", true),
    k("ClusterRole", "clusterroles", &[], "rbac.authorization.k8s.io/v1", false),
    k("ClusterRoleBinding", "clusterrolebindings", &[], "rbac.authorization.k8s.io/v1", false),
    k("Ingress", "ingresses", &["ing"], "networking.k8s.io/v1", true),
    k("NetworkPolicy", "networkpolicies", &["netpol"], "networking.k8s.io/v1", true),
    k("PodDisruptionBudget", "poddisruptionbudgets", &["pdb"], "policy/v1", true),
    k("HorizontalPodAutoscaler", "horizontalpodautoscalers", &["hpa"], "autoscaling/v2", true),
    k("StorageClass", "storageclasses", &["sc"], "storage.k8s.io/v1", false),
    k("PriorityClass", "priorityclasses", &["pc"], "scheduling.k8s.io/v1", false),
    k("CustomResourceDefinition", "customresourcedefinitions", &["crd", "crds"], "apiextensions.k8s.io/v1", false),
];

pub fn kind_named(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// `deploy`, `deployments`, `deployment.apps`, `Deployment` → the kind.
pub fn resource_named(word: &str) -> Option<&'static Kind> {
    let w = word.to_ascii_lowercase();
    let base = w.split('.').next().unwrap_or(&w);
    KINDS.iter().find(|k| k.plural == base || k.kind.eq_ignore_ascii_case(base) || k.short.contains(&base))
}

/// The key of an object: namespace (empty for cluster-scoped kinds), kind, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

/// Why a Deployment (or hook Pod) cannot become ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Object {
    /// The object as the API server would return it (metadata filled in, no status).
    pub body: Value,
    pub created: String,
    /// When its pods would be ready (Deployments; reset when the pod template changes).
    pub ready_at: Instant,
    pub blocked: Option<Block>,
}

impl Object {
    pub fn name(&self) -> &str {
        self.body["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        labels_of(&self.body["metadata"]["labels"])
    }
}

pub fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// A revision of a Helm release, as `helm status -o json` shows it (`release.Release`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub version: u32,
    /// Helm's words: `deployed`, `superseded`, `failed`, `uninstalled`, `pending-install`, ...
    pub status: String,
    /// Chart.yaml as JSON (`chart.metadata`).
    pub chart: Value,
    /// `sha256:` of the chart archive the install was given (the OCI layer digest); `null` for a
    /// chart directory.
    pub chart_digest: Option<String>,
    /// The chart's own values.yaml (for `helm get values --all`).
    pub chart_values: Value,
    /// The user-supplied values (`config`).
    pub config: Value,
    pub manifest: String,
    pub hooks: Vec<Value>,
    pub first_deployed: String,
    pub last_deployed: String,
    pub deleted: String,
    pub description: String,
}

impl Revision {
    pub fn chart_name(&self) -> String {
        format!("{}-{}", self.chart["name"].as_str().unwrap_or(""), self.chart["version"].as_str().unwrap_or(""))
    }

    pub fn is_pending(&self) -> bool {
        self.status.starts_with("pending-")
    }

    /// Helm's JSON (`helm status -o json`, `helm upgrade -o json`): chart templates and files are
    /// not kept, so `chart` has `metadata` and `values` only.
    pub fn release_json(&self, name: &str, namespace: &str) -> Value {
        json!({
            "name": name,
            "info": {
                "first_deployed": self.first_deployed,
                "last_deployed": self.last_deployed,
                "deleted": self.deleted,
                "description": self.description,
                "status": self.status,
            },
            "chart": {"metadata": self.chart, "lock": null, "templates": [], "values": self.chart_values, "schema": null, "files": []},
            "config": self.config,
            "manifest": self.manifest,
            "hooks": self.hooks,
            "version": self.version,
            "namespace": namespace,
        })
    }
}

#[derive(Debug, Default)]
pub struct Cluster {
    /// Name → creation time.
    pub namespaces: BTreeMap<String, String>,
    pub objects: BTreeMap<Key, Object>,
    /// (namespace, release name) → revisions, oldest first.
    pub releases: BTreeMap<(String, String), Vec<Revision>>,
}

impl Cluster {
    /// What every AKS cluster has before anyone installs anything.
    pub fn fresh() -> Cluster {
        let mut c = Cluster::default();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease", "aks-command"] {
            c.namespaces.insert(ns.to_owned(), now_rfc3339());
        }
        c
    }

    pub fn history(&self, namespace: &str, name: &str) -> Option<&Vec<Revision>> {
        self.releases.get(&(namespace.to_owned(), name.to_owned())).filter(|r| !r.is_empty())
    }

    pub fn history_mut(&mut self, namespace: &str, name: &str) -> &mut Vec<Revision> {
        self.releases.entry((namespace.to_owned(), name.to_owned())).or_default()
    }

    /// Creates or replaces an object (metadata completed as the API server does). Returns
    /// `created`, `configured` or `unchanged`, as `kubectl apply` reports it.
    pub fn apply(&mut self, mut body: Value, namespace: &str, ready_after: Duration) -> &'static str {
        let kind = body["kind"].as_str().unwrap_or_default().to_owned();
        let name = body["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let namespaced = kind_named(&kind).is_none_or(|k| k.namespaced);
        let ns = if namespaced { namespace.to_owned() } else { String::new() };
        if namespaced {
            body["metadata"]["namespace"] = json!(ns);
        }
        if kind == "Secret" {
            fold_string_data(&mut body);
        }
        if kind == "Namespace" {
            self.namespaces.entry(name.clone()).or_insert_with(now_rfc3339);
        }
        let key = Key { namespace: ns, kind: kind.clone(), name };
        let now = Instant::now();
        match self.objects.get_mut(&key) {
            Some(existing) => {
                let mut comparable = body.clone();
                comparable["metadata"]["uid"] = existing.body["metadata"]["uid"].clone();
                comparable["metadata"]["creationTimestamp"] = existing.body["metadata"]["creationTimestamp"].clone();
                comparable["metadata"]["resourceVersion"] = existing.body["metadata"]["resourceVersion"].clone();
                if comparable == existing.body {
                    return "unchanged";
                }
                if comparable["spec"]["template"] != existing.body["spec"]["template"] {
                    existing.ready_at = now + ready_after;
                    existing.blocked = None;
                }
                let version = existing.body["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse::<u64>().ok());
                comparable["metadata"]["resourceVersion"] = json!((version.unwrap_or(1) + 1).to_string());
                existing.body = comparable;
                "configured"
            }
            None => {
                let created = now_rfc3339();
                body["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                body["metadata"]["creationTimestamp"] = json!(created);
                body["metadata"]["resourceVersion"] = json!("1");
                self.objects.insert(key, Object { body, created, ready_at: now + ready_after, blocked: None });
                "created"
            }
        }
    }

    pub fn delete(&mut self, key: &Key) -> bool {
        if key.kind == "Namespace" {
            self.namespaces.remove(&key.name);
            self.objects.retain(|k, _| k.namespace != key.name);
        }
        self.objects.remove(key).is_some()
    }

    pub fn get(&self, namespace: &str, kind: &str, name: &str) -> Option<&Object> {
        let namespaced = kind_named(kind).is_none_or(|k| k.namespaced);
        let ns = if namespaced { namespace } else { "" };
        self.objects.get(&Key { namespace: ns.to_owned(), kind: kind.to_owned(), name: name.to_owned() })
    }

    /// Objects of one kind, in one namespace or all (`None`).
    pub fn list(&self, namespace: Option<&str>, kind: &str) -> Vec<&Object> {
        self.objects
            .iter()
            .filter(|(k, _)| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns || k.namespace.is_empty()))
            .map(|(_, o)| o)
            .collect()
    }
}

/// `stringData` merged into `data` (base64), as the API server stores a Secret.
fn fold_string_data(body: &mut Value) {
    use base64::Engine;
    let Some(string_data) = body.get("stringData").and_then(Value::as_object).cloned() else {
        return;
    };
    if !body["data"].is_object() {
        body["data"] = json!({});
    }
    for (k, v) in string_data {
        let text = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
        body["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
    if let Some(m) = body.as_object_mut() {
        m.remove("stringData");
    }
}

/// Every container image of an object's pod spec: `(container, image)`.
pub fn images(body: &Value) -> Vec<(String, String)> {
    let spec = match body["kind"].as_str().unwrap_or_default() {
        "Pod" => &body["spec"],
        "CronJob" => &body["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => &body["spec"]["template"]["spec"],
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            if let Some(image) = c["image"].as_str() {
                out.push((c["name"].as_str().unwrap_or_default().to_owned(), image.to_owned()));
            }
        }
    }
    out
}

/// Whether `selector` (`matchLabels` or a plain map) selects `labels`.
pub fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let wanted = labels_of(selector.get("matchLabels").unwrap_or(selector));
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A `-l a=b,c=d` selector.
pub fn parse_selector(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_start_matches('=').trim().to_owned()))
        .collect()
}

/// A Deployment's availability now: `Ok(())`, or why not.
pub fn availability(obj: &Object, forced: Option<&Block>) -> Result<(), Block> {
    if let Some(b) = forced.or(obj.blocked.as_ref()) {
        return Err(b.clone());
    }
    if Instant::now() < obj.ready_at {
        return Err(Block {
            reason: "MinimumReplicasUnavailable".into(),
            message: "Deployment does not have minimum availability.".into(),
        });
    }
    Ok(())
}

/// The Deployment with the `status` the deployment controller would have written.
pub fn deployment_with_status(obj: &Object, forced: Option<&Block>) -> Value {
    let mut body = obj.body.clone();
    let replicas = body["spec"]["replicas"].as_u64().unwrap_or(1);
    let now = now_rfc3339();
    let (ready, available) = match availability(obj, forced) {
        Ok(()) => (
            replicas,
            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                     "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now}),
        ),
        Err(b) => (
            0,
            json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                              "message": format!("Deployment does not have minimum availability. {}: {}", b.reason, b.message),
                              "lastUpdateTime": now, "lastTransitionTime": now}),
        ),
    };
    body["status"] = json!({
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": replicas - ready,
        "conditions": [available, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                                   "message": format!("ReplicaSet \"{}\" has successfully progressed.", pod_prefix(obj)),
                                   "lastUpdateTime": now, "lastTransitionTime": now}],
    });
    if ready == replicas {
        if let Some(m) = body["status"].as_object_mut() {
            m.remove("unavailableReplicas");
        }
    }
    body
}

/// `<deployment>-<pod-template-hash>`: stable for one pod template.
pub fn pod_prefix(obj: &Object) -> String {
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, obj.body["spec"]["template"].to_string().as_bytes());
    let hash: String = digest.as_ref()[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}", obj.name(), &hash[..10])
}

/// The pods a Deployment's ReplicaSet would have: Running and Ready, or waiting with the reason.
pub fn deployment_pods(obj: &Object, forced: Option<&Block>) -> Vec<Value> {
    let replicas = obj.body["spec"]["replicas"].as_u64().unwrap_or(1);
    let template = &obj.body["spec"]["template"];
    let ns = obj.body["metadata"]["namespace"].clone();
    let state = availability(obj, forced);
    (0..replicas)
        .map(|i| {
            let suffix: String = format!("{:x}", i * 7919 + 40503).chars().rev().take(5).collect();
            let mut labels = template["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(pod_prefix(obj).rsplit('-').next().unwrap_or_default());
            let containers: Vec<Value> = template["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let st = match &state {
                        Ok(()) => json!({"running": {"startedAt": obj.created}}),
                        Err(b) => json!({"waiting": {"reason": b.reason, "message": b.message}}),
                    };
                    json!({"name": c["name"], "image": c["image"], "ready": state.is_ok(), "restartCount": 0, "started": state.is_ok(), "state": st})
                })
                .collect();
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": format!("{}-{suffix}", pod_prefix(obj)), "namespace": ns, "labels": labels,
                             "creationTimestamp": obj.created},
                "spec": template["spec"],
                "status": {
                    "phase": if state.is_ok() { "Running" } else { "Pending" },
                    "conditions": [{"type": "Ready", "status": if state.is_ok() { "True" } else { "False" }}],
                    "containerStatuses": containers,
                },
            })
        })
        .collect()
}
