//! The one long-running operation type every emulated ARM operation uses (`specs/arm-common.md`
//! §2), whoever owns it: ARM's own (resource-group delete, deployments, `operations.rs`),
//! `importImage` (`import/`), Automation's draft replace and publish (`automation/`).
//!
//! An [`Operation`] runs for [`Plan::polls`] observations and at least [`Plan::min_duration`],
//! then is *due*: its owner completes it with an [`Outcome`] (a final result body, or a
//! [`Failure`] with an ARM `ErrorDetail`). Owners whose work happens elsewhere (an import's copy
//! task, and later AKS `runCommand`'s command) call [`Operation::finish`] themselves whenever it
//! ends; owners whose effect is applied on completion implement [`Owner`] and let [`advance`]
//! apply it. Observations are polls of the operation's URL, or GETs of the resource it changes.
//!
//! Both polling styles answer from the same state:
//! - `Location` ([`Operation::location_answer`]): `202` + `Location` + `Retry-After` (and a body,
//!   when the owner set [`Operation::running_body`]) while running, then `200` with the result
//!   body (or none), or the failure's status with ARM's error body.
//! - `Azure-AsyncOperation` ([`Operation::status_answer`]): `200` with the status resource
//!   (`OperationStatusResult`: `Running`, then `Succeeded` or `Failed` with `error`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::http::{arm_error, json, now_rfc3339};

/// How long an operation runs before it is due.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// Observations answered "running" first (`lro.polls`, `automation.publishPolls`).
    pub polls: u32,
    /// And at least this long (`automation.publishDurationMs`).
    pub min_duration: Duration,
}

/// How an operation ends badly: the status a `Location` poll answers and the ARM `ErrorDetail`
/// (`{"code","message"[,"details"]}`) both styles report.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub error: Value,
}

impl Failure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
        Failure { status, error: json!({"code": code, "message": message.into()}) }
    }

    pub fn code(&self) -> &str {
        self.error["code"].as_str().unwrap_or_default()
    }

    pub fn message(&self) -> &str {
        self.error["message"].as_str().unwrap_or_default()
    }

    /// The failure as an immediate answer: its status and ARM's error body.
    pub fn response(&self) -> Response {
        json(self.status, json!({"error": self.error}))
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// With the final result body a `Location` poll returns (`None`: an empty `200`).
    Succeeded(Option<Value>),
    Failed(Failure),
}

/// Where an observation left the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Running,
    /// Polls and duration are over and it has no outcome yet: the owner completes it now.
    Due,
    Done,
}

#[derive(Debug, Clone)]
pub struct Operation<K> {
    /// The owner's description of what completes it.
    pub kind: K,
    pub started: String,
    pub ended: Option<String>,
    /// What a running `Location` poll carries besides the headers (AKS `runCommand` answers
    /// `{"id","properties":{"provisioningState":"Running",..}}`, which `az`'s poller reads).
    pub running_body: Option<Value>,
    polls_left: u32,
    not_before: Instant,
    outcome: Option<Outcome>,
}

impl<K> Operation<K> {
    pub fn new(kind: K, plan: Plan) -> Operation<K> {
        Operation {
            kind,
            started: now_rfc3339(),
            ended: None,
            running_body: None,
            polls_left: plan.polls,
            not_before: Instant::now() + plan.min_duration,
            outcome: None,
        }
    }

    /// One observation: counts a poll down; [`Step::Due`] once the plan is over.
    pub fn observe(&mut self) -> Step {
        if self.outcome.is_some() {
            return Step::Done;
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            return Step::Running;
        }
        if Instant::now() < self.not_before {
            return Step::Running;
        }
        Step::Due
    }

    /// Ends the operation (the first outcome wins).
    pub fn finish(&mut self, outcome: Outcome) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
            self.ended = Some(now_rfc3339());
        }
    }

    pub fn is_running(&self) -> bool {
        self.outcome.is_none()
    }

    /// The `Location` poll's answer; `location` is where to poll next (the URL polled).
    pub fn location_answer(&self, location: &str, retry_after: u32) -> Response {
        match &self.outcome {
            None => {
                let mut resp = match &self.running_body {
                    Some(body) => json(StatusCode::ACCEPTED, body.clone()),
                    None => StatusCode::ACCEPTED.into_response(),
                };
                set_location(&mut resp, location, retry_after);
                resp
            }
            Some(Outcome::Succeeded(Some(body))) => json(StatusCode::OK, body.clone()),
            Some(Outcome::Succeeded(None)) => StatusCode::OK.into_response(),
            Some(Outcome::Failed(f)) => f.response(),
        }
    }

    /// The `Azure-AsyncOperation` status resource: `id` is its path, `name` the operation id.
    pub fn status_answer(&self, id: &str, name: &str, retry_after: u32) -> Response {
        let mut body = json!({"id": id, "name": name, "startTime": self.started});
        match &self.outcome {
            None => {
                body["status"] = json!("Running");
                let mut resp = json(StatusCode::OK, body);
                set_retry_after(&mut resp, retry_after);
                return resp;
            }
            Some(Outcome::Failed(f)) => {
                body["status"] = json!("Failed");
                body["error"] = f.error.clone();
            }
            Some(Outcome::Succeeded(_)) => body["status"] = json!("Succeeded"),
        }
        body["endTime"] = json!(self.ended);
        json(StatusCode::OK, body)
    }
}

/// An owner's operations by id (ids compare case-insensitively, as ARM paths do).
#[derive(Debug)]
pub struct Operations<K> {
    map: HashMap<String, Operation<K>>,
}

impl<K> Default for Operations<K> {
    fn default() -> Self {
        Operations { map: HashMap::new() }
    }
}

impl<K> Operations<K> {
    pub fn insert(&mut self, id: &str, op: Operation<K>) {
        self.map.insert(id.to_ascii_lowercase(), op);
    }

    pub fn get(&self, id: &str) -> Option<&Operation<K>> {
        self.map.get(&id.to_ascii_lowercase())
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Operation<K>> {
        self.map.get_mut(&id.to_ascii_lowercase())
    }

    pub fn ids_where(&self, keep: impl Fn(&Operation<K>) -> bool) -> Vec<String> {
        self.map.iter().filter(|(_, op)| keep(op)).map(|(id, _)| id.clone()).collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &Operation<K>> {
        self.map.values()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// An owner whose operations complete by applying an effect to its own state (under its lock,
/// so no request sees the operation done and the effect not yet applied).
pub trait Owner {
    type Kind: Clone;
    fn operations(&mut self) -> &mut Operations<Self::Kind>;
    /// Applies the operation's effect; returns how it ended.
    fn complete(&mut self, kind: &Self::Kind) -> Outcome;
    /// Called on each observation that leaves it running (e.g. a deployment turns `Running`).
    fn running(&mut self, _kind: &Self::Kind) {}
}

/// One observation of operation `id`, completing it when due. Returns it as it is afterwards.
pub fn advance<S: Owner>(owner: &mut S, id: &str) -> Option<Operation<S::Kind>> {
    let op = owner.operations().get_mut(id)?;
    let step = op.observe();
    let kind = op.kind.clone();
    match step {
        Step::Running => owner.running(&kind),
        Step::Due => {
            let outcome = owner.complete(&kind);
            owner.operations().get_mut(id)?.finish(outcome);
        }
        Step::Done => {}
    }
    owner.operations().get(id).cloned()
}

/// `202 Accepted` + `Location` + `Retry-After`: the first answer of a `Location` operation.
pub fn accepted(location: &str, retry_after: u32) -> Response {
    let mut resp = StatusCode::ACCEPTED.into_response();
    set_location(&mut resp, location, retry_after);
    resp
}

/// Adds `Azure-AsyncOperation` (the status URL) and `Retry-After` to a 201/200 answer.
pub fn with_async_operation(mut resp: Response, status_url: &str, retry_after: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(status_url) {
        resp.headers_mut().insert("azure-asyncoperation", v);
    }
    set_retry_after(&mut resp, retry_after);
    resp
}

fn set_location(resp: &mut Response, location: &str, retry_after: u32) {
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    set_retry_after(resp, retry_after);
}

fn set_retry_after(resp: &mut Response, seconds: u32) {
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
}

/// ARM's answer for an operation id nobody started.
pub fn not_found(id: &str) -> Response {
    arm_error(StatusCode::NOT_FOUND, "OperationNotFound", format!("The operation '{id}' could not be found."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter {
        ops: Operations<&'static str>,
        applied: Vec<&'static str>,
        running: u32,
    }

    impl Owner for Counter {
        type Kind = &'static str;
        fn operations(&mut self) -> &mut Operations<&'static str> {
            &mut self.ops
        }
        fn complete(&mut self, kind: &&'static str) -> Outcome {
            self.applied.push(kind);
            if *kind == "bad" {
                Outcome::Failed(Failure::new(StatusCode::CONFLICT, "Nope", "it failed"))
            } else {
                Outcome::Succeeded(Some(json!({"done": kind})))
            }
        }
        fn running(&mut self, _: &&'static str) {
            self.running += 1;
        }
    }

    async fn body(resp: Response) -> (StatusCode, Option<String>, Value) {
        let status = resp.status();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, location, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn polls_then_the_owner_completes_it_once_with_a_result() {
        let mut c = Counter::default();
        c.ops.insert("Op-1", Operation::new("good", Plan { polls: 2, min_duration: Duration::ZERO }));
        for _ in 0..2 {
            let op = advance(&mut c, "op-1").unwrap();
            assert!(op.is_running());
            assert_eq!(body(op.location_answer("https://h/op", 3)).await.0, StatusCode::ACCEPTED);
        }
        let op = advance(&mut c, "OP-1").unwrap();
        assert_eq!(body(op.location_answer("https://h/op", 3)).await, (StatusCode::OK, None, json!({"done": "good"})));
        advance(&mut c, "op-1").unwrap();
        assert_eq!((c.applied.len(), c.running), (1, 2), "the effect is applied exactly once");
        assert!(advance(&mut c, "other").is_none());
    }

    #[tokio::test]
    async fn both_styles_report_a_failure_with_its_error_detail() {
        let mut c = Counter::default();
        c.ops.insert("f", Operation::new("bad", Plan::default()));
        let running = c.ops.get("f").unwrap().status_answer("/x/f", "f", 1);
        assert_eq!(running.headers()["retry-after"], "1");
        assert_eq!(body(running).await.2["status"], "Running");
        let op = advance(&mut c, "f").unwrap();
        let (_, _, status) = body(op.status_answer("/x/f", "f", 1)).await;
        assert_eq!((status["status"].as_str(), status["error"]["code"].as_str()), (Some("Failed"), Some("Nope")));
        assert!(status["endTime"].is_string());
        let (code, _, err) = body(op.location_answer("https://h/f", 1)).await;
        assert_eq!((code, err["error"]["message"].as_str()), (StatusCode::CONFLICT, Some("it failed")));
    }

    #[tokio::test]
    async fn a_background_operation_waits_for_its_finish_and_shows_its_running_body() {
        let mut op = Operation::new((), Plan::default());
        op.running_body = Some(json!({"properties": {"provisioningState": "Running"}}));
        assert_eq!(op.observe(), Step::Due, "due, but only its own task can finish it");
        let (status, location, running) = body(op.location_answer("https://h/r", 1)).await;
        assert_eq!((status, location.as_deref()), (StatusCode::ACCEPTED, Some("https://h/r")));
        assert_eq!(running["properties"]["provisioningState"], "Running");
        op.finish(Outcome::Succeeded(None));
        op.finish(Outcome::Failed(Failure::new(StatusCode::BAD_REQUEST, "Late", "ignored")));
        assert_eq!(op.observe(), Step::Done);
        let resp = op.location_answer("https://h/r", 1);
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get("content-type").is_none(), "no result body: an empty 200");
    }

    #[test]
    fn the_duration_holds_a_due_operation_back() {
        let mut op = Operation::new((), Plan { polls: 0, min_duration: Duration::from_secs(60) });
        assert_eq!(op.observe(), Step::Running);
    }
}
