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
use super::pipeline::{Audience, Pipeline, Request};
use super::AzureError;

pub const API_VERSION: &str = "v1";
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

    async fn get_opt(&self, path: &str) -> Result<Option<Value>, AzureError> {
        let req = Request::new(Method::GET, self.url(path, &[]), format!("{}{path}", self.endpoint));
        match self.pipeline.send(Some(&self.audience), req).await {
            Ok(resp) => decode(resp, path).await.map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /agents/{name}`: the agent with its latest version, or `None`.
    pub async fn agent(&self, name: &str) -> Result<Option<Value>, AzureError> {
        self.get_opt(&format!("/agents/{name}")).await
    }

    pub async fn agent_version(&self, name: &str, version: &str) -> Result<Option<Value>, AzureError> {
        self.get_opt(&format!("/agents/{name}/versions/{version}")).await
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
        let mut req = Request::new(Method::POST, self.url(&path, &[]), format!("{}{path}", self.endpoint)).json(&body);
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
            let req = Request::new(Method::GET, self.url("/agents", &query), format!("{}/agents", self.endpoint));
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
        self.get_opt(&format!("/indexes/{name}/versions/{version}")).await
    }

    /// `PATCH /indexes/{name}/versions/{version}`: creates or updates the asset.
    pub async fn put_index_asset(&self, name: &str, version: &str, asset: &Value) -> Result<Value, AzureError> {
        let path = format!("/indexes/{name}/versions/{version}");
        let body = bytes::Bytes::from(serde_json::to_vec(asset).expect("serializes"));
        // Naturally idempotent: the same name and version hold the same asset.
        let req = Request::new(Method::PATCH, self.url(&path, &[]), format!("{}{path}", self.endpoint))
            .body(body, "application/merge-patch+json")
            .idempotent();
        let resp = self.pipeline.send(Some(&self.audience), req).await?;
        decode(resp, &path).await
    }

    /// Every index asset's name.
    pub async fn index_names(&self) -> Result<Vec<String>, AzureError> {
        let req = Request::new(Method::GET, self.url("/indexes", &[]), format!("{}/indexes", self.endpoint));
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
