use super::*;

/// The HTTP trigger value exactly as runtime-contracts §2.2 describes it: `Query` a JSON string,
/// `Headers` `{name: [values]}`, `Body` the raw string.
fn http_envelope(method: &str, url: &str, params: Value, body: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "Data": {"req": {
            "Url": url, "Method": method, "Query": "{\"format\":\"html\"}",
            "Headers": {"Content-Type": ["application/json"], "X-Trace": ["a", "b"]},
            "Params": params, "Body": body
        }},
        "Metadata": {"name": "artifacts", "sys": {"MethodName": "phase", "UtcNow": "2026-12-02T10:00:00Z", "RandGuid": "0f"}}
    }))
    .unwrap()
}

#[test]
fn an_http_trigger_envelope_becomes_a_request() {
    let body = http_envelope("post", "https://func.example/api/phase/artifacts", json!({"name": "artifacts"}), "");
    let Invocation::Http(r) = parse("phase", &body).unwrap() else { panic!("http") };
    assert_eq!(r.method, "POST");
    assert_eq!(r.params, ["artifacts"]);
    assert_eq!(r.query.get("format").map(String::as_str), Some("html"));
    assert_eq!(r.header("x-trace"), Some("a, b"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.body.is_empty());
}

#[test]
fn route_params_come_from_params_or_else_the_url() {
    let body = http_envelope("GET", "http://localhost:7071/api/phase/runbooks/plan?code=k", json!({}), "");
    let Invocation::Http(r) = parse("phase", &body).unwrap() else { panic!("http") };
    assert_eq!(r.params, ["runbooks", "plan"]);
    let body = http_envelope("GET", "", json!({"name": "runbooks", "action": "plan"}), "");
    let Invocation::Http(r) = parse("phase", &body).unwrap() else { panic!("http") };
    assert_eq!(r.params, ["runbooks", "plan"]);
}

#[test]
fn a_trigger_value_may_be_a_json_encoded_string() {
    let req =
        json!({"Url": "http://h/api/status", "Method": "GET", "Query": {}, "Headers": {}, "Params": {}, "Body": ""});
    let body = serde_json::to_vec(&json!({"Data": {"req": req.to_string()}, "Metadata": {}})).unwrap();
    let Invocation::Http(r) = parse("status", &body).unwrap() else { panic!("http") };
    assert_eq!(r.method, "GET");

    let timer = json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": {"Last": "2026-12-02T09:55:00Z", "Next": "2026-12-02T10:00:00Z", "LastUpdated": "2026-12-02T09:55:00Z"}, "IsPastDue": false});
    for value in [timer.clone(), Value::String(timer.to_string())] {
        let body =
            serde_json::to_vec(&json!({"Data": {"timer": value}, "Metadata": {"sys": {"MethodName": "health"}}}))
                .unwrap();
        assert_eq!(parse("health", &body).unwrap(), Invocation::Timer(timer.clone()));
    }
    // ScheduleStatus is null for schedules more frequent than once a minute.
    let body = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}"#;
    assert!(matches!(parse("health", body), Ok(Invocation::Timer(_))));
}

#[test]
fn broken_envelopes_are_named() {
    assert!(matches!(parse("phase", b"{not json"), Err(EnvelopeError::NotJson(_))));
    assert!(matches!(parse("phase", b"[]"), Err(EnvelopeError::NotJson(_))));
    assert_eq!(parse("phase", br#"{"Data":{}}"#), Err(EnvelopeError::NoTrigger("req")));
    assert_eq!(parse("health", br#"{"Metadata":{}}"#), Err(EnvelopeError::NoTrigger("timer")));
    assert!(matches!(
        parse("health", br#"{"Data":{"timer":"not json"}}"#),
        Err(EnvelopeError::BadTrigger { binding: "timer", .. })
    ));
    assert!(matches!(parse("phase", br#"{"Data":{"req":42}}"#), Err(EnvelopeError::BadTrigger { binding: "req", .. })));
}

#[test]
fn the_response_carries_the_status_code_as_a_string() {
    let res = HttpResponse::json(202, &json!({"status": "running"})).with_header("Location", "/api/phase/artifacts");
    let v = http_result(&res, &["started".to_owned()]);
    assert_eq!(v["Outputs"]["res"]["statusCode"], "202");
    assert_eq!(v["Outputs"]["res"]["headers"]["Location"], "/api/phase/artifacts");
    assert_eq!(v["Outputs"]["res"]["headers"]["Content-Type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(v["Outputs"]["res"]["body"].as_str().unwrap()).unwrap()["status"],
        "running"
    );
    assert_eq!(v["Logs"][0], "started");
    let t = timer_result(&json!({"status": "unchanged"}), &[]);
    assert_eq!((t["Outputs"].clone(), t["ReturnValue"]["status"].clone()), (json!({}), json!("unchanged")));
}

#[test]
fn proxied_paths_name_the_function_and_its_params() {
    assert_eq!(
        proxied_route("/api/phase/artifacts/plan"),
        Some(("phase".into(), vec!["artifacts".into(), "plan".into()]))
    );
    assert_eq!(proxied_route("/api/status"), Some(("status".into(), vec![])));
    assert_eq!(proxied_route("/phase"), None);
}
