//! Listing the referrers of a manifest (OCI distribution-spec 1.1, "Listing Referrers"): the
//! referrers API, and on a registry without it (a 404, as CNCF distribution 2.8 answers) the
//! referrers tag schema `<alg>-<hex>`, an ordinary tag holding an image index.

use reqwest::header::ACCEPT;
use serde::Deserialize;

use super::auth::Scope;
use super::reference::valid_digest;
use super::{transport, Descriptor, OciError, Registry, OCI_INDEX};

/// At most this many pages are followed: a registry that keeps answering `rel="next"` is broken.
const MAX_PAGES: usize = 32;

/// Where a referrers list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The tag `sha256-<hex>` (or nothing there: no referrers).
    TagSchema,
}

#[derive(Debug, Clone)]
pub struct Referrers {
    pub source: ReferrersSource,
    /// Only those of the requested `artifactType`, whether or not the registry filtered.
    pub manifests: Vec<Descriptor>,
    /// On the tag schema, the whole index (every artifact type): what an update must keep.
    pub index: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The tag-schema index listing `manifests` (what a pusher on a registry without the API writes).
pub fn schema_index(manifests: &[Descriptor]) -> bytes::Bytes {
    let v = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    bytes::Bytes::from(v.to_string())
}

/// The tag the referrers tag schema keeps the referrers of `digest` under.
pub fn tag_schema(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    Some(format!("{}-{}", &alg[..alg.len().min(32)], &hex[..hex.len().min(64)]))
}

impl Registry {
    /// The referrers of `repository@digest` whose `artifactType` is `artifact_type`.
    pub async fn referrers(&self, repository: &str, digest: &str, artifact_type: &str) -> Result<Referrers, OciError> {
        self.referrers_of(repository, digest, Some(artifact_type)).await
    }

    /// Every referrer of `repository@digest`, of any type.
    pub async fn all_referrers(&self, repository: &str, digest: &str) -> Result<Referrers, OciError> {
        self.referrers_of(repository, digest, None).await
    }

    /// The tag-schema index `repository` needs so that it lists `added` among `subject`'s
    /// referrers, or `None` when it serves the referrers API (it indexes `subject` itself) or
    /// already lists them all. Every entry it had is kept.
    pub async fn referrers_update(
        &self,
        repository: &str,
        subject: &str,
        added: &[Descriptor],
    ) -> Result<Option<(String, bytes::Bytes)>, OciError> {
        let r = self.all_referrers(repository, subject).await?;
        let missing: Vec<_> = added.iter().filter(|a| !r.index.iter().any(|d| d.digest == a.digest)).cloned().collect();
        if r.source == ReferrersSource::Api || missing.is_empty() {
            return Ok(None);
        }
        let mut entries = r.index;
        entries.extend(missing);
        Ok(Some((tag_schema(subject).expect("a valid digest"), schema_index(&entries))))
    }

    async fn referrers_of(
        &self,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, OciError> {
        if !valid_digest(digest) {
            return Err(OciError::BadReference { reference: digest.into(), reason: "not a sha256 digest".into() });
        }
        let resource = format!("{repository}@{digest} referrers");
        let query = artifact_type.map(|t| format!("?artifactType={}", urlencode(t))).unwrap_or_default();
        let mut next = Some(self.url(&format!("/v2/{repository}/referrers/{digest}{query}")));
        let mut manifests = Vec::new();
        for page in 0.. {
            let Some(url) = next.take() else { break };
            if page == MAX_PAGES {
                return Err(OciError::Manifest {
                    resource,
                    detail: format!("more than {MAX_PAGES} pages of referrers"),
                });
            }
            let resp = self
                .direct(&[Scope::pull(repository)], &resource, true, || {
                    self.http.get(url.clone()).header(ACCEPT, OCI_INDEX)
                })
                .await?;
            let status = resp.status().as_u16();
            if status == 404 && page == 0 {
                return self.referrers_by_tag(repository, digest, artifact_type).await;
            }
            if status != 200 {
                return Err(transport::from_status(
                    status,
                    &resp.text().await.unwrap_or_default(),
                    self.host(),
                    &resource,
                ));
            }
            // Without the header the registry did not filter, and we must.
            let filtered = resp
                .headers()
                .get_all("oci-filters-applied")
                .iter()
                .any(|v| v.to_str().map(|s| s.split(',').any(|f| f.trim() == "artifactType")).unwrap_or(false));
            next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|l| self.url("/").join(&l).ok());
            let body = resp.bytes().await.map_err(|e| OciError::Transport {
                registry: self.host().into(),
                resource: resource.clone(),
                detail: e.to_string(),
            })?;
            let index: Index = serde_json::from_slice(&body).map_err(|e| OciError::Manifest {
                resource: resource.clone(),
                detail: format!("the referrers answer is not an index ({e})"),
            })?;
            let wanted =
                |m: &Descriptor| artifact_type.is_none() || filtered || m.artifact_type.as_deref() == artifact_type;
            manifests.extend(index.manifests.into_iter().filter(wanted));
        }
        Ok(Referrers { source: ReferrersSource::Api, manifests, index: Vec::new() })
    }

    async fn referrers_by_tag(
        &self,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, OciError> {
        let tag = tag_schema(digest).expect("a valid digest has an algorithm");
        let none = Referrers { source: ReferrersSource::TagSchema, manifests: Vec::new(), index: Vec::new() };
        if self.manifest_digest(repository, &tag).await?.is_none() {
            return Ok(none);
        }
        let m = self.manifest(repository, &tag).await?;
        // "No valid index ⇒ no referrers."
        let Ok(index) = serde_json::from_slice::<Index>(&m.bytes) else { return Ok(none) };
        let manifests = index
            .manifests
            .iter()
            .filter(|m| artifact_type.is_none() || m.artifact_type.as_deref() == artifact_type)
            .cloned()
            .collect();
        Ok(Referrers { source: ReferrersSource::TagSchema, manifests, index: index.manifests })
    }
}

/// The target of a `Link: <url>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let rel_next =
            params.split(';').any(|p| matches!(p.trim().replace(' ', "").as_str(), "rel=\"next\"" | "rel=next"));
        rel_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testserver::{Reply, TestServer};
    use serde_json::json;

    const SIG: &str = "application/vnd.cncf.notary.signature";

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn entry(c: char, t: &str) -> serde_json::Value {
        json!({"mediaType": super::super::OCI_MANIFEST, "digest": d(c), "size": 1, "artifactType": t})
    }

    fn registry(srv: &TestServer) -> Registry {
        let origin = url::Url::parse(&format!("http://{}", srv.addr)).unwrap();
        let opts = super::super::RegistryOptions::default();
        let host = srv.addr.to_string();
        Registry::with_origin(&host, origin, super::super::Credentials::Anonymous, reqwest::Client::new(), &opts)
            .unwrap()
    }

    fn index(entries: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    }

    #[tokio::test]
    async fn the_api_is_paged_by_link_and_filtered_here_unless_the_registry_says_it_filtered() {
        let srv = TestServer::start(|r| {
            if r.target == "/v2/" {
                return Reply::new(200);
            }
            let filtered = r.target.contains("/filtered/");
            if r.target.contains("page=2") {
                return Reply::new(200).json(index(vec![entry('c', SIG)]));
            }
            let first = Reply::new(200).json(index(vec![entry('a', SIG), entry('b', "application/spdx+json")]));
            match filtered {
                true => first.header("OCI-Filters-Applied", "artifactType"),
                false => first.header("Link", &format!("</v2/repo/referrers/{}?page=2>; rel=\"next\"", d('0'))),
            }
        });
        let reg = registry(&srv);
        let got = reg.referrers("repo", &d('0'), SIG).await.unwrap();
        assert_eq!(got.source, ReferrersSource::Api);
        assert_eq!(
            got.manifests.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(),
            [d('a'), d('c')],
            "page 2 followed, spdx dropped"
        );
        let asked =
            srv.requests.lock().unwrap().iter().find(|r| r.target.contains("/referrers/")).unwrap().target.clone();
        assert!(asked.contains("artifactType=application%2Fvnd.cncf.notary.signature"), "{asked}");
        // With OCI-Filters-Applied the registry's answer is taken as it is.
        let got = reg.referrers("filtered/repo", &d('0'), SIG).await.unwrap();
        assert_eq!(got.manifests.len(), 2);
    }

    #[tokio::test]
    async fn a_404_falls_back_to_the_tag_schema() {
        let tag = tag_schema(&d('0')).unwrap();
        let srv = TestServer::start(move |r| {
            if r.target == "/v2/" {
                Reply::new(200)
            } else if r.target.contains("/referrers/") {
                Reply::new(404)
            } else if r.target.contains(&tag) && r.target.starts_with("/v2/signed/") {
                let body = index(vec![entry('a', SIG), entry('b', "application/spdx+json")]).to_string();
                let digest = super::super::sha256_digest(body.as_bytes());
                let mut reply =
                    Reply::new(200).header("Content-Type", OCI_INDEX).header("Docker-Content-Digest", &digest);
                reply.body = body;
                reply
            } else {
                Reply::new(404)
            }
        });
        let reg = registry(&srv);
        let none = reg.referrers("unsigned", &d('0'), SIG).await.unwrap();
        assert_eq!((none.source, none.manifests.len()), (ReferrersSource::TagSchema, 0));
        let got = reg.referrers("signed", &d('0'), SIG).await.unwrap();
        assert_eq!(got.manifests.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(), [d('a')]);
        assert_eq!(got.index.len(), 2, "the whole index is kept for an update");
    }

    #[test]
    fn tag_schema_and_link_headers() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(tag_schema(&d).unwrap(), format!("sha256-{}", "a".repeat(64)));
        assert_eq!(
            next_link(r#"</v2/r/referrers/sha256:1?n=2&last=x>; rel="next""#).as_deref(),
            Some("/v2/r/referrers/sha256:1?n=2&last=x")
        );
        assert_eq!(
            next_link(r#"<https://x/a>; rel="prev", <https://x/b>; rel="next""#).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="prev""#), None);
    }
}
