//! Runtime environment routes (2024-10-23).

use super::*;

// ---------------------------------------------------------------------------------------------
// Runtime environments.

pub(super) fn list_runtime_environments(ctx: &Ctx, data: &AutomationData) -> Response {
    let items = data.runtime_environments.values().map(|e| ctx.runtime_environment_json(e)).collect();
    ctx.page(items)
}

pub(super) fn runtime_environment<'d>(ctx: &Ctx, data: &'d AutomationData) -> Result<&'d RuntimeEnvironment, Response> {
    data.runtime_environments.get(&ctx.name().to_ascii_lowercase()).ok_or_else(|| ctx.not_found("runtimeEnvironments"))
}

pub(super) fn get_runtime_environment(ctx: &Ctx, data: &AutomationData) -> Answer {
    Ok(json(StatusCode::OK, ctx.runtime_environment_json(runtime_environment(ctx, data)?)))
}

pub(super) fn packages(props: &Value) -> Result<Option<Map<String, Value>>, Response> {
    match props.get("defaultPackages") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(p)) if p.values().all(Value::is_string) => Ok(Some(p.clone())),
        Some(_) => {
            Err(bad_request("The property 'properties.defaultPackages' must be an object of package name to version."))
        }
    }
}

/// `PUT .../runtimeEnvironments/{n}`: 201 created / 200 updated; language and version are
/// immutable.
pub(super) fn put_runtime_environment(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let name = ctx.name();
    let key = name.to_ascii_lowercase();
    let existing = data.runtime_environments.get(&key).cloned();
    // Existing ones (the seeded, system-generated names contain dots) are not re-checked.
    if existing.is_none() && !valid_name(name) {
        return Err(bad_request(format!(
            "The runtime environment name '{name}' is invalid: it must match '^[a-zA-Z][a-zA-Z-_0-9]*$' and be at most 63 characters long."
        )));
    }
    let body = body_object(ctx.req)?;
    let Some(props) = body.get("properties").filter(|p| p.is_object()) else {
        return Err(bad_request("The 'properties' of the runtime environment are required."));
    };
    let runtime = match props.get("runtime") {
        None | Some(Value::Null) => None,
        Some(r @ Value::Object(_)) => Some((opt_str(r, "language")?, opt_str(r, "version")?)),
        Some(_) => return Err(bad_request("The property 'properties.runtime' must be an object.")),
    };
    let (language, version) = match (&existing, runtime) {
        (None, Some((Some(l), Some(v)))) => {
            let Some(language) = ["PowerShell", "Python"].iter().find(|x| x.eq_ignore_ascii_case(&l)) else {
                return Err(bad_request(format!(
                    "The runtime language '{l}' is not supported: use PowerShell or Python."
                )));
            };
            if v.is_empty() || !v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
                return Err(bad_request(format!("The runtime version '{v}' is invalid.")));
            }
            (language.to_string(), v)
        }
        (None, _) => {
            return Err(bad_request(
                "The properties 'properties.runtime.language' and 'properties.runtime.version' are required.",
            ))
        }
        (Some(e), runtime) => {
            if let Some((l, v)) = runtime {
                let changed =
                    l.is_some_and(|l| !l.eq_ignore_ascii_case(&e.language)) || v.is_some_and(|v| v != e.version);
                if changed {
                    return Err(bad_request(format!(
                        "The runtime language and version of runtime environment '{}' cannot be changed (it is {} {}).",
                        e.name, e.language, e.version
                    )));
                }
            }
            (e.language.clone(), e.version.clone())
        }
    };
    let default_packages = packages(props)?.unwrap_or_default();
    let description = opt_str(props, "description")?;
    let tags = opt_tags(&body)?.unwrap_or_else(|| json!({}));
    let location = opt_str(&Value::Object(body.clone()), "location")?.unwrap_or_else(|| ctx.cfg.location.clone());
    let env = RuntimeEnvironment {
        name: existing.as_ref().map_or(name.to_owned(), |e| e.name.clone()),
        location,
        tags,
        language,
        version,
        default_packages,
        description,
        system: existing.as_ref().is_some_and(|e| e.system),
    };
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    let body = ctx.runtime_environment_json(&env);
    data.runtime_environments.insert(key, env);
    Ok(json(status, body))
}

/// `PATCH .../runtimeEnvironments/{n}`: `defaultPackages`, `description`, `tags`.
pub(super) fn patch_runtime_environment(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    runtime_environment(ctx, data)?;
    let body = body_object(ctx.req)?;
    let empty = json!({});
    let props = body.get("properties").filter(|p| p.is_object()).unwrap_or(&empty);
    if props.get("runtime").is_some_and(|r| !r.is_null()) {
        return Err(bad_request("The runtime language and version of a runtime environment cannot be changed."));
    }
    let default_packages = packages(props)?;
    let description = opt_str(props, "description")?;
    let tags = opt_tags(&body)?;
    let env = data
        .runtime_environments
        .get_mut(&ctx.name().to_ascii_lowercase())
        .ok_or_else(|| ctx.not_found("runtimeEnvironments"))?;
    if let Some(p) = default_packages {
        env.default_packages = p;
    }
    if let Some(d) = description {
        env.description = Some(d);
    }
    if let Some(t) = tags {
        env.tags = t;
    }
    let body = ctx.runtime_environment_json(env);
    Ok(json(StatusCode::OK, body))
}

pub(super) fn delete_runtime_environment(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let key = ctx.name().to_ascii_lowercase();
    match data.runtime_environments.get(&key) {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(e) if e.system => {
            Err(bad_request(format!("The runtime environment '{}' is system-generated and cannot be deleted.", e.name)))
        }
        Some(_) => {
            data.runtime_environments.remove(&key);
            Ok(StatusCode::OK.into_response())
        }
    }
}
