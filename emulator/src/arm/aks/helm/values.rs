//! Helm's user-supplied values: `-f` files merged in order, then `--set`/`--set-string`.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::super::args::Parsed;
use super::super::render::yaml_to_json;

pub(super) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Helm's typed `--set` value (strvals: `true`/`false`, `null`, integers without a leading 0).
fn typed(v: &str) -> Value {
    match v {
        "true" => json!(true),
        "false" => json!(false),
        "null" => Value::Null,
        _ if v == "0" || (!v.starts_with('0') && !v.starts_with("-0") && v.parse::<i64>().is_ok()) => {
            json!(v.parse::<i64>().unwrap_or(0))
        }
        _ => json!(v),
    }
}

/// Splits on `sep` where it is not escaped with a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n != sep {
                        parts.last_mut().unwrap().push('\\');
                    }
                    parts.last_mut().unwrap().push(n);
                }
            }
            c if c == sep => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

pub(super) fn apply_set(values: &mut Value, expr: &str, as_string: bool) -> Result<(), String> {
    for pair in split_unescaped(expr, ',') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("key \"{pair}\" has no value"))?;
        let path = split_unescaped(key, '.');
        if path.iter().any(|p| p.contains('[') || p.is_empty()) {
            return Err(format!("--set {key}: list indexes are not emulated; use a values file"));
        }
        set_path(values, &path, if as_string { json!(value) } else { typed(value) });
    }
    Ok(())
}

fn set_path(at: &mut Value, path: &[String], value: Value) {
    if !at.is_object() {
        *at = json!({});
    }
    let Some(map) = at.as_object_mut() else { return };
    match path {
        [last] => {
            map.insert(last.clone(), value);
        }
        [first, rest @ ..] => set_path(map.entry(first.clone()).or_insert_with(|| json!({})), rest, value),
        [] => {}
    }
}

/// The user-supplied values of `-f` files (in order) and `--set`s, as Helm merges them.
pub(super) fn user_values(cwd: &Path, p: &Parsed) -> Result<Value, String> {
    let mut values = json!({});
    for file in p.all("-f").iter().flat_map(|f| f.split(',')) {
        let text =
            std::fs::read_to_string(cwd.join(file)).map_err(|_| format!("open {file}: no such file or directory"))?;
        let v = yaml_to_json(&text).map_err(|e| format!("failed to parse {file}: {e}"))?;
        match v {
            Value::Null => {}
            v @ Value::Object(_) => merge(&mut values, v),
            _ => return Err(format!("failed to parse {file}: error unmarshaling JSON: values must be a map")),
        }
    }
    for s in p.all("--set") {
        apply_set(&mut values, s, false).map_err(|e| format!("failed parsing --set data: {e}"))?;
    }
    for s in p.all("--set-string") {
        apply_set(&mut values, s, true).map_err(|e| format!("failed parsing --set-string data: {e}"))?;
    }
    Ok(values)
}

pub(super) fn is_empty_map(v: &Value) -> bool {
    v.as_object().is_none_or(Map::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_are_typed_like_helm() {
        let mut v = json!({"a": {"keep": 1}});
        apply_set(&mut v, "a.b=true,a.c=12,a.d=012,e=null,f=x\\,y,g\\.h=1", false).unwrap();
        assert_eq!(v, json!({"a": {"keep": 1, "b": true, "c": 12, "d": "012"}, "e": null, "f": "x,y", "g.h": 1}));
        let mut s = json!({});
        apply_set(&mut s, "a=true", true).unwrap();
        assert_eq!(s, json!({"a": "true"}));
        assert!(apply_set(&mut s, "list[0]=x", false).is_err());
    }

    #[test]
    fn merges_values_deeply() {
        let mut base = json!({"global": {"image": {"registry": "r", "tag": "1"}}, "x": [1]});
        merge(&mut base, json!({"global": {"image": {"tag": "2"}}, "x": [2]}));
        assert_eq!(base, json!({"global": {"image": {"registry": "r", "tag": "2"}}, "x": [2]}));
    }
}
