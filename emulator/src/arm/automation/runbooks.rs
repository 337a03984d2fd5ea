//! Runbook routes: the runbook, its draft, publish and its long-running operation, content.

use super::*;
use crate::arm::lro::{self, Operation, Plan};

pub(super) fn list_runbooks(ctx: &Ctx, data: &AutomationData) -> Response {
    let items = data.runbooks.values().map(|rb| ctx.runbook_json(rb)).collect();
    ctx.page(items)
}

pub(super) fn get_runbook(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    data.observe_runbook(&ctx.name().to_ascii_lowercase());
    Ok(json(StatusCode::OK, ctx.runbook_json(runbook(ctx, data)?)))
}

/// `PUT .../runbooks/{n}`: `RunbookCreateOrUpdateParameters`, 201 created / 200 replaced.
pub(super) fn put_runbook(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let name = ctx.name();
    if !valid_name(name) {
        return Err(bad_request(format!(
            "The runbook name '{name}' is invalid: it must match '^[a-zA-Z][a-zA-Z-_0-9]*$' and be at most 63 characters long."
        )));
    }
    let body = body_object(ctx.req)?;
    let Some(props) = body.get("properties").filter(|p| p.is_object()) else {
        return Err(bad_request("The 'properties' of the runbook are required (RunbookCreateOrUpdateParameters)."));
    };
    let Some(requested_type) = opt_str(props, "runbookType")? else {
        return Err(bad_request("The property 'properties.runbookType' is required."));
    };
    let allowed = if ctx.has_runtime_environments() { CREATE_TYPES_2024 } else { CREATE_TYPES_2023 };
    let Some(runbook_type) = allowed.iter().find(|t| t.eq_ignore_ascii_case(&requested_type)) else {
        return Err(bad_request(format!(
            "The runbook type '{requested_type}' is not supported in api-version {}. Supported types: {}.",
            ctx.req.api_version(),
            allowed.join(", ")
        )));
    };
    let has_draft = props.get("draft").is_some_and(|d| !d.is_null());
    let has_link = props.get("publishContentLink").is_some_and(|d| !d.is_null());
    if has_draft && has_link {
        return Err(bad_request("Provide either content link for a published runbook or draft, not both."));
    }
    if has_link {
        return Err(bad_request(
            "The emulator cannot fetch 'publishContentLink.uri' (Azure Automation would download it from a public or SAS URL). \
             Create the runbook with 'draft': {}, replace its draft content (PUT .../draft/content) and publish it (POST .../publish).",
        ));
    }
    if props.get("draft").is_some_and(|d| !d.is_null() && !d.is_object()) {
        return Err(bad_request("The property 'properties.draft' must be an object."));
    }
    let runtime_environment = if ctx.has_runtime_environments() {
        match opt_str(props, "runtimeEnvironment")? {
            Some(env) => Some(resolve_runtime(data, ctx.cfg, &env, runbook_type)?),
            None => None,
        }
    } else {
        // 2023-11-01 has no such property; the service ignores what it does not know.
        None
    };
    let description = opt_str(props, "description")?;
    let log_verbose = opt_bool(props, "logVerbose")?.unwrap_or(false);
    let log_progress = opt_bool(props, "logProgress")?.unwrap_or(false);
    let log_activity_trace = opt_int(props, "logActivityTrace")?.unwrap_or(0);
    let tags = opt_tags(&body)?.unwrap_or_else(|| json!({}));
    let location = opt_str(&Value::Object(body.clone()), "location")?.unwrap_or_else(|| ctx.cfg.location.clone());
    let etag = data.etag();
    let now = now_rfc3339();
    let key = name.to_ascii_lowercase();
    let created = !data.runbooks.contains_key(&key);
    let rb = data.runbooks.entry(key).or_insert_with(|| Runbook {
        name: name.to_owned(),
        location: location.clone(),
        tags: json!({}),
        runbook_type: runbook_type.to_string(),
        runtime_environment: None,
        description: None,
        log_verbose: false,
        log_progress: false,
        log_activity_trace: 0,
        draft: None,
        in_edit: false,
        draft_created: now.clone(),
        draft_modified: now.clone(),
        published: None,
        created: now.clone(),
        modified: now.clone(),
        etag: etag.clone(),
        publish_count: 0,
        publish_failures: 0,
        last_published: None,
        last_publish_error: None,
    });
    // A replace keeps content and state; the metadata is the new request's.
    rb.location = location;
    rb.tags = tags;
    rb.runbook_type = runbook_type.to_string();
    if ctx.has_runtime_environments() {
        rb.runtime_environment = runtime_environment;
    }
    rb.description = description;
    rb.log_verbose = log_verbose;
    rb.log_progress = log_progress;
    rb.log_activity_trace = log_activity_trace;
    rb.modified = now;
    rb.etag = etag;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json(status, ctx.runbook_json(rb)))
}

/// `PATCH .../runbooks/{n}`: `RunbookUpdateParameters` (description, log flags, tags, and in
/// 2024-10-23 the runtime environment, as the runtime-environment doc re-links runbooks).
pub(super) fn patch_runbook(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    runbook(ctx, data)?;
    let body = body_object(ctx.req)?;
    let empty = json!({});
    let props = match body.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(bad_request("The property 'properties' must be an object.")),
    };
    let runtime_environment =
        match ctx.has_runtime_environments().then(|| opt_str(props, "runtimeEnvironment")).transpose()?.flatten() {
            Some(env) => {
                let rb_type = runbook(ctx, data)?.runbook_type.clone();
                Some(resolve_runtime(data, ctx.cfg, &env, &rb_type)?)
            }
            None => None,
        };
    let description = opt_str(props, "description")?;
    let log_verbose = opt_bool(props, "logVerbose")?;
    let log_progress = opt_bool(props, "logProgress")?;
    let log_activity_trace = opt_int(props, "logActivityTrace")?;
    let tags = opt_tags(&body)?;
    let etag = data.etag();
    let rb = runbook_mut(ctx, data)?;
    if let Some(env) = runtime_environment {
        rb.runtime_environment = Some(env);
    }
    if let Some(d) = description {
        rb.description = Some(d);
    }
    if let Some(v) = log_verbose {
        rb.log_verbose = v;
    }
    if let Some(v) = log_progress {
        rb.log_progress = v;
    }
    if let Some(v) = log_activity_trace {
        rb.log_activity_trace = v;
    }
    if let Some(t) = tags {
        rb.tags = t;
    }
    rb.modified = now_rfc3339();
    rb.etag = etag;
    Ok(json(StatusCode::OK, ctx.runbook_json(rb)))
}

pub(super) fn delete_runbook(ctx: &Ctx, data: &mut AutomationData) -> Response {
    match data.runbooks.remove(&ctx.name().to_ascii_lowercase()) {
        Some(_) => StatusCode::OK.into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `GET .../runbooks/{n}/draft`: `RunbookDraft`.
pub(super) fn get_draft(ctx: &Ctx, data: &AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    let draft = &ctx.runbook_json(rb)["properties"]["draft"];
    Ok(json(StatusCode::OK, draft.clone()))
}

pub(super) fn get_draft_content(ctx: &Ctx, data: &AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    match &rb.draft {
        Some(c) => Ok(script(c)),
        None => Err(arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("The runbook '{}' has no draft content.", rb.name),
        )),
    }
}

/// `PUT .../draft/content` with the script as the raw body.
pub(super) fn put_draft_content(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    runbook(ctx, data)?;
    if let Some(ct) = &ctx.req.content_type {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !mime.starts_with("text/") && mime != "application/octet-stream" {
            return Err(arm_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "The content type '{ct}' is not supported: send the script as the raw body (text/powershell, text/plain or application/octet-stream)."
                ),
            ));
        }
    }
    if ctx.req.body.is_empty() {
        return Err(bad_request("The runbook draft content is empty."));
    }
    let content = Content::new(&ctx.req.body);
    let etag = data.etag();
    let now = now_rfc3339();
    let rb = runbook_mut(ctx, data)?;
    rb.draft = Some(content);
    rb.in_edit = true;
    rb.draft_modified = now.clone();
    rb.modified = now;
    rb.etag = etag;
    let op = RunbookOp { runbook: rb.name.to_ascii_lowercase(), action: Action::Draft };
    let id = uuid::Uuid::new_v4().to_string();
    let plan = Plan { polls: ctx.lro.polls, ..Plan::default() };
    crate::latency::record("automation", "draft", &op.runbook, plan, ctx.lro.retry_after);
    data.ops.insert(&id, Operation::new(op, plan));
    Ok(lro::accepted(&ctx.operation_url("draft/content", &id), ctx.lro.retry_after))
}

/// `POST .../draft/undoEdit`: the draft goes back to the published content.
pub(super) fn undo_edit(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let etag = data.etag();
    let rb = runbook_mut(ctx, data)?;
    let Some(published) = rb.published.clone() else {
        return Err(bad_request(format!(
            "The runbook '{}' has never been published: there is no published version to return to.",
            rb.name
        )));
    };
    rb.draft = Some(published);
    rb.in_edit = false;
    rb.draft_modified = now_rfc3339();
    rb.etag = etag;
    Ok(json(StatusCode::OK, json!({"statusCode": "OK", "requestId": uuid::Uuid::new_v4().to_string()})))
}

/// `POST .../publish` (no body): 202 + Location.
pub(super) fn publish(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    let Some(content) = rb.draft.clone() else {
        return Err(bad_request(format!(
            "The runbook '{}' has no draft content to publish: replace its draft content (PUT .../draft/content) first.",
            rb.name
        )));
    };
    let (name, key) = (rb.name.clone(), rb.name.to_ascii_lowercase());
    let injected = data.take_failure(&name);
    let polls = data.settings.publish_polls.unwrap_or(ctx.lro.polls);
    let duration = Duration::from_millis(data.settings.publish_duration_ms);
    let id = uuid::Uuid::new_v4().to_string();
    let op = RunbookOp {
        runbook: key,
        action: Action::Publish {
            content,
            injected,
            resource: format!("{ACCOUNT_TYPE}/{}/runbooks/{name}", ctx.cfg.automation_account),
            group: ctx.req.segs[3].clone(),
        },
    };
    let plan = Plan { polls, min_duration: duration };
    crate::latency::record("automation", "publish", &op.runbook, plan, ctx.lro.retry_after);
    data.ops.insert(&id, Operation::new(op, plan));
    Ok(lro::accepted(&ctx.operation_url("publish", &id), ctx.lro.retry_after))
}

/// The `Location` of a draft replace or a publish: 202 while running, then 200 (no body), or
/// the failure's status with an ARM error body.
pub(super) fn poll(ctx: &Ctx, data: &mut AutomationData, tail: &str) -> Response {
    let id = ctx.req.param("operationId");
    let want_publish = tail == "publish";
    let known = data
        .ops
        .get(id)
        .is_some_and(|op| op.kind.runbook == ctx.name().to_ascii_lowercase() && op.kind.is_publish() == want_publish);
    let op = known.then(|| lro::advance(data, id)).flatten();
    match op {
        Some(op) => op.location_answer(&ctx.operation_url(tail, id), ctx.lro.retry_after),
        None => lro::not_found(id),
    }
}

/// `GET .../runbooks/{n}/content`: the published script.
pub(super) fn get_content(ctx: &Ctx, data: &AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    match &rb.published {
        Some(c) => Ok(script(c)),
        None => Err(arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("The runbook '{}' has not been published: it has no published content.", rb.name),
        )),
    }
}
