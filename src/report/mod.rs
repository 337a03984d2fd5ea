//! The Day-0 report: one self-contained HTML page (no external scripts, fonts or styles) that
//! tells support what the install did: the release, the timeline of every phase, every
//! component's health with the failing checks, and the registry's endpoints.
//!
//! [`render`] is pure (plain data in, a page out) so it is snapshot-tested without a stack;
//! [`gather`] reads the ledger and the registry into that data. The same page is served by the
//! `status` function, written by `vibedata-bootstrap report --html FILE`, and left in artifact
//! storage (`reports/day0.html`) after every health run.

mod gather;
mod svg;

use serde::Serialize;

pub use gather::{gather, load, publish, write_html, ReportError};

/// Everything the page shows. Also the `status` function's JSON.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Day0 {
    pub generated_at: String,
    pub deployment_id: String,
    pub binary: String,
    pub release: Option<Release>,
    /// The registry's overall health, when a health run recorded one.
    pub overall: Option<String>,
    /// Every RFC-60 phase, in `SEQUENCE` order.
    pub phases: Vec<PhaseRow>,
    pub components: Vec<ComponentRow>,
    /// Checks that are not healthy, with their reasons.
    pub failing: Vec<FailingCheck>,
    pub endpoints: Vec<EndpointRow>,
    /// What could not be read (the registry before `run database`, an unreachable ledger).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub release: String,
    pub digest: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRow {
    pub order: u8,
    pub id: String,
    pub name: String,
    /// `declarative`, `imperative` or `mixed`.
    pub kind: String,
    /// The ledger's record, for a phase this binary runs; `None` for declarative phases.
    pub run: Option<PhaseRun>,
    /// Whether this binary runs a step in the phase (declarative phases get no bar).
    pub has_step: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRun {
    pub status: String,
    pub attempt: u32,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub changes: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRow {
    pub name: String,
    pub resource_type: String,
    pub role: Option<String>,
    /// `healthy`, `degraded`, `unhealthy`, `unknown`, or `not checked`.
    pub state: String,
    pub detail: String,
    pub since: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailingCheck {
    pub component: String,
    pub check: String,
    pub state: String,
    pub required: bool,
    pub reason: String,
    pub observed: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRow {
    pub component: String,
    pub fqdn: String,
    pub ip: Option<String>,
    pub port: u16,
    pub protocol: String,
}

/// Escapes text for HTML element content and attribute values. Everything the page shows comes
/// from Azure names, the ledger and the registry, so nothing is trusted.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
.meta{color:#555;font-size:13px}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.state{font-weight:600;padding:1px 8px;border-radius:10px;color:#fff;white-space:nowrap}
.healthy{background:#2e7d32}.degraded{background:#ef6c00}.unhealthy{background:#c62828}.unknown{background:#757575}
.not-checked{background:#9e9e9e}.note{color:#8a4b00}";

/// The page. Pure: the same data gives the same bytes.
pub fn render(d: &Day0) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<title>Vibedata Day-0 report</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n");
    h.push_str("<h1>Vibedata Day-0 report</h1>\n");
    let release = match &d.release {
        Some(r) => format!(
            "release <b id=\"release\">{}</b> <span class=\"mono\" id=\"digest\">{}</span>",
            esc(&r.release),
            esc(&r.digest)
        ),
        None => "no release in artifact storage yet".to_owned(),
    };
    h.push_str(&format!(
        "<p class=\"meta\">{release}<br>deployment {} · generated {} by vibedata-bootstrap {}</p>\n",
        esc(&d.deployment_id),
        esc(&d.generated_at),
        esc(&d.binary)
    ));
    if let Some(o) = &d.overall {
        h.push_str(&format!("<p>Overall health: {}</p>\n", state_badge(o)));
    }
    for n in &d.notes {
        h.push_str(&format!("<p class=\"note\">{}</p>\n", esc(n)));
    }

    h.push_str("<h2>Install timeline</h2>\n");
    h.push_str(&svg::timeline(&d.phases, &d.generated_at));

    h.push_str(&format!("<h2>Components ({})</h2>\n", d.components.len()));
    h.push_str("<table id=\"components\"><tr><th>component</th><th>type</th><th>health</th><th>detail</th></tr>\n");
    for c in &d.components {
        h.push_str(&format!(
            "<tr class=\"component\" data-component=\"{}\" data-state=\"{}\"><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&c.name),
            esc(&c.state),
            esc(&c.name),
            esc(&c.resource_type),
            state_badge(&c.state),
            esc(&c.detail)
        ));
    }
    h.push_str("</table>\n");

    h.push_str(&format!("<h2>Checks not healthy ({})</h2>\n", d.failing.len()));
    if d.failing.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table id=\"failing\"><tr><th>component</th><th>check</th><th>state</th><th>reason</th></tr>\n");
        for f in &d.failing {
            let optional = if f.required { "" } else { " (optional)" };
            h.push_str(&format!(
                "<tr class=\"failing\" data-component=\"{}\"><td>{}</td><td class=\"mono\">{}</td><td>{}{optional}</td><td>{}</td></tr>\n",
                esc(&f.component),
                esc(&f.component),
                esc(&f.check),
                state_badge(&f.state),
                esc(&f.reason)
            ));
        }
        h.push_str("</table>\n");
    }

    h.push_str(&format!("<h2>Endpoints ({})</h2>\n", d.endpoints.len()));
    h.push_str("<table id=\"endpoints\"><tr><th>component</th><th>name</th><th>address</th><th>port</th><th>protocol</th></tr>\n");
    for e in &d.endpoints {
        h.push_str(&format!(
            "<tr class=\"endpoint\"><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&e.component),
            esc(&e.fqdn),
            esc(e.ip.as_deref().unwrap_or("-")),
            e.port,
            esc(&e.protocol)
        ));
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

fn state_badge(state: &str) -> String {
    let class = match state {
        "healthy" | "degraded" | "unhealthy" | "unknown" => state,
        _ => "not-checked",
    };
    format!("<span class=\"state {class}\">{}</span>", esc(state))
}

#[cfg(test)]
mod tests;
