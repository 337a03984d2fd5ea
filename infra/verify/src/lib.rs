//! Checks `infra/` without a Bicep compiler. Every `.bicep` file is parsed with the
//! `tree-sitter-bicep` grammar; from the parse trees it checks the RFC-60 order against
//! `vibedata-bootstrap plan --json`, the bootstrap steps and their configuration, and the RFC's
//! rules per resource type. It also checks the UI definition against main.bicep and the package
//! that `scripts/package` builds.
//!
//! What it cannot see is what only `bicep build` and a deployment know: types and property
//! names against the resource providers' schemas, expressions' values, API behaviour.

pub mod bicep;
pub mod coverage;
pub mod finding;
pub mod order;
pub mod package;
pub mod plan;
pub mod rules;
pub mod steps;
pub mod template;
pub mod uidef;

use std::path::Path;

pub use finding::{rule, Finding};
pub use template::{LoadError, Template};

/// Every check of the templates and the UI definition, findings sorted by file and line.
pub fn check(t: &Template, plan: &[plan::Phase]) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in t.files.values() {
        for (line, col, what) in &file.syntax_errors {
            out.push(Finding::new(rule::PARSE, &file.path, *line, format!("column {col}: {what} (Bicep that tree-sitter-bicep 1.1.0 cannot parse; object spread `...x` is one such syntax)")));
        }
    }
    out.extend(order::check(t, plan));
    out.extend(steps::check(t, plan));
    out.extend(rules::check(t));
    let (coverage, warnings) = coverage::check(t, plan);
    out.extend(coverage);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let ui_path = t.root.join(uidef::UI_DEFINITION);
    match std::fs::read_to_string(&ui_path) {
        Ok(text) => out.extend(uidef::check(t.main(), uidef::UI_DEFINITION, &text)),
        Err(e) => out.push(Finding::new(rule::UI_DEFINITION, uidef::UI_DEFINITION, 0, format!("cannot be read: {e}"))),
    }
    out.sort();
    out.dedup();
    out
}

/// Loads `root` and checks it.
pub fn check_dir(root: &Path, plan: &[plan::Phase]) -> Result<Vec<Finding>, LoadError> {
    Ok(check(&Template::load(root)?, plan))
}
