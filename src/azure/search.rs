//! AI Search index definitions through the service's data plane (`azure-reference/specs/ai-search-foundry.md` §2).
//!
//! Bearer tokens for `https://search.azure.com`, bound to the service's origin. A service whose
//! RBAC is still being enabled, or a role still propagating, answers 401 or a bare 403: both are
//! waited out like any RBAC window. Writes are conditional: `If-None-Match: *` to create,
//! `If-Match` with the ETag just read to update; a 412 means someone else wrote in between.

use reqwest::header::{HeaderName, ETAG};
use reqwest::Method;
use serde_json::Value;
use url::Url;

use super::arm::decode;
use super::permission::Permission;
use super::pipeline::{Audience, Pipeline, Request};
use super::AzureError;

pub const API_VERSION: &str = "2025-09-01";

const SERVICE: &str = "Microsoft.Search/searchServices";

/// [`Search::get`], [`Search::names`]: an index definition read on the data plane, authorised
/// by a control-plane action of Search Service Contributor (`searchServices/*`).
pub const INDEX_READ: Permission =
    Permission::action("Microsoft.Search/searchServices/indexes/read", SERVICE).unconfirmed();
/// [`Search::put`].
pub const INDEX_WRITE: Permission =
    Permission::action("Microsoft.Search/searchServices/indexes/write", SERVICE).unconfirmed();
pub const SCOPE: &str = "https://search.azure.com/.default";

#[derive(Clone)]
pub struct Search {
    pipeline: Pipeline,
    audience: Audience,
    endpoint: Url,
}

/// An index as the service holds it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub definition: Value,
    pub etag: String,
}

/// How a write is conditioned.
pub enum Condition<'a> {
    /// Only if no index of the name exists.
    Absent,
    /// Only if the index is still at this ETag.
    At(&'a str),
}

impl Search {
    pub fn new(pipeline: Pipeline, endpoint: Url) -> Search {
        Search { audience: Audience::new(SCOPE, &endpoint), pipeline, endpoint }
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn url(&self, name: &str) -> Url {
        // The SDKs' OData key form; the service also takes `/indexes/{name}`.
        let base = self.endpoint.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/indexes('{name}')")).expect("an index URL");
        url.query_pairs_mut().append_pair("api-version", API_VERSION);
        url
    }

    fn request(&self, method: Method, name: &str, permission: &'static Permission) -> Request {
        Request::new(method, self.url(name), format!("{}indexes/{name}", self.endpoint), permission).bare_403_is_rbac()
    }

    /// The index, or `None` when the service has none of that name.
    pub async fn get(&self, name: &str) -> Result<Option<Stored>, AzureError> {
        match self.pipeline.send(Some(&self.audience), self.request(Method::GET, name, &INDEX_READ)).await {
            Ok(resp) => {
                let etag = etag(&resp);
                let definition: Value = decode(resp, name).await?;
                let etag = etag
                    .or_else(|| definition.get("@odata.etag").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                Ok(Some(Stored { definition, etag }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or updates the index under `condition`; returns what the service now holds.
    pub async fn put(&self, name: &str, definition: &Value, condition: Condition<'_>) -> Result<Stored, AzureError> {
        let (header, value) = match condition {
            Condition::Absent => (HeaderName::from_static("if-none-match"), "*".to_owned()),
            Condition::At(etag) => (HeaderName::from_static("if-match"), etag.to_owned()),
        };
        let req = self
            .request(Method::PUT, name, &INDEX_WRITE)
            .json(definition)
            .header(header, &value)
            .header(HeaderName::from_static("prefer"), "return=representation");
        let resp = self.pipeline.send(Some(&self.audience), req).await?;
        let etag = etag(&resp);
        let definition: Value = decode(resp, name).await?;
        let etag = etag
            .or_else(|| definition.get("@odata.etag").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        Ok(Stored { definition, etag })
    }

    /// The names of every index of the service.
    pub async fn names(&self) -> Result<Vec<String>, AzureError> {
        let base = self.endpoint.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/indexes")).expect("the indexes URL");
        url.query_pairs_mut().append_pair("api-version", API_VERSION).append_pair("$select", "name");
        let req = Request::new(Method::GET, url, format!("{}indexes", self.endpoint), &INDEX_READ).bare_403_is_rbac();
        let resp = self.pipeline.send(Some(&self.audience), req).await?;
        let list: Value = decode(resp, "indexes").await?;
        Ok(list["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect())
    }
}

fn etag(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
