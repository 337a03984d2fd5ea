//! Order: the dependency graph of main.bicep's phase modules (explicit `dependsOn` and implicit
//! references, also through variables) must give exactly the order `plan --json` prints, and a
//! mixed phase's step must wait for every resource its module declares.

use std::collections::{BTreeMap, BTreeSet};

use crate::bicep::{Decl, DeclKind, File};
use crate::finding::{rule, Finding};
use crate::plan::Phase;
use crate::template::{Template, MAIN};

/// The symbols a resource or module declaration depends on directly, in its own file.
pub fn direct_deps(file: &File, decl: &Decl) -> BTreeSet<String> {
    let refs = decl.value.as_ref().map(|v| v.references()).unwrap_or_default();
    let declared: BTreeSet<&str> = file
        .decls
        .iter()
        .filter(|d| matches!(d.kind, DeclKind::Resource | DeclKind::Module))
        .map(|d| d.name.as_str())
        .collect();
    let mut deps: BTreeSet<String> =
        file.expand(refs).into_iter().filter(|r| declared.contains(r.as_str()) && *r != decl.name).collect();
    if let Some(parent) = &decl.nested_in {
        deps.insert(parent.clone());
    }
    deps
}

fn graph(file: &File) -> BTreeMap<String, BTreeSet<String>> {
    file.decls
        .iter()
        .filter(|d| matches!(d.kind, DeclKind::Resource | DeclKind::Module))
        .map(|d| (d.name.clone(), direct_deps(file, d)))
        .collect()
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = graph.get(from).map(|d| d.iter().map(String::as_str).collect()).unwrap_or_default();
    while let Some(n) = todo.pop() {
        if seen.insert(n.to_owned()) {
            if let Some(d) = graph.get(n) {
                todo.extend(d.iter().map(String::as_str));
            }
        }
    }
    seen
}

pub fn check(t: &Template, plan: &[Phase]) -> Vec<Finding> {
    let mut out = Vec::new();
    let main = t.main();
    let g = graph(main);
    let symbols: Vec<String> = plan.iter().map(Phase::module_symbol).collect();

    for d in main.decls.iter().filter(|d| matches!(d.kind, DeclKind::Resource | DeclKind::Module)) {
        if !symbols.contains(&d.name) {
            out.push(Finding::new(
                rule::ORDER,
                MAIN,
                d.line,
                format!("`{}` is not a phase module: every declaration in main.bicep is one of the RFC-60 phases, named after its id", d.name),
            ));
        }
    }
    let mut present = Vec::new();
    for (p, sym) in plan.iter().zip(&symbols) {
        match main.decl(sym) {
            Some(d) if d.kind == DeclKind::Module => present.push((p, d)),
            _ => out.push(Finding::new(
                rule::ORDER,
                MAIN,
                0,
                format!("phase {} `{}` has no module `{sym}` in main.bicep", p.order, p.id),
            )),
        }
    }
    for pair in present.windows(2) {
        let ((prev, prev_decl), (next, next_decl)) = (pair[0], pair[1]);
        if !reaches(&g, &next_decl.name).contains(&prev_decl.name) {
            out.push(Finding::new(
                rule::ORDER,
                MAIN,
                next_decl.line,
                format!(
                    "`{}` (phase {}) does not depend on `{}` (phase {}): ARM may start it before the phase before it ends; use that module's outputs or list it in dependsOn",
                    next_decl.name, next.order, prev_decl.name, prev.order
                ),
            ));
        }
    }
    for (p, d) in &present {
        for dep in &g[&d.name] {
            if let Some((later, _)) = present.iter().find(|(_, x)| &x.name == dep).filter(|(q, _)| q.order > p.order) {
                out.push(Finding::new(
                    rule::ORDER,
                    MAIN,
                    d.line,
                    format!(
                        "`{}` (phase {}) depends on `{dep}` (phase {}), which plan --json orders after it",
                        d.name, p.order, later.order
                    ),
                ));
            }
        }
    }
    out.extend(steps_wait_for_their_module(t));
    out
}

/// In a phase module that runs a step, the step depends on every resource and module the file
/// declares: the step works on them.
fn steps_wait_for_their_module(t: &Template) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in t.files.values().filter(|f| f.path != MAIN) {
        let g = graph(file);
        for step in file.of_kind(DeclKind::Module).filter(|d| crate::steps::is_step_call(&d.target)) {
            let reached = reaches(&g, &step.name);
            for d in file.decls.iter().filter(|d| matches!(d.kind, DeclKind::Resource | DeclKind::Module)) {
                if d.name != step.name && !d.existing && !reached.contains(&d.name) {
                    out.push(Finding::new(
                        rule::ORDER,
                        &file.path,
                        step.line,
                        format!(
                            "step `{}` does not depend on `{}`, so it may run before that exists; list it in dependsOn",
                            step.name, d.name
                        ),
                    ));
                }
            }
        }
    }
    out
}
