//! Compares a desired Search index with what the service holds, as pure functions.
//!
//! The service fills in defaults (every boolean attribute, `stored`, `synonymMaps`, vector search
//! parameters) and adds `@odata.*`, so a naive comparison always differs. Desired and current
//! are compared only where the desired definition says something: what the release leaves out
//! is the service's to default. A field the release removed, or an attribute the service does
//! not let change (AI Search's rules, `azure-reference/specs/ai-search-foundry.md` §2), is a
//! breaking change; everything else is an update in place.

use serde_json::Value;

/// Field attributes an existing index cannot change.
const IMMUTABLE: &[&str] = &[
    "type",
    "key",
    "searchable",
    "filterable",
    "sortable",
    "facetable",
    "stored",
    "analyzer",
    "indexAnalyzer",
    "normalizer",
    "dimensions",
    "vectorSearchProfile",
    "vectorEncoding",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Equal,
    /// Additions or changes the service takes in place.
    Update {
        what: Vec<String>,
    },
    /// A field removed or changed in a way the service refuses: a new index name is a release
    /// decision, not a retry.
    Breaking {
        field: String,
        why: String,
    },
}

/// Does `current` hold everything `desired` says? `Value::Null` in desired means "absent".
fn covers(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => d.iter().all(|(k, v)| match c.get(k) {
            Some(cv) => covers(v, cv),
            None => v.is_null() || v == &Value::Array(vec![]),
        }),
        (Value::Array(d), Value::Array(c)) => {
            d.len() == c.len()
                && d.iter().zip(c).all(|(dv, cv)| {
                    // Lists of named things (fields, profiles) pair by name; the service may reorder.
                    match dv.get("name").and_then(Value::as_str) {
                        Some(n) => c
                            .iter()
                            .find(|x| x.get("name").and_then(Value::as_str) == Some(n))
                            .is_some_and(|x| covers(dv, x)),
                        None => covers(dv, cv),
                    }
                })
        }
        (d, c) => d == c,
    }
}

pub fn compare(desired: &Value, current: &Value) -> Verdict {
    let empty = Vec::new();
    let want = desired["fields"].as_array().unwrap_or(&empty);
    let have = current["fields"].as_array().unwrap_or(&empty);
    let by_name = |list: &'_ [Value], n: &str| {
        list.iter().find(|f| f["name"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(n))).cloned()
    };
    for h in have {
        let name = h["name"].as_str().unwrap_or_default();
        match by_name(want, name) {
            None => return Verdict::Breaking { field: name.into(), why: "the release removes it".into() },
            Some(w) => {
                for attr in IMMUTABLE {
                    if let Some(wv) = w.get(*attr) {
                        if h.get(*attr) != Some(wv) {
                            let had = h.get(*attr).map(Value::to_string).unwrap_or_else(|| "unset".into());
                            return Verdict::Breaking {
                                field: name.into(),
                                why: format!("{attr} would change from {had} to {wv}, which an existing index cannot"),
                            };
                        }
                    }
                }
            }
        }
    }
    let mut what = Vec::new();
    for w in want {
        let name = w["name"].as_str().unwrap_or_default();
        match by_name(have, name) {
            None => what.push(format!("add field {name}")),
            Some(h) if !covers(w, &h) => what.push(format!("change field {name}")),
            Some(_) => {}
        }
    }
    if let Value::Object(d) = desired {
        for (k, v) in d.iter().filter(|(k, _)| k.as_str() != "fields" && k.as_str() != "name") {
            if !covers(v, current.get(k).unwrap_or(&Value::Null)) {
                what.push(format!("change {k}"));
            }
        }
    }
    if what.is_empty() {
        Verdict::Equal
    } else {
        Verdict::Update { what }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn current() -> Value {
        // What the service answers: defaults filled in, OData annotations added.
        json!({"@odata.etag": "\"0x1\"", "name": "docs", "fields": [
            {"name": "id", "type": "Edm.String", "key": true, "searchable": true, "filterable": true, "retrievable": true, "stored": true, "sortable": true, "facetable": true, "synonymMaps": []},
            {"name": "title", "type": "Edm.String", "key": false, "searchable": true, "filterable": true, "retrievable": true, "stored": true, "sortable": true, "facetable": true, "synonymMaps": []}
        ], "scoringProfiles": [], "semantic": null})
    }

    #[test]
    fn defaults_the_service_filled_in_are_not_a_difference() {
        let desired = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}, {"name": "title", "type": "Edm.String", "searchable": true}]});
        assert_eq!(compare(&desired, &current()), Verdict::Equal);
    }

    #[test]
    fn additions_are_updates_and_removals_or_changes_are_breaking_naming_the_field() {
        let added = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}, {"name": "title", "type": "Edm.String"}, {"name": "body", "type": "Edm.String"}]});
        assert_eq!(compare(&added, &current()), Verdict::Update { what: vec!["add field body".into()] });
        let removed = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}]});
        assert!(matches!(compare(&removed, &current()), Verdict::Breaking { field, .. } if field == "title"));
        let retyped = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}, {"name": "title", "type": "Edm.Int32"}]});
        assert!(
            matches!(compare(&retyped, &current()), Verdict::Breaking { field, why } if field == "title" && why.contains("type"))
        );
        // retrievable may change in place.
        let hidden = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}, {"name": "title", "type": "Edm.String", "retrievable": false}]});
        assert_eq!(compare(&hidden, &current()), Verdict::Update { what: vec!["change field title".into()] });
        let semantic = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String", "key": true}, {"name": "title", "type": "Edm.String"}], "semantic": {"defaultConfiguration": "d"}});
        assert_eq!(compare(&semantic, &current()), Verdict::Update { what: vec!["change semantic".into()] });
    }
}
