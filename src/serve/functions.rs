//! The three functions: `phase` (HTTP: start, status, plan), `status` (HTTP: the registry and
//! health as JSON or the Day-0 page) and `health` (the timer). Each request is checked in full
//! before anything runs; a bad one gets a 4xx with `{"error": {"code", "message"}}`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::envelope::{HttpRequest, HttpResponse, MAX_BODY};
use super::jobs::{JobError, Jobs, Started, Status};
use crate::phases;
use crate::run::{self, RunOptions, Target};
use crate::sequence::{self, Step};

pub struct Functions {
    pub jobs: Arc<Jobs>,
    pub config_file: Option<std::path::PathBuf>,
}

fn built_phases() -> Vec<&'static str> {
    sequence::steps().filter(|s| phases::built(*s)).map(Step::id).collect()
}

fn job_error(e: JobError) -> HttpResponse {
    match e {
        JobError::Config(e) => {
            HttpResponse::error(500, "InvalidConfiguration", format!("the function app's settings: {e}"))
        }
        JobError::Ledger(e) => HttpResponse::error(503, "LedgerUnavailable", e.to_string()),
    }
}

fn method_not_allowed(method: &str, allowed: &str) -> HttpResponse {
    HttpResponse::error(405, "MethodNotAllowed", format!("{method} is not allowed here; use {allowed}"))
        .with_header("Allow", allowed)
}

/// A start request carries no input: the configuration is the app's settings, so a body can
/// only be empty or `{}`. Anything else is refused, so no caller can point the binary at another
/// registry or vault.
fn check_body(body: &[u8]) -> Result<(), HttpResponse> {
    if body.len() > MAX_BODY {
        return Err(HttpResponse::error(
            413,
            "BodyTooLarge",
            format!("the body is {} bytes; at most {MAX_BODY}", body.len()),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Err(e) => Err(HttpResponse::error(400, "MalformedJson", format!("the body is not JSON: {e}"))),
        Ok(Value::Object(m)) if m.is_empty() => Ok(()),
        Ok(_) => Err(HttpResponse::error(
            400,
            "BodyNotAccepted",
            "a request cannot carry configuration or input: send no body (or {}); the function app's settings configure every phase",
        )),
    }
}

fn status_url(step: Step) -> String {
    format!("/api/phase/{}", step.id())
}

impl Functions {
    /// `phase/{name}` (POST starts, GET shows the status) and `phase/{name}/plan` (GET).
    pub async fn phase(&self, req: &HttpRequest) -> HttpResponse {
        let (name, action) = match req.params.as_slice() {
            [name] => (name.as_str(), None),
            [name, action] => (name.as_str(), Some(action.as_str())),
            _ => return HttpResponse::error(404, "NotFound", "use /api/phase/{name} or /api/phase/{name}/plan"),
        };
        let step = match Step::parse(name).filter(|s| phases::built(*s)) {
            Some(s) => s,
            None => {
                return HttpResponse::error(
                    404,
                    "UnknownPhase",
                    format!("no phase {name:?}; the phases are {}", built_phases().join(", ")),
                )
            }
        };
        match (action, req.method.as_str()) {
            (Some("plan"), "GET") => self.plan(step).await,
            (Some("plan"), m) => method_not_allowed(m, "GET"),
            (Some(other), _) => HttpResponse::error(404, "NotFound", format!("no action {other:?}; only plan")),
            (None, "POST") => match check_body(&req.body) {
                Err(res) => res,
                Ok(()) => self.start(step).await,
            },
            (None, "GET") => self.status(step).await,
            (None, m) => method_not_allowed(m, "GET, POST"),
        }
    }

    async fn start(&self, step: Step) -> HttpResponse {
        let url = status_url(step);
        let accepted = |state: &str, started_at: String| {
            HttpResponse::json(
                202,
                &json!({"phase": step.id(), "status": "running", "startedAt": started_at, "statusUrl": url, "request": state}),
            )
            .with_header("Location", url.clone())
            .with_header("Retry-After", "2")
        };
        match self.jobs.start(step).await {
            Ok(Started::New { started_at }) => accepted("started", started_at),
            Ok(Started::Joined { started_at }) => accepted("joined", started_at),
            Ok(Started::Done(r)) => HttpResponse::error(
                409,
                "PhaseAlreadySucceeded",
                format!(
                    "the ledger records phase {} {} (attempt {}, started {}); Day-2 changes are not part of the install (RFC-60), so it does not run again",
                    step.id(), r.status, r.attempt, r.started_at
                ),
            )
            .with_header("Location", url),
            Err(e) => job_error(e),
        }
    }

    async fn status(&self, step: Step) -> HttpResponse {
        match self.jobs.status(step).await {
            Ok(Status::Finished(outputs)) => HttpResponse::json(200, &outputs),
            Ok(Status::Running { started_at, record }) => HttpResponse::json(
                202,
                &json!({"phase": step.id(), "status": "running", "startedAt": started_at,
                        "progress": record.as_ref().filter(|r| r.status == "running").map(|r| Value::Object(r.steps.clone()))}),
            )
            .with_header("Retry-After", "2"),
            Ok(Status::Recorded(r)) if r.status == "running" => HttpResponse::json(
                202,
                &json!({"phase": step.id(), "status": "running", "startedAt": r.started_at, "attempt": r.attempt,
                        "progress": r.steps,
                        "note": "another worker runs it, or a stopped one left it; a POST resumes it once its lease lapses"}),
            )
            .with_header("Retry-After", "2"),
            Ok(Status::Recorded(r)) => HttpResponse::json(
                200,
                &json!({"phase": step.id(), "status": r.status, "startedAt": r.started_at, "endedAt": r.ended_at,
                        "attempt": r.attempt, "changes": r.changes, "error": r.error}),
            ),
            Ok(Status::NotStarted) => HttpResponse::error(
                404,
                "PhaseNotStarted",
                format!("phase {} has no record yet; POST {} starts it", step.id(), status_url(step)),
            ),
            Err(e) => job_error(e),
        }
    }

    /// The dry-run plan, exactly as `run <phase> --dry-run --json` prints it.
    async fn plan(&self, step: Step) -> HttpResponse {
        let opts = RunOptions { dry_run: true, config_file: self.config_file.clone(), ..RunOptions::default() };
        let ran = run::run(Target::Step(step), &opts).await;
        match (ran.plans.into_iter().next(), ran.error) {
            (Some(plan), None) => HttpResponse::json(200, &plan),
            (_, e) => {
                let outputs = ran.outputs.first().map(|o| serde_json::to_value(o).expect("outputs serialize"));
                let code = if e.as_ref().is_some_and(|e| e.exit_code() == 2) { 500 } else { 502 };
                HttpResponse::json(
                    code,
                    &json!({"error": outputs.and_then(|o| o.get("error").cloned()), "phase": step.id()}),
                )
            }
        }
    }

    /// `status`: the Day-0 report's data as JSON, or the page (`?format=html`, or a browser's
    /// `Accept: text/html`).
    pub async fn status_function(&self, req: &HttpRequest) -> HttpResponse {
        if req.method != "GET" {
            return method_not_allowed(&req.method, "GET");
        }
        let html = match req.query.get("format").map(String::as_str) {
            Some("html") => true,
            Some("json") => false,
            Some(other) => {
                return HttpResponse::error(400, "UnknownFormat", format!("format {other:?}; use json or html"))
            }
            None => req.header("accept").is_some_and(|a| a.contains("text/html")),
        };
        let (ctx, db) = match crate::report::load(self.config_file.as_deref()) {
            Ok(l) => l,
            Err(e) => {
                return HttpResponse::error(500, "InvalidConfiguration", format!("the function app's settings: {e}"))
            }
        };
        let data = crate::report::gather(&ctx, &db).await;
        if html {
            HttpResponse {
                status: 200,
                content_type: "text/html; charset=utf-8",
                headers: Vec::new(),
                body: crate::report::render(&data),
            }
        } else {
            HttpResponse::json(200, &serde_json::to_value(&data).expect("report serializes"))
        }
    }

    /// The timer: refresh health into the registry. An overlapping firing in this worker joins
    /// the running one; across workers the phase lock serialises them.
    pub async fn health_timer(&self) -> (Value, Vec<String>) {
        let mut logs = Vec::new();
        match self.jobs.start(Step::Health).await {
            Ok(Started::Joined { started_at }) => logs.push(format!("health: joined the run started {started_at}")),
            Ok(_) => logs.push("health: started".to_owned()),
            Err(e) => {
                logs.push(format!("health: not started: {e}"));
                return (json!({"error": e.to_string()}), logs);
            }
        }
        let outputs = self.jobs.wait(Step::Health).await.map(|v| (*v).clone()).unwrap_or(Value::Null);
        logs.push(format!(
            "health {}: {} status transitions, overall {}",
            outputs["status"].as_str().unwrap_or("?"),
            outputs["changes"],
            outputs["summary"]["overall"].as_str().unwrap_or("?")
        ));
        (outputs, logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(), HttpResponse>) -> Option<(u16, String)> {
        r.err().map(|res| {
            let v: Value = serde_json::from_str(&res.body).unwrap();
            (res.status, v["error"]["code"].as_str().unwrap().to_owned())
        })
    }

    #[test]
    fn a_start_request_carries_nothing() {
        assert_eq!(code(check_body(b"")), None);
        assert_eq!(code(check_body(b" \n")), None);
        assert_eq!(code(check_body(b"{}")), None);
        assert_eq!(code(check_body(b"{bad")), Some((400, "MalformedJson".into())));
        assert_eq!(
            code(check_body(br#"{"VIBEDATA_KEY_VAULT_URL": "https://evil"}"#)),
            Some((400, "BodyNotAccepted".into()))
        );
        assert_eq!(code(check_body(b"[]")), Some((400, "BodyNotAccepted".into())));
        assert_eq!(code(check_body(&vec![b' '; MAX_BODY + 1])), Some((413, "BodyTooLarge".into())));
    }

    #[test]
    fn only_built_steps_are_phases_over_http() {
        let names = built_phases();
        assert!(names.contains(&"artifacts") && names.contains(&"health"));
        assert!(!names.contains(&"preflight") && !names.contains(&"all"));
    }
}
