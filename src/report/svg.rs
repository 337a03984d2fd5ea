//! The install timeline as an inline SVG bar chart: one row per RFC-60 phase in `SEQUENCE`
//! order; a bar from each recorded start for its duration, so the slowest step stands out.
//! Declarative phases (Bicep alone) are listed without a bar: the ledger knows nothing of them.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{esc, PhaseRow};

const LABEL: f64 = 230.0;
const CHART: f64 = 520.0;
const ROW: f64 = 24.0;
const WIDTH: f64 = LABEL + CHART + 320.0;

fn parse(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &Rfc3339).ok()
}

/// A bar's start and end in milliseconds since the epoch; a run without an end (still running,
/// or killed) lasts until the page was generated.
fn span(row: &PhaseRow, now: Option<OffsetDateTime>) -> Option<(i128, i128)> {
    let run = row.run.as_ref()?;
    let start = parse(&run.started_at)?;
    let end = run.ended_at.as_deref().and_then(parse).or(now).unwrap_or(start);
    let ms = |t: OffsetDateTime| t.unix_timestamp_nanos() / 1_000_000;
    Some((ms(start), ms(end).max(ms(start))))
}

pub fn duration_text(ms: i128) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn color(status: &str) -> &'static str {
    match status {
        "succeeded" => "#2e7d32",
        "unchanged" => "#607d8b",
        "failed" => "#c62828",
        "running" => "#f9a825",
        _ => "#9e9e9e",
    }
}

pub fn timeline(phases: &[PhaseRow], generated_at: &str) -> String {
    let now = parse(generated_at);
    let spans: Vec<Option<(i128, i128)>> = phases.iter().map(|p| span(p, now)).collect();
    let t0 = spans.iter().flatten().map(|s| s.0).min().unwrap_or(0);
    let t1 = spans.iter().flatten().map(|s| s.1).max().unwrap_or(t0);
    let total = (t1 - t0).max(1) as f64;
    let height = ROW * phases.len() as f64 + 30.0;
    let mut s = format!(
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">\n"
    );
    s.push_str(&format!("<line x1=\"{LABEL}\" y1=\"0\" x2=\"{LABEL}\" y2=\"{}\" stroke=\"#bbb\"/>\n", height - 20.0));
    for (i, (p, sp)) in phases.iter().zip(&spans).enumerate() {
        let y = ROW * i as f64;
        let mid = y + ROW / 2.0 + 4.0;
        s.push_str(&format!("<text x=\"4\" y=\"{mid}\" fill=\"#333\">{:>2}. {}</text>\n", p.order, esc(&p.name)));
        match (p.has_step, sp, &p.run) {
            (true, Some((a, b)), Some(run)) => {
                let x = LABEL + (a - t0) as f64 / total * CHART;
                let w = ((b - a) as f64 / total * CHART).max(2.0);
                let label = format!(
                    "{} · {} · {} change{} · attempt {}",
                    run.status,
                    duration_text(b - a),
                    run.changes,
                    if run.changes == 1 { "" } else { "s" },
                    run.attempt
                );
                s.push_str(&format!(
                    "<rect class=\"bar\" data-phase=\"{}\" data-status=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\"><title>{}: started {}, {}</title></rect>\n",
                    esc(&p.id),
                    esc(&run.status),
                    y + 4.0,
                    ROW - 8.0,
                    color(&run.status),
                    esc(&p.id),
                    esc(&run.started_at),
                    esc(&label)
                ));
                s.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{mid}\" fill=\"#333\">{}</text>\n",
                    (x + w + 6.0).min(LABEL + CHART + 6.0),
                    esc(&label)
                ));
            }
            (true, _, _) => s.push_str(&format!(
                "<text class=\"not-run\" data-phase=\"{}\" x=\"{}\" y=\"{mid}\" fill=\"#888\">not run yet</text>\n",
                esc(&p.id),
                LABEL + 6.0
            )),
            (false, _, _) => s.push_str(&format!(
                "<text class=\"declarative\" data-phase=\"{}\" x=\"{}\" y=\"{mid}\" fill=\"#888\">Bicep ({})</text>\n",
                esc(&p.id),
                LABEL + 6.0,
                esc(&p.kind)
            )),
        }
    }
    s.push_str(&format!(
        "<text x=\"{LABEL}\" y=\"{}\" fill=\"#555\">0</text><text x=\"{}\" y=\"{}\" fill=\"#555\" text-anchor=\"end\">{}</text>\n",
        height - 6.0,
        LABEL + CHART,
        height - 6.0,
        duration_text(t1 - t0)
    ));
    s.push_str("</svg>\n");
    s
}
