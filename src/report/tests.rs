use super::*;

fn run(status: &str, start: &str, end: &str, changes: u64) -> Option<PhaseRun> {
    Some(PhaseRun {
        status: status.into(),
        attempt: 1,
        started_at: start.into(),
        ended_at: Some(end.into()),
        changes,
        error: None,
    })
}

fn sample() -> Day0 {
    let phase = |order, id: &str, kind: &str, run| PhaseRow {
        order,
        id: id.into(),
        name: format!("Phase {id}"),
        kind: kind.into(),
        has_step: kind != "declarative",
        run,
    };
    Day0 {
        generated_at: "2026-12-02T10:05:00Z".into(),
        deployment_id: "dep-1".into(),
        binary: "0.1.0 (test)".into(),
        release: Some(Release { release: "2026.12.0".into(), digest: format!("sha256:{}", "a".repeat(64)) }),
        overall: Some("degraded".into()),
        phases: vec![
            phase(1, "network", "declarative", None),
            phase(7, "artifacts", "imperative", run("succeeded", "2026-12-02T10:00:00Z", "2026-12-02T10:02:00Z", 41)),
            phase(9, "database", "mixed", run("failed", "2026-12-02T10:02:00Z", "2026-12-02T10:02:30Z", 1)),
            phase(15, "health", "imperative", None),
        ],
        components: vec![
            ComponentRow {
                name: "kv<script>alert(1)</script>".into(),
                resource_type: "Microsoft.KeyVault/vaults".into(),
                role: Some("key-vault".into()),
                state: "healthy".into(),
                detail: "0 of 4 checks not healthy".into(),
                since: None,
            },
            ComponentRow {
                name: "srch".into(),
                resource_type: "Microsoft.Search/searchServices".into(),
                role: None,
                state: "degraded".into(),
                detail: "1 of 4".into(),
                since: None,
            },
        ],
        failing: vec![FailingCheck {
            component: "srch".into(),
            check: "service:none".into(),
            state: "unknown".into(),
            required: false,
            reason: "no anonymous \"health\" API & none".into(),
            observed: None,
        }],
        endpoints: vec![EndpointRow {
            component: "srch".into(),
            fqdn: "srch.privatelink.search.windows.net".into(),
            ip: Some("10.0.0.7".into()),
            port: 443,
            protocol: "https".into(),
        }],
        notes: vec![],
    }
}

#[test]
fn the_page_is_self_contained_and_escapes_everything() {
    let page = render(&sample());
    for external in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(external), "the page must not load anything ({external})");
    }
    assert!(page.contains("kv&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("no anonymous &quot;health&quot; API &amp; none"));
    assert!(page.contains("<svg id=\"timeline\""));
}

#[test]
fn imperative_phases_get_bars_and_declarative_ones_are_listed_without() {
    let page = render(&sample());
    let open = "<rect class=\"bar\" data-phase=\"";
    let bars: Vec<&str> = page.match_indices(open).map(|(i, _)| &page[i + open.len()..]).collect();
    let ids: Vec<&str> = bars.iter().map(|b| b.split('"').next().unwrap()).collect();
    assert_eq!(ids, ["artifacts", "database"]);
    assert!(page.contains("class=\"declarative\" data-phase=\"network\""));
    assert!(page.contains("class=\"not-run\" data-phase=\"health\""));
    // The slowest step is the widest bar: artifacts ran 120 s of the 150 s span.
    assert!(page.contains("width=\"416.0\""), "{page}");
    assert!(page.contains("succeeded · 2m 00s · 41 changes · attempt 1"));
}

#[test]
fn the_page_is_stable() {
    insta::assert_snapshot!("day0_report", render(&sample()));
}

#[test]
fn durations_read_naturally() {
    assert_eq!(svg::duration_text(850), "850 ms");
    assert_eq!(svg::duration_text(12_345), "12.3 s");
    assert_eq!(svg::duration_text(185_000), "3m 05s");
}
