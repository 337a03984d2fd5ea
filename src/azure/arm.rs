//! The Resource Manager client every management call goes through: JSON in and out,
//! `api-version` per operation, `nextLink` paging, and long-running operations in both styles.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::permission::{Permission, UNDECLARED};
use super::pipeline::{Audience, Pipeline, Request};
use super::retry::{parse_retry_after, Poll};
use super::AzureError;

/// `GET` of the resource group (preflight's harmless read, the registry's snapshot).
pub const GROUP_READ: Permission =
    Permission::action("Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/resourceGroups");

#[derive(Clone)]
pub struct Arm {
    pipeline: Pipeline,
    audience: Audience,
    endpoint: Url,
}

/// A long-running operation's first answer (see [`Arm::start`]).
#[derive(Debug)]
pub struct Started {
    pub style: LroStyle,
    /// The `Location` header, where a Location-style operation is polled.
    pub location: Option<Url>,
    pub retry_after: Option<Duration>,
    pub body: Option<Value>,
    method: Method,
    path: String,
    api_version: String,
    resource: String,
    /// What each poll (and the final read) needs; [`UNDECLARED`] when the request named none.
    poll: &'static Permission,
    at: Instant,
}

/// The polling style a long-running operation announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LroStyle {
    /// `Azure-AsyncOperation`: poll a status resource until `status` is terminal.
    AsyncOperation(Url),
    /// `Location`: poll until it stops answering 202.
    Location(Url),
    /// Finished synchronously.
    Done,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

impl Arm {
    pub fn new(pipeline: Pipeline, endpoint: Url, scope: String) -> Arm {
        Arm { audience: Audience::new(scope, &endpoint), pipeline, endpoint }
    }

    /// `path` is an ARM id or a path below the endpoint, starting with `/`.
    pub fn url(&self, path: &str, api_version: &str) -> Url {
        let mut url = self.endpoint.join(path.trim_start_matches('/')).expect("ARM paths join onto the endpoint");
        url.query_pairs_mut().append_pair("api-version", api_version);
        url
    }

    pub async fn send(&self, req: Request) -> Result<Response, AzureError> {
        self.pipeline.send(Some(&self.audience), req).await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        permission: &'static Permission,
    ) -> Result<T, AzureError> {
        self.get_as(Request::new(Method::GET, self.url(path, api_version), path, permission)).await
    }

    /// A GET built by the caller (a pattern permission with its exact string).
    pub async fn get_as<T: DeserializeOwned>(&self, req: Request) -> Result<T, AzureError> {
        let resource = req.resource.clone();
        let resp = self.send(req).await?;
        decode(resp, &resource).await
    }

    /// Like [`Arm::get`], but a 404 is `None` rather than an error.
    pub async fn get_opt<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        permission: &'static Permission,
    ) -> Result<Option<T>, AzureError> {
        match self.get(path, api_version, permission).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of a paged list, following `nextLink` verbatim until it is absent.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        permission: &'static Permission,
    ) -> Result<Vec<T>, AzureError> {
        let mut items = Vec::new();
        let mut next = Some(self.url(path, api_version));
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            pages += 1;
            let resp = self.send(Request::new(Method::GET, url, path, permission)).await?;
            let page: Page<T> = decode(resp, path).await?;
            items.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
                next = Some(Url::parse(&link).map_err(|e| AzureError::Decode {
                    resource: path.to_owned(),
                    detail: format!("bad nextLink {link:?}: {e}"),
                })?);
            }
            if pages > 10_000 {
                return Err(AzureError::Decode {
                    resource: path.to_owned(),
                    detail: "more than 10000 pages; nextLink loops".into(),
                });
            }
        }
        Ok(items)
    }

    /// Sends a mutating request and, if it started a long-running operation, waits for it to end
    /// (at most `deadline`). Returns the final result, if the service sent one: the resource
    /// itself after a PUT or PATCH; after a POST, the body at `Location` (ARM's default final
    /// state for POST) or, without one, the operation status document.
    pub async fn call(&self, req: Request, deadline: Duration) -> Result<Option<Value>, AzureError> {
        let started = self.start(req).await?;
        self.finish(started, deadline).await
    }

    /// Sends a mutating request and returns its first answer without polling, so that a caller
    /// can record where the operation lives (a runCommand id, from `Location`) before waiting.
    pub async fn start(&self, req: Request) -> Result<Started, AzureError> {
        let resource = req.resource.clone();
        let poll = req.poll.unwrap_or(&UNDECLARED);
        let method = req.method.clone();
        let path = req.url.path().to_owned();
        let api_version =
            req.url.query_pairs().find(|(k, _)| k == "api-version").map(|(_, v)| v.into_owned()).unwrap_or_default();
        let resp = self.send(req).await?;
        let style = lro_style(resp.status(), resp.headers());
        let location = header_url(resp.headers(), LOCATION.as_str());
        let retry_after = retry_after(resp.headers());
        let body = body_json(resp, &resource).await?;
        Ok(Started {
            style,
            location,
            retry_after,
            body,
            method,
            path,
            api_version,
            resource,
            poll,
            at: Instant::now(),
        })
    }

    /// Waits for a [`Arm::start`]ed operation to end (at most `deadline` from its start).
    pub async fn finish(&self, s: Started, deadline: Duration) -> Result<Option<Value>, AzureError> {
        let mut poll = Poll::operation(deadline);
        match s.style {
            LroStyle::Done => Ok(s.body),
            LroStyle::AsyncOperation(url) => {
                let status =
                    self.poll_async_operation(url, &s.resource, s.at, &mut poll, s.retry_after, s.poll).await?;
                if s.method == Method::PUT || s.method == Method::PATCH {
                    return self.get(&s.path, &s.api_version, s.poll).await.map(Some);
                }
                match (s.method == Method::POST, s.location) {
                    (true, Some(url)) => self.poll_location(url, &s.resource, s.at, &mut poll, None, s.poll).await,
                    (true, None) => Ok(Some(status)),
                    (false, _) => Ok(None),
                }
            }
            LroStyle::Location(url) => {
                self.poll_location(url, &s.resource, s.at, &mut poll, s.retry_after, s.poll).await
            }
        }
    }

    /// Polls an operation's `Location` to its end: how a rerun resumes an operation an earlier
    /// run started and recorded.
    pub async fn follow(
        &self,
        location: Url,
        resource: &str,
        deadline: Duration,
        permission: &'static Permission,
    ) -> Result<Option<Value>, AzureError> {
        let mut poll = Poll::operation(deadline);
        self.poll_location(location, resource, Instant::now(), &mut poll, Some(Duration::ZERO), permission).await
    }

    /// Polls an `Azure-AsyncOperation` status resource to a terminal status; returns its document.
    async fn poll_async_operation(
        &self,
        url: Url,
        resource: &str,
        started: Instant,
        poll: &mut Poll,
        mut wait: Option<Duration>,
        permission: &'static Permission,
    ) -> Result<Value, AzureError> {
        loop {
            sleep_within(poll, wait, started, resource).await?;
            let resp = self.send(Request::new(Method::GET, url.clone(), resource, permission)).await?;
            wait = retry_after(resp.headers());
            let doc: Value = decode(resp, resource).await?;
            let status = doc.get("status").and_then(Value::as_str).unwrap_or_default();
            if status.eq_ignore_ascii_case("Succeeded") {
                return Ok(doc);
            }
            if let Some(e) = failure(&doc, status, resource) {
                return Err(e);
            }
        }
    }

    /// Polls a `Location` URL until it stops answering 202; returns the final body.
    async fn poll_location(
        &self,
        url: Url,
        resource: &str,
        started: Instant,
        poll: &mut Poll,
        mut wait: Option<Duration>,
        permission: &'static Permission,
    ) -> Result<Option<Value>, AzureError> {
        loop {
            sleep_within(poll, wait, started, resource).await?;
            let resp = self.send(Request::new(Method::GET, url.clone(), resource, permission)).await;
            let resp = match resp {
                Ok(r) => r,
                // A Location poll that fails reports the operation's failure in ARM's error body.
                Err(AzureError::Service { status, code, message, .. }) if status != 404 && status != 429 => {
                    return Err(AzureError::OperationFailed {
                        status: "Failed".into(),
                        code,
                        message,
                        resource: resource.to_owned(),
                    })
                }
                Err(e) => return Err(e),
            };
            if resp.status() == StatusCode::ACCEPTED {
                wait = retry_after(resp.headers());
                continue;
            }
            let body = body_json(resp, resource).await?;
            if let Some(doc) = &body {
                let state = doc
                    .pointer("/status")
                    .or_else(|| doc.pointer("/properties/provisioningState"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(e) = failure(doc, state, resource) {
                    return Err(e);
                }
            }
            return Ok(body);
        }
    }
}

/// An operation that ended `Failed` or `Canceled`, in any case: services differ (AKS runCommand
/// answers `failed` in lower case). `None` while it runs or after it succeeded.
fn failure(doc: &Value, state: &str, resource: &str) -> Option<AzureError> {
    let terminal = ["Failed", "Canceled"].into_iter().find(|t| state.eq_ignore_ascii_case(t))?;
    let text = |p: &str| doc.pointer(p).and_then(Value::as_str);
    Some(AzureError::OperationFailed {
        status: terminal.to_owned(),
        code: text("/error/code").or_else(|| text("/properties/reason")).unwrap_or("OperationFailed").to_owned(),
        message: text("/error/message").or_else(|| text("/properties/logs")).unwrap_or_default().to_owned(),
        resource: resource.to_owned(),
    })
}

fn header_url(headers: &HeaderMap, name: &str) -> Option<Url> {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| Url::parse(s).ok())
}

/// Reads the LRO headers of a first response. `Azure-AsyncOperation` wins when both are present,
/// as ARM's guidance says.
pub fn lro_style(status: StatusCode, headers: &HeaderMap) -> LroStyle {
    if status != StatusCode::CREATED && status != StatusCode::ACCEPTED {
        return LroStyle::Done;
    }
    if let Some(u) = header_url(headers, "azure-asyncoperation") {
        LroStyle::AsyncOperation(u)
    } else if let Some(u) = header_url(headers, LOCATION.as_str()) {
        LroStyle::Location(u)
    } else {
        LroStyle::Done
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
}

/// Waits before the next poll, or fails with the real time spent once the deadline is reached.
async fn sleep_within(
    poll: &mut Poll,
    retry_after: Option<Duration>,
    started: Instant,
    resource: &str,
) -> Result<(), AzureError> {
    match poll.next(started.elapsed(), retry_after) {
        Some(wait) => {
            tokio::time::sleep(wait).await;
            Ok(())
        }
        None => Err(AzureError::Timeout { resource: resource.to_owned(), after: started.elapsed() }),
    }
}

pub async fn decode<T: DeserializeOwned>(resp: Response, resource: &str) -> Result<T, AzureError> {
    let bytes =
        resp.bytes().await.map_err(|e| AzureError::Decode { resource: resource.to_owned(), detail: e.to_string() })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AzureError::Decode { resource: resource.to_owned(), detail: e.to_string() })
}

async fn body_json(resp: Response, resource: &str) -> Result<Option<Value>, AzureError> {
    let bytes =
        resp.bytes().await.map_err(|e| AzureError::Decode { resource: resource.to_owned(), detail: e.to_string() })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AzureError::Decode { resource: resource.to_owned(), detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn async_operation_header_wins_over_location() {
        let mut h = HeaderMap::new();
        h.insert("location", HeaderValue::from_static("https://m/loc"));
        assert_eq!(lro_style(StatusCode::ACCEPTED, &h), LroStyle::Location(Url::parse("https://m/loc").unwrap()));
        h.insert("azure-asyncoperation", HeaderValue::from_static("https://m/op"));
        assert_eq!(lro_style(StatusCode::CREATED, &h), LroStyle::AsyncOperation(Url::parse("https://m/op").unwrap()));
        assert_eq!(lro_style(StatusCode::OK, &h), LroStyle::Done);
        assert_eq!(lro_style(StatusCode::ACCEPTED, &HeaderMap::new()), LroStyle::Done);
    }

    /// A credential that always hands out the same token: these tests are about polling.
    #[derive(Debug)]
    struct Fixed;

    #[async_trait::async_trait]
    impl azure_core::credentials::TokenCredential for Fixed {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Ok(azure_core::credentials::AccessToken::new(
                "t",
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        }
    }

    fn arm_for(server: &crate::testserver::TestServer) -> Arm {
        let tokens = crate::azure::identity::Tokens::from_factory(Box::new(|| Ok(std::sync::Arc::new(Fixed) as _)))
            .expect("tokens");
        let policy = crate::azure::retry::RetryPolicy { max_retries: 1, ..Default::default() };
        let pipeline = Pipeline::new(reqwest::Client::new(), tokens, policy);
        Arm::new(pipeline, server.url(), "https://management.azure.com/.default".into())
    }

    fn post(arm: &Arm, path: &str) -> Request {
        const P: Permission = Permission::action("x/action", "x");
        Request::new(Method::POST, arm.url(path, "2025-10-01"), path, &P).polled_with(&P)
    }

    #[tokio::test]
    async fn a_post_with_azure_async_operation_returns_the_body_at_location() {
        use crate::testserver::{Reply, TestServer};
        let polls = std::sync::atomic::AtomicU32::new(0);
        let server = TestServer::start(move |r| {
            let base = format!("http://{}", r.header("host").unwrap_or_default());
            match r.target.split('?').next().unwrap_or_default() {
                "/c/runCommand" => Reply::new(202)
                    .header("Azure-AsyncOperation", &format!("{base}/op/1"))
                    .header("Location", &format!("{base}/result/1"))
                    .header("Retry-After", "0"),
                "/op/1" if polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
                    Reply::new(200).json(serde_json::json!({"status": "InProgress"}))
                }
                "/op/1" => Reply::new(200).json(serde_json::json!({"status": "Succeeded"})),
                "/result/1" => Reply::new(200).json(serde_json::json!({"id": "1", "properties": {"exitCode": 0}})),
                _ => Reply::new(404),
            }
        });
        let arm = arm_for(&server);
        let result = arm.call(post(&arm, "/c/runCommand"), Duration::from_secs(20)).await.unwrap();
        assert_eq!(result.unwrap()["properties"]["exitCode"], 0);
        let paths: Vec<String> = server.requests.lock().unwrap().iter().map(|r| r.target.clone()).collect();
        assert!(paths.iter().filter(|p| p.starts_with("/op/1")).count() >= 2, "{paths:?}");
    }

    #[tokio::test]
    async fn a_post_with_azure_async_operation_and_no_location_returns_the_status_document() {
        use crate::testserver::{Reply, TestServer};
        let server = TestServer::start(|r| {
            let base = format!("http://{}", r.header("host").unwrap_or_default());
            match r.target.split('?').next().unwrap_or_default() {
                "/c/act" => Reply::new(202).header("Azure-AsyncOperation", &format!("{base}/op/2")),
                "/op/2" => Reply::new(200).json(serde_json::json!({"status": "Succeeded", "properties": {"n": 7}})),
                _ => Reply::new(404),
            }
        });
        let arm = arm_for(&server);
        let result = arm.call(post(&arm, "/c/act"), Duration::from_secs(20)).await.unwrap().unwrap();
        assert_eq!(result["properties"]["n"], 7);
    }

    #[tokio::test]
    async fn a_post_with_location_returns_the_final_poll_and_fails_in_any_case() {
        use crate::testserver::{Reply, TestServer};
        let polls = std::sync::atomic::AtomicU32::new(0);
        let server = TestServer::start(move |r| {
            let base = format!("http://{}", r.header("host").unwrap_or_default());
            match r.target.split('?').next().unwrap_or_default() {
                "/c/ok" => Reply::new(202).header("Location", &format!("{base}/results/ok")).header("Retry-After", "0"),
                "/results/ok" if polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => Reply::new(202),
                "/results/ok" => Reply::new(200)
                    .json(serde_json::json!({"id": "ok", "properties": {"provisioningState": "succeeded", "exitCode": 0}})),
                "/c/bad" => Reply::new(202).header("Location", &format!("{base}/results/bad")),
                "/results/bad" => Reply::new(200).json(
                    serde_json::json!({"id": "bad", "properties": {"provisioningState": "failed", "reason": "ImagePullBackoff"}}),
                ),
                _ => Reply::new(404),
            }
        });
        let arm = arm_for(&server);
        let ok = arm.call(post(&arm, "/c/ok"), Duration::from_secs(20)).await.unwrap().unwrap();
        assert_eq!(ok["id"], "ok");
        let err = arm.call(post(&arm, "/c/bad"), Duration::from_secs(20)).await.unwrap_err();
        assert!(matches!(&err, AzureError::OperationFailed { code, .. } if code == "ImagePullBackoff"), "{err}");
    }
}
