//! A Foundry project's data plane: agents and index assets (`azure-reference/specs/ai-search-foundry.md` §3).
//!
//! `api-version=v1` (literally), bearer tokens for `https://ai.azure.com`, bound to the project
//! endpoint's origin. Every `POST /agents/{name}/versions` makes a new immutable version, so
//! callers compare first and never post blindly. Preview agent kinds need `Foundry-Features`.

use reqwest::header::HeaderName;
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::arm::decode;
use super::permission::Permission;
use super::pipeline::{Audience, Pipeline, Request};
use super::AzureError;

pub const API_VERSION: &str = "v1";

const PROJECT: &str = "Microsoft.CognitiveServices/accounts/projects";

/// The project's ARM resource (`GET …/accounts/{a}/projects/{p}`), read for its endpoint.
pub const PROJECT_READ: Permission =
    Permission::action("Microsoft.CognitiveServices/accounts/projects/read", PROJECT).unconfirmed();
/// [`Project::agent`], [`Project::agent_version`], [`Project::agent_names`]. Foundry User
/// (`53ca6127-…`) holds the agent data actions. The two agent strings are the service's own:
/// Foundry's `PermissionDenied` answer names them ("lacks the required data action
/// `…/agents/read`", as quoted in azure-sdk-for-python#44842 and microsoft/ai-agent-evals#43),
/// though the role's JSON was not read.
pub const AGENTS_READ: Permission =
    Permission::data("Microsoft.CognitiveServices/accounts/AIServices/agents/read", PROJECT);
/// [`Project::create_version`].
pub const AGENTS_WRITE: Permission =
    Permission::data("Microsoft.CognitiveServices/accounts/AIServices/agents/write", PROJECT);
/// [`Project::index_asset`], [`Project::index_names`].
pub const INDEXES_READ: Permission =
    Permission::data("Microsoft.CognitiveServices/accounts/AIServices/indexes/read", PROJECT).unconfirmed();
/// [`Project::put_index_asset`].
pub const INDEXES_WRITE: Permission =
    Permission::data("Microsoft.CognitiveServices/accounts/AIServices/indexes/write", PROJECT).unconfirmed();
pub const SCOPE: &str = "https://ai.azure.com/.default";

#[derive(Clone)]
pub struct Project {
    pipeline: Pipeline,
    audience: Audience,
    endpoint: Url,
}

impl Project {
    pub fn new(pipeline: Pipeline, endpoint: Url) -> Project {
        Project { audience: Audience::new(SCOPE, &endpoint), pipeline, endpoint }
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let base = self.endpoint.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}{path}")).expect("a project URL");
        url.query_pairs_mut().append_pair("api-version", API_VERSION);
        for (k, v) in query {
            url.query_pairs_mut().append_pair(k, v);
        }
        url
    }

    async fn get_opt(&self, path: &str, permission: &'static Permission) -> Result<Option<Value>, AzureError> {
        let req = Request::new(Method::GET, self.url(path, &[]), format!("{}{path}", self.endpoint), permission);
        match self.pipeline.send(Some(&self.audience), req).await {
            Ok(resp) => decode(resp, path).await.map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /agents/{name}`: the agent with its latest version, or `None`.
    pub async fn agent(&self, name: &str) -> Result<Option<Value>, AzureError> {
        self.get_opt(&format!("/agents/{name}"), &AGENTS_READ).await
    }

    pub async fn agent_version(&self, name: &str, version: &str) -> Result<Option<Value>, AzureError> {
        self.get_opt(&format!("/agents/{name}/versions/{version}"), &AGENTS_READ).await
    }

    /// `POST /agents/{name}/versions`: a new version (and the agent, when it is new).
    /// `features` is the `Foundry-Features` value a preview kind needs.
    pub async fn create_version(
        &self,
        name: &str,
        definition: &Value,
        description: Option<&str>,
        metadata: &Value,
        features: Option<&str>,
    ) -> Result<Value, AzureError> {
        let path = format!("/agents/{name}/versions");
        let mut body = json!({"definition": definition, "metadata": metadata});
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        let mut req =
            Request::new(Method::POST, self.url(&path, &[]), format!("{}{path}", self.endpoint), &AGENTS_WRITE)
                .json(&body);
        if let Some(f) = features {
            req = req.header(HeaderName::from_static("foundry-features"), f);
        }
        let resp = self.pipeline.send(Some(&self.audience), req).await?;
        decode(resp, &path).await
    }

    /// Every agent's name, following the cursor.
    pub async fn agent_names(&self) -> Result<Vec<String>, AzureError> {
        let mut names = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let mut query = vec![("limit", "100")];
            if let Some(a) = &after {
                query.push(("after", a));
            }
            let req = Request::new(
                Method::GET,
                self.url("/agents", &query),
                format!("{}/agents", self.endpoint),
                &AGENTS_READ,
            );
            let resp = self.pipeline.send(Some(&self.audience), req).await?;
            let page: Value = decode(resp, "/agents").await?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            names.extend(data.iter().filter_map(|a| a["name"].as_str().map(str::to_owned)));
            match (page["has_more"].as_bool(), page["last_id"].as_str()) {
                (Some(true), Some(last)) if !data.is_empty() => after = Some(last.to_owned()),
                _ => return Ok(names),
            }
        }
        Ok(names)
    }

    /// `GET /indexes/{name}/versions/{version}`: an index asset, or `None`.
    pub async fn index_asset(&self, name: &str, version: &str) -> Result<Option<Value>, AzureError> {
        self.get_opt(&format!("/indexes/{name}/versions/{version}"), &INDEXES_READ).await
    }

    /// `PATCH /indexes/{name}/versions/{version}`: creates or updates the asset.
    pub async fn put_index_asset(&self, name: &str, version: &str, asset: &Value) -> Result<Value, AzureError> {
        let path = format!("/indexes/{name}/versions/{version}");
        let body = bytes::Bytes::from(serde_json::to_vec(asset).expect("serializes"));
        // Naturally idempotent: the same name and version hold the same asset.
        let req = Request::new(Method::PATCH, self.url(&path, &[]), format!("{}{path}", self.endpoint), &INDEXES_WRITE)
            .body(body, "application/merge-patch+json")
            .idempotent();
        let resp = self.pipeline.send(Some(&self.audience), req).await?;
        decode(resp, &path).await
    }

    /// Every index asset's name.
    pub async fn index_names(&self) -> Result<Vec<String>, AzureError> {
        let req =
            Request::new(Method::GET, self.url("/indexes", &[]), format!("{}/indexes", self.endpoint), &INDEXES_READ);
        let resp = self.pipeline.send(Some(&self.audience), req).await?;
        let page: Value = decode(resp, "/indexes").await?;
        Ok(page["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["name"].as_str().map(str::to_owned))
            .collect())
    }
}
