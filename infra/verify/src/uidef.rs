//! The Managed Application's createUiDefinition.json against main.bicep's parameters: every
//! parameter without a default is an output with the same name and a compatible type, a secure
//! parameter comes from a password box, and no output names a parameter the template lacks
//! (ARM rejects unknown parameters).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::bicep::{DeclKind, File};
use crate::finding::{rule, Finding};

pub const UI_DEFINITION: &str = "createUiDefinition.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    String,
    SecureString,
    Int,
    Bool,
    Object,
    Array,
}

/// What an element's output is (Azure's UI element reference, one page per element).
fn element_type(element: &str) -> Option<Ty> {
    Some(match element {
        "Microsoft.Common.TextBox" | "Microsoft.Common.DropDown" | "Microsoft.Common.OptionsGroup" => Ty::String,
        "Microsoft.Common.PasswordBox" => Ty::SecureString,
        "Microsoft.Common.CheckBox" => Ty::Bool,
        "Microsoft.Common.Slider" => Ty::Int,
        "Microsoft.Common.TagsByResource" => Ty::Object,
        "Microsoft.Common.EditableGrid" => Ty::Array,
        _ => return None,
    })
}

fn collect(elements: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    for e in elements.as_array().into_iter().flatten() {
        let (Some(name), Some(ty)) = (e["name"].as_str(), e["type"].as_str()) else { continue };
        let path = format!("{prefix}.{name}");
        if let Some(children) = e.get("elements") {
            collect(children, &path, out);
        }
        out.insert(path, ty.to_owned());
    }
}

/// The type of an output expression, or why it cannot be told.
fn output_type(expr: &Value, elements: &BTreeMap<String, String>) -> Result<Ty, String> {
    let s = match expr {
        Value::Bool(_) => return Ok(Ty::Bool),
        Value::Number(_) => return Ok(Ty::Int),
        Value::Object(_) => return Ok(Ty::Object),
        Value::Array(_) => return Ok(Ty::Array),
        Value::String(s) => s,
        Value::Null => return Err("is null".into()),
    };
    let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) else { return Ok(Ty::String) };
    if matches!(inner, "location()" | "resourceGroup().location") {
        return Ok(Ty::String);
    }
    let path = if let Some(rest) = inner.strip_prefix("basics('") {
        let name = rest.strip_suffix("')").ok_or_else(|| format!("cannot read `{s}`"))?;
        format!("basics.{name}")
    } else if let Some(rest) = inner.strip_prefix("steps('") {
        let (step, tail) = rest.split_once("')").ok_or_else(|| format!("cannot read `{s}`"))?;
        format!("steps.{step}{tail}")
    } else {
        return Err(format!("cannot tell the type of `{s}`"));
    };
    let element = elements.get(&path).ok_or_else(|| format!("`{s}` names no element of the UI definition"))?;
    element_type(element).ok_or_else(|| format!("cannot tell what a {element} outputs"))
}

fn param_type(text: &str, secure: bool) -> Option<Ty> {
    Some(match text.trim() {
        "string" if secure => Ty::SecureString,
        "string" => Ty::String,
        "int" => Ty::Int,
        "bool" => Ty::Bool,
        "object" => Ty::Object,
        "array" => Ty::Array,
        _ => return None,
    })
}

fn compatible(param: Ty, output: Ty) -> bool {
    // A secure parameter must come from a source the portal does not echo; a plain string
    // parameter accepts a password box's value too, but that would put a secret in plain text.
    param == output
}

pub fn check(main: &File, ui_path: &str, ui_text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let f = |msg: String| Finding::new(rule::UI_DEFINITION, ui_path, 0, msg);
    let ui: Value = match serde_json::from_str(ui_text) {
        Ok(v) => v,
        Err(e) => return vec![f(format!("is not JSON: {e}"))],
    };
    if ui["handler"] != "Microsoft.Azure.CreateUIDef" || ui["version"] != "0.1.2-preview" {
        out.push(f("handler must be Microsoft.Azure.CreateUIDef and version 0.1.2-preview".into()));
    }
    let params = &ui["parameters"];
    let mut elements = BTreeMap::new();
    collect(&params["basics"], "basics", &mut elements);
    for step in params["steps"].as_array().into_iter().flatten() {
        if let Some(name) = step["name"].as_str() {
            collect(&step["elements"], &format!("steps.{name}"), &mut elements);
        }
    }
    let Some(outputs) = params["outputs"].as_object() else {
        out.push(f("has no parameters.outputs".into()));
        return out;
    };
    for p in main.of_kind(DeclKind::Param) {
        let Some(want) = param_type(&p.target, p.has_decorator("secure")) else { continue };
        let Some(expr) = outputs.get(&p.name) else {
            if p.value.is_none() {
                out.push(f(format!("main.bicep parameter `{}` has no default and no output produces it", p.name)));
            }
            continue;
        };
        match output_type(expr, &elements) {
            Ok(got) if compatible(want, got) => {}
            Ok(got) => out.push(f(format!("output `{}` is {got:?}, but main.bicep's parameter is {want:?}", p.name))),
            Err(why) => out.push(f(format!("output `{}` {why}", p.name))),
        }
    }
    for name in outputs.keys() {
        if main.decl(name).is_none_or(|d| d.kind != DeclKind::Param) {
            out.push(f(format!("output `{name}` names no parameter of main.bicep; ARM rejects the deployment")));
        }
    }
    out
}
