//! Steps: every call of `bootstrap-step.bicep` names a step the binary knows, sits in the module
//! of its own phase, and passes every key `plan --json` requires of that step. Also the
//! deploymentScript inside the step module itself (`step-script`).

use std::collections::BTreeSet;

use crate::bicep::{find, Decl, DeclKind, Expr, File, Prop};
use crate::finding::{rule, Finding};
use crate::plan::Phase;
use crate::template::{Template, MAIN};

pub const STEP_MODULE: &str = "bootstrap-step.bicep";

pub fn is_step_call(module_path: &str) -> bool {
    module_path.rsplit('/').next() == Some(STEP_MODULE)
}

/// Where a value comes from when it is a parameter: the caller's arguments, in the caller's file.
struct Scope<'a> {
    file: &'a File,
    caller: Option<(&'a [Prop], &'a Scope<'a>)>,
}

/// The keys of a configuration object, followed through variables, parameters (to the
/// caller's argument or the default) and `union()`. Anything else cannot be seen without
/// evaluating the template, which is an error: write configuration these ways.
fn keys(e: &Expr, scope: &Scope) -> Result<BTreeSet<String>, String> {
    match e {
        Expr::Object(props) => Ok(props.iter().map(|p| p.key.clone()).collect()),
        Expr::Call { func, target: None, args } if func == "union" => {
            let mut all = BTreeSet::new();
            for a in args {
                all.extend(keys(a, scope)?);
            }
            Ok(all)
        }
        Expr::Ident(name) => match scope.file.decl(name) {
            Some(d) if d.kind == DeclKind::Var => keys(d.value.as_ref().ok_or("a variable without a value")?, scope),
            Some(d) if d.kind == DeclKind::Param => {
                if let Some((args, caller)) = scope.caller {
                    if let Some(arg) = find(args, name) {
                        return keys(arg, caller);
                    }
                }
                match &d.value {
                    Some(default) => keys(default, scope),
                    None => Err(format!("parameter `{name}` of {} gets no value from its caller", scope.file.path)),
                }
            }
            _ => Err(format!("`{name}` is not a variable or parameter of {}", scope.file.path)),
        },
        _ => Err("only object literals, variables, parameters and union() of them can be checked".into()),
    }
}

struct Call<'a> {
    file: &'a File,
    decl: &'a Decl,
    /// The phase module (in main.bicep) the call belongs to.
    owner: Option<&'a Decl>,
}

pub fn check(t: &Template, plan: &[Phase]) -> Vec<Finding> {
    let mut out = Vec::new();
    let main = t.main();
    let mut calls = Vec::new();
    for (file, decl) in t.module_calls().filter(|(_, d)| is_step_call(&d.target)) {
        let owner = if file.path == MAIN {
            Some(decl)
        } else {
            main.of_kind(DeclKind::Module).find(|m| crate::template::join(MAIN, &m.target) == file.path)
        };
        calls.push(Call { file, decl, owner });
    }

    for phase in plan {
        let symbol = phase.module_symbol();
        let mine: Vec<&Call> = calls.iter().filter(|c| c.owner.is_some_and(|o| o.name == symbol)).collect();
        match (phase.step(), mine.len()) {
            (Some(_), 1) | (None, 0) => {}
            (Some(step), 0) => out.push(Finding::new(
                rule::STEP_PHASE,
                MAIN,
                main.decl(&symbol).map_or(0, |d| d.line),
                format!("phase `{}` runs `run {step}`, but its module calls no {STEP_MODULE}", phase.id),
            )),
            (None, _) => out.push(Finding::new(
                rule::STEP_PHASE,
                &mine[0].file.path,
                mine[0].decl.line,
                format!("phase `{}` is declarative in plan --json, but its module runs a bootstrap step", phase.id),
            )),
            (Some(step), n) => out.push(Finding::new(
                rule::STEP_PHASE,
                &mine[1].file.path,
                mine[1].decl.line,
                format!("phase `{}` calls {STEP_MODULE} {n} times; `run {step}` runs once", phase.id),
            )),
        }
    }

    for call in &calls {
        out.extend(check_call(t, plan, call));
    }
    out.extend(check_handler(t, plan));
    out.extend(check_step_module(t));
    out
}

/// The phase module that declares the function app, and its parameter with the handler's
/// VIBEDATA_* app settings.
const HANDLER_MODULE: &str = "apps";
const HANDLER_CONFIG: &str = "vibedataConfig";

/// The function app runs the built phases over HTTP (`vibedata-bootstrap serve`), so its app
/// settings carry every key those phases require.
fn check_handler(t: &Template, plan: &[Phase]) -> Vec<Finding> {
    let main = t.main();
    let Some(apps) = main.decl(HANDLER_MODULE).filter(|d| d.kind == DeclKind::Module) else { return Vec::new() };
    let f = |msg: String| Finding::new(rule::STEP_CONFIG, MAIN, apps.line, msg);
    let args = apps.path("params").and_then(Expr::object).unwrap_or(&[]);
    let Some(config) = find(args, HANDLER_CONFIG) else {
        return vec![f(format!(
            "`{HANDLER_MODULE}` passes no {HANDLER_CONFIG}: the function app would run without configuration"
        ))];
    };
    let passed = match keys(config, &Scope { file: main, caller: None }) {
        Ok(k) => k,
        Err(why) => return vec![f(format!("cannot see the keys of `{HANDLER_MODULE}`'s {HANDLER_CONFIG}: {why}"))],
    };
    let mut out = Vec::new();
    for p in plan.iter().filter(|p| p.built) {
        let Some(step) = p.step() else { continue };
        for k in p.required_config.iter().filter(|k| !passed.contains(*k)) {
            out.push(f(format!(
                "the function app's settings ({HANDLER_CONFIG}) lack {k}, which `run {step}` requires"
            )));
        }
    }
    out.dedup();
    out
}

fn check_call(t: &Template, plan: &[Phase], call: &Call) -> Vec<Finding> {
    let mut out = Vec::new();
    let (file, decl) = (call.file, call.decl);
    let finding = |rule, msg: String| Finding::new(rule, &file.path, decl.line, msg);
    let params = decl.path("params").and_then(Expr::object).unwrap_or(&[]);
    let Some(step) = find(params, "phase").and_then(Expr::literal) else {
        out.push(finding(
            rule::STEP_PHASE,
            format!("step `{}` does not name its phase as a string literal", decl.name),
        ));
        return out;
    };
    let Some(phase) = plan.iter().find(|p| p.step() == Some(step.as_str())) else {
        let known: Vec<&str> = plan.iter().filter_map(Phase::step).collect();
        out.push(finding(
            rule::STEP_PHASE,
            format!(
                "step `{}` runs `{step}`, which the binary does not know (plan --json: {})",
                decl.name,
                known.join(", ")
            ),
        ));
        return out;
    };
    match call.owner {
        Some(owner) if owner.name == phase.module_symbol() => {}
        Some(owner) => out.push(finding(
            rule::STEP_PHASE,
            format!("step `{step}` is run inside phase module `{}`, not `{}`", owner.name, phase.module_symbol()),
        )),
        None => out.push(finding(
            rule::STEP_PHASE,
            format!("step `{step}` is in {}, which no phase module of main.bicep loads", file.path),
        )),
    }

    // A mixed module's parameters come from main.bicep's call of it.
    let main_scope = Scope { file: t.main(), caller: None };
    let owner_args = call.owner.filter(|_| file.path != MAIN).and_then(|o| o.path("params")).and_then(Expr::object);
    let scope = Scope { file, caller: owner_args.map(|a| (a, &main_scope)) };
    let mut passed = BTreeSet::new();
    for key in ["config", "secureConfig"] {
        if let Some(e) = find(params, key) {
            match keys(e, &scope) {
                Ok(k) => passed.extend(k),
                Err(why) => out.push(finding(
                    rule::STEP_CONFIG,
                    format!("cannot see the keys step `{step}` gets in `{key}`: {why}"),
                )),
            }
        }
    }
    for k in &phase.required_config {
        if !passed.contains(k) {
            out.push(finding(
                rule::STEP_CONFIG,
                format!("step `{step}` does not pass {k}, which plan --json requires of it"),
            ));
        }
    }
    out
}

const MIN_AZ_CLI: (u32, u32, u32) = (2, 65, 0);

/// The deploymentScript of the step module: api-version, glibc image, per-phase container group,
/// private networking, limits and a deterministic forceUpdateTag.
fn check_step_module(t: &Template) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(file) = t.files.values().find(|f| f.path.rsplit('/').next() == Some(STEP_MODULE)) else {
        out.push(Finding::new(rule::STEP_SCRIPT, "modules/bootstrap-step.bicep", 0, "the step module is missing"));
        return out;
    };
    let scripts: Vec<&Decl> = file
        .of_kind(DeclKind::Resource)
        .filter(|d| d.resource_type() == "Microsoft.Resources/deploymentScripts")
        .collect();
    let [ds] = scripts.as_slice() else {
        out.push(Finding::new(
            rule::STEP_SCRIPT,
            &file.path,
            0,
            "the step module declares exactly one deploymentScript",
        ));
        return out;
    };
    let mut bad = |msg: String| out.push(Finding::new(rule::STEP_SCRIPT, &file.path, ds.line, msg));
    if ds.api_version() != Some("2023-08-01") {
        bad(format!(
            "deploymentScripts@{} lacks containerSettings.subnetIds; use 2023-08-01",
            ds.api_version().unwrap_or("?")
        ));
    }
    // A value that is a variable is looked through, once.
    let resolve = |e: Option<&Expr>| -> Option<Expr> {
        let e = e?;
        match e {
            Expr::Ident(n) => file.decl(n).and_then(|d| d.value.clone()).or(Some(e.clone())),
            other => Some(other.clone()),
        }
    };
    if ds.prop("kind").and_then(Expr::literal).as_deref() != Some("AzureCLI") {
        bad("kind must be AzureCLI: the entry script is bash".into());
    }
    match resolve(ds.path("properties.azCliVersion")).and_then(|e| e.literal()) {
        Some(v) if version(&v).is_some_and(|v| v >= MIN_AZ_CLI) => {}
        Some(v) => bad(format!(
            "azCliVersion {v} is older than 2.65.0: its image is Alpine (musl), where the glibc binary cannot start"
        )),
        None => bad("azCliVersion must be pinned to a literal version, 2.65.0 or later".into()),
    }
    for p in ["timeout", "retentionInterval"] {
        if ds.path(&format!("properties.{p}")).is_none() {
            bad(format!("properties.{p} is not set"));
        }
    }
    let refs_of = |e: &Expr| file.expand(e.references());
    match ds.path("properties.containerSettings.containerGroupName") {
        Some(e) if refs_of(e).iter().any(|r| r == "phase") => {}
        _ => bad("containerSettings.containerGroupName must be derived from the phase: two scripts sharing one conflict while one runs".into()),
    }
    if ds.path("properties.containerSettings.subnetIds").is_none() {
        bad("containerSettings.subnetIds is not set: the step must run on the scripts subnet".into());
    }
    if ds.path("properties.storageAccountSettings.storageAccountName").is_none() {
        bad("storageAccountSettings.storageAccountName is not set: a private-network script needs its own storage"
            .into());
    }
    match resolve(ds.path("properties.forceUpdateTag")) {
        Some(tag) => {
            if tag.calls("utcNow") || tag.calls("newGuid") {
                bad("forceUpdateTag must not use utcNow() or newGuid(): an unchanged redeploy would rerun the step"
                    .into());
            }
            let refs = refs_of(&tag);
            let mut digest = false;
            tag.walk(&mut |e| {
                if let Expr::Member { property, .. } = e {
                    digest |= property.to_ascii_lowercase().contains("sha256");
                }
            });
            for (what, ok) in [
                ("the phase", refs.iter().any(|r| r == "phase")),
                ("the configuration", refs.iter().any(|r| r == "config")),
                ("retryAttempt", refs.iter().any(|r| r == "retryAttempt")),
                ("the binary's digest", digest),
            ] {
                if !ok {
                    bad(format!("forceUpdateTag is not derived from {what}"));
                }
            }
        }
        None => bad("forceUpdateTag is not set: a failed step would not rerun on redeploy".into()),
    }
    out
}

fn version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}
