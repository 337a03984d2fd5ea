//! The Resource Manager client every management call goes through: JSON in and out,
//! `api-version` per operation, `nextLink` paging, and long-running operations in both styles.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::pipeline::{Audience, Pipeline, Request};
use super::retry::parse_retry_after;
use super::AzureError;

#[derive(Clone)]
pub struct Arm {
    pipeline: Pipeline,
    audience: Audience,
    endpoint: Url,
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

#[derive(Debug, Deserialize)]
struct OperationStatus {
    status: String,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(Debug, Deserialize)]
struct OperationError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
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

    pub async fn get<T: DeserializeOwned>(&self, path: &str, api_version: &str) -> Result<T, AzureError> {
        let resp = self.send(Request::new(Method::GET, self.url(path, api_version), path)).await?;
        decode(resp, path).await
    }

    /// Like [`Arm::get`], but a 404 is `None` rather than an error.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str, api_version: &str) -> Result<Option<T>, AzureError> {
        match self.get(path, api_version).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of a paged list, following `nextLink` verbatim until it is absent.
    pub async fn list<T: DeserializeOwned>(&self, path: &str, api_version: &str) -> Result<Vec<T>, AzureError> {
        let mut items = Vec::new();
        let mut next = Some(self.url(path, api_version));
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            pages += 1;
            let resp = self.send(Request::new(Method::GET, url, path)).await?;
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
    /// (at most `deadline`). Returns the final body, if the service sent one.
    pub async fn call(&self, req: Request, deadline: Duration) -> Result<Option<Value>, AzureError> {
        let resource = req.resource.clone();
        let method = req.method.clone();
        let path = req.url.path().to_owned();
        let api_version =
            req.url.query_pairs().find(|(k, _)| k == "api-version").map(|(_, v)| v.into_owned()).unwrap_or_default();
        let started = Instant::now();
        let resp = self.send(req).await?;
        let style = lro_style(resp.status(), resp.headers());
        let first_wait = retry_after(resp.headers());
        let body = body_json(resp, &resource).await?;
        match style {
            LroStyle::Done => Ok(body),
            LroStyle::AsyncOperation(url) => {
                self.poll_async_operation(url, &resource, started, deadline, first_wait).await?;
                // The operation resource says only "Succeeded"; the result is the resource itself.
                if method == Method::PUT || method == Method::PATCH {
                    self.get(&path, &api_version).await.map(Some)
                } else {
                    Ok(None)
                }
            }
            LroStyle::Location(url) => self.poll_location(url, &resource, started, deadline, first_wait).await,
        }
    }

    async fn poll_async_operation(
        &self,
        url: Url,
        resource: &str,
        started: Instant,
        deadline: Duration,
        mut wait: Option<Duration>,
    ) -> Result<(), AzureError> {
        let mut backoff = PollBackoff::default();
        loop {
            sleep_within(wait.unwrap_or_else(|| backoff.next()), started, deadline, resource).await?;
            let resp = self.send(Request::new(Method::GET, url.clone(), resource)).await?;
            wait = retry_after(resp.headers());
            let status: OperationStatus = decode(resp, resource).await?;
            match status.status.as_str() {
                "Succeeded" => return Ok(()),
                "Failed" | "Canceled" => {
                    let err = status.error.unwrap_or(OperationError { code: None, message: None });
                    return Err(AzureError::OperationFailed {
                        status: status.status,
                        code: err.code.unwrap_or_else(|| "OperationFailed".into()),
                        message: err.message.unwrap_or_default(),
                        resource: resource.to_owned(),
                    });
                }
                _ => continue,
            }
        }
    }

    async fn poll_location(
        &self,
        url: Url,
        resource: &str,
        started: Instant,
        deadline: Duration,
        mut wait: Option<Duration>,
    ) -> Result<Option<Value>, AzureError> {
        let mut backoff = PollBackoff::default();
        loop {
            sleep_within(wait.unwrap_or_else(|| backoff.next()), started, deadline, resource).await?;
            let resp = self.send(Request::new(Method::GET, url.clone(), resource)).await;
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
            if let Some(state) = body
                .as_ref()
                .and_then(|b| b.pointer("/status").or_else(|| b.pointer("/properties/provisioningState")))
                .and_then(Value::as_str)
            {
                if state == "Failed" || state == "Canceled" {
                    return Err(AzureError::OperationFailed {
                        status: state.to_owned(),
                        code: body
                            .as_ref()
                            .and_then(|b| b.pointer("/error/code"))
                            .and_then(Value::as_str)
                            .unwrap_or("OperationFailed")
                            .to_owned(),
                        message: body
                            .as_ref()
                            .and_then(|b| b.pointer("/error/message"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        resource: resource.to_owned(),
                    });
                }
            }
            return Ok(body);
        }
    }
}

/// Reads the LRO headers of a first response. `Azure-AsyncOperation` wins when both are present,
/// as ARM's guidance says.
pub fn lro_style(status: StatusCode, headers: &HeaderMap) -> LroStyle {
    if status != StatusCode::CREATED && status != StatusCode::ACCEPTED {
        return LroStyle::Done;
    }
    let header_url = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| Url::parse(s).ok());
    if let Some(u) = header_url("azure-asyncoperation") {
        LroStyle::AsyncOperation(u)
    } else if let Some(u) = header_url(LOCATION.as_str()) {
        LroStyle::Location(u)
    } else {
        LroStyle::Done
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
}

async fn sleep_within(wait: Duration, started: Instant, deadline: Duration, resource: &str) -> Result<(), AzureError> {
    let elapsed = started.elapsed();
    if elapsed >= deadline {
        return Err(AzureError::Timeout { resource: resource.to_owned(), after: elapsed });
    }
    tokio::time::sleep(wait.min(deadline - elapsed)).await;
    Ok(())
}

/// Polls quickly at first (most operations here finish in seconds), then settles at 5 s.
#[derive(Default)]
struct PollBackoff(u32);

impl PollBackoff {
    fn next(&mut self) -> Duration {
        self.0 += 1;
        Duration::from_millis((250u64 << self.0.min(5)).min(5_000))
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

    #[test]
    fn poll_backoff_starts_fast_and_is_bounded() {
        let mut b = PollBackoff::default();
        let first = b.next();
        assert_eq!(first, Duration::from_millis(500));
        for _ in 0..20 {
            assert!(b.next() <= Duration::from_secs(5));
        }
    }
}
