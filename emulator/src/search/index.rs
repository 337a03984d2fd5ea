//! Search index definitions as the service holds them: validation of a `SearchIndex` body, the
//! defaults the service fills in (what a GET shows for a definition that left them out), and
//! which updates of an existing index it refuses.
//!
//! Sources: `specs/ai-search-foundry.md` §2 and §8 (S1 `searchservice.json` 2025-09-01). The
//! defaults are the ones a GET of a real index shows; the immutable attributes follow the
//! service's "Existing field cannot be changed" rule (feature23/AzureSearchEmulator#32).

use serde_json::{json, Map, Value};

/// A definition the service refuses: status 400, `error.code`, message, optional `details`.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<(&'static str, String)>,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Refusal {
        Refusal { code: "InvalidRequestParameter", message: message.into(), detail: None }
    }
}

const SCALARS: &[&str] = &[
    "Edm.String",
    "Edm.Int32",
    "Edm.Int64",
    "Edm.Double",
    "Edm.Boolean",
    "Edm.DateTimeOffset",
    "Edm.GeographyPoint",
    "Edm.ComplexType",
];
/// Element types that exist only as vectors (`Collection(Edm.Single)` ...).
const VECTOR_ELEMENTS: &[&str] = &["Edm.Single", "Edm.Half", "Edm.Int16", "Edm.SByte", "Edm.Byte"];

/// Attributes of an existing field an update may not change (retrievable, searchAnalyzer and
/// synonymMaps may change).
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

/// Index parts whose new or changed entries need `allowIndexDowntime=true` on an update.
const DOWNTIME_PARTS: &[&str] = &["analyzers", "tokenizers", "tokenFilters", "charFilters", "normalizers"];

/// The service's name rule, in its own words (Azure/azure-sdk-for-net#38768).
pub const NAME_RULE: &str = "Index name must only contain lowercase letters, digits or dashes, cannot start or end \
                             with dashes and is limited to 128 characters.";

pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (2..=128).contains(&b.len()) && edge(b[0]) && edge(b[b.len() - 1]) && b.iter().all(|&c| edge(c) || c == b'-')
}

fn element_type(ty: &str) -> (&str, bool) {
    match ty.strip_prefix("Collection(").and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (inner, true),
        None => (ty, false),
    }
}

fn known_type(ty: &str) -> bool {
    match element_type(ty) {
        (inner, true) => SCALARS.contains(&inner) || VECTOR_ELEMENTS.contains(&inner),
        (inner, false) => SCALARS.contains(&inner),
    }
}

/// `(searchable, filterable, sortable, facetable)` when the definition leaves them out.
fn attribute_defaults(ty: &str) -> (bool, bool, bool, bool) {
    match element_type(ty) {
        (inner, true) if VECTOR_ELEMENTS.contains(&inner) => (true, false, false, false),
        ("Edm.String", false) => (true, true, true, true),
        ("Edm.String", true) => (true, true, false, true),
        ("Edm.GeographyPoint", false) => (false, true, true, false),
        ("Edm.GeographyPoint", true) => (false, true, false, false),
        (_, true) => (false, true, false, true),
        (_, false) => (false, true, true, true),
    }
}

fn valid_field_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !name.starts_with("azureSearch")
}

fn or_default(src: &Map<String, Value>, key: &str, default: Value) -> Value {
    match src.get(key) {
        Some(Value::Null) | None => default,
        Some(v) => v.clone(),
    }
}

/// One field with every attribute the service reports, sub-fields of a complex field too.
fn field(raw: &Value, path: &str) -> Result<Value, Refusal> {
    let Some(src) = raw.as_object() else {
        return Err(Refusal::invalid(format!("The request is invalid. Details: {path} : A field must be an object.")));
    };
    let name = src.get("name").and_then(Value::as_str).unwrap_or_default();
    let at = if path.is_empty() { name.to_owned() } else { format!("{path}/{name}") };
    if !valid_field_name(name) {
        return Err(Refusal::invalid(format!(
            "The request is invalid. Details: index : Invalid field name: '{name}'. Field names must begin with a \
             letter and can contain only letters, digits, or underscore ('_')."
        )));
    }
    let ty = src.get("type").and_then(Value::as_str).unwrap_or_default();
    if !known_type(ty) {
        return Err(Refusal::invalid(format!(
            "The request is invalid. Details: index : The field '{at}' has an unknown type '{ty}'."
        )));
    }
    if element_type(ty).0 == "Edm.ComplexType" {
        let subs = src.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
        if subs.is_empty() {
            return Err(Refusal::invalid(format!(
                "The request is invalid. Details: index : The complex field '{at}' must have at least one sub-field."
            )));
        }
        return Ok(json!({"name": name, "type": ty, "fields": fields(&subs, &at)?}));
    }
    let (searchable, filterable, sortable, facetable) = attribute_defaults(ty);
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    out.insert("type".into(), json!(ty));
    for (key, default) in [
        ("searchable", searchable),
        ("filterable", filterable),
        ("retrievable", true),
        ("stored", true),
        ("sortable", sortable),
        ("facetable", facetable),
        ("key", false),
    ] {
        out.insert(key.into(), or_default(src, key, json!(default)));
    }
    for key in [
        "indexAnalyzer",
        "searchAnalyzer",
        "analyzer",
        "normalizer",
        "dimensions",
        "vectorSearchProfile",
        "vectorEncoding",
    ] {
        out.insert(key.into(), or_default(src, key, Value::Null));
    }
    out.insert("synonymMaps".into(), or_default(src, "synonymMaps", json!([])));
    Ok(Value::Object(out))
}

fn fields(raw: &[Value], path: &str) -> Result<Vec<Value>, Refusal> {
    let mut out: Vec<Value> = Vec::with_capacity(raw.len());
    for f in raw {
        let f = field(f, path)?;
        let name = f["name"].as_str().unwrap_or_default();
        if out.iter().any(|o| o["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))) {
            return Err(Refusal::invalid(format!(
                "The request is invalid. Details: index : The field name '{name}' is used more than once."
            )));
        }
        out.push(f);
    }
    Ok(out)
}

/// Fills `defaults` into each object of `list[key]` where it is absent or null.
fn fill_each(list: Option<&Value>, defaults: &[(&str, Value)]) -> Value {
    let items = list.and_then(Value::as_array).cloned().unwrap_or_default();
    Value::Array(
        items
            .into_iter()
            .map(|mut item| {
                if let Some(obj) = item.as_object_mut() {
                    for (k, v) in defaults {
                        if obj.get(*k).is_none_or(Value::is_null) {
                            obj.insert((*k).to_owned(), v.clone());
                        }
                    }
                }
                item
            })
            .collect(),
    )
}

fn vector_search(raw: &Value) -> Value {
    let Some(src) = raw.as_object() else { return Value::Null };
    let algorithms = src.get("algorithms").and_then(Value::as_array).cloned().unwrap_or_default();
    let algorithms: Vec<Value> = algorithms
        .into_iter()
        .map(|mut a| {
            let (key, defaults) = match a["kind"].as_str() {
                Some("exhaustiveKnn") => ("exhaustiveKnnParameters", json!({"metric": "cosine"})),
                _ => ("hnswParameters", json!({"metric": "cosine", "m": 4, "efConstruction": 400, "efSearch": 500})),
            };
            let mut params = defaults;
            if let (Some(p), Some(given)) = (params.as_object_mut(), a.get(key).and_then(Value::as_object)) {
                for (k, v) in given.iter().filter(|(_, v)| !v.is_null()) {
                    p.insert(k.clone(), v.clone());
                }
            }
            a[key] = params;
            a
        })
        .collect();
    let mut out = src.clone();
    out.insert("algorithms".into(), Value::Array(algorithms));
    for key in ["profiles", "vectorizers", "compressions"] {
        out.insert(key.into(), or_default(src, key, json!([])));
    }
    Value::Object(out)
}

fn semantic(raw: &Value) -> Value {
    let Some(src) = raw.as_object() else { return Value::Null };
    let configs = src.get("configurations").and_then(Value::as_array).cloned().unwrap_or_default();
    let configs: Vec<Value> = configs
        .into_iter()
        .map(|mut c| {
            let pf = c.get("prioritizedFields").and_then(Value::as_object).cloned().unwrap_or_default();
            c["prioritizedFields"] = json!({
                "titleField": or_default(&pf, "titleField", Value::Null),
                "prioritizedContentFields": or_default(&pf, "prioritizedContentFields", json!([])),
                "prioritizedKeywordsFields": or_default(&pf, "prioritizedKeywordsFields", json!([])),
            });
            c
        })
        .collect();
    json!({"defaultConfiguration": or_default(src, "defaultConfiguration", Value::Null), "configurations": configs})
}

/// The index as the service stores and returns it: `raw` validated, every default filled in,
/// `@odata.*` annotations dropped (the service adds its own).
pub fn normalize(raw: &Value, url_name: &str) -> Result<Value, Refusal> {
    let Some(src) = raw.as_object() else {
        return Err(Refusal::invalid("The request is invalid. Details: index : The index must be a JSON object."));
    };
    let name = src.get("name").and_then(Value::as_str).unwrap_or(url_name);
    if name != url_name {
        return Err(Refusal::invalid(format!(
            "The request is invalid. Details: index : The index name '{name}' in the request body does not match the \
             index name '{url_name}' in the request URI."
        )));
    }
    if !valid_name(name) {
        return Err(Refusal::invalid(format!("The request is invalid. Details: index : {NAME_RULE}")));
    }
    let raw_fields = src.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
    if raw_fields.is_empty() {
        return Err(Refusal::invalid(
            "The request is invalid. Details: index : Index definition must contain one or more valid fields.",
        ));
    }
    let fields = fields(&raw_fields, "")?;
    check_key(name, &fields)?;

    let mut out: Map<String, Value> =
        src.iter().filter(|(k, _)| !k.starts_with("@odata.")).map(|(k, v)| (k.clone(), v.clone())).collect();
    out.insert("name".into(), json!(name));
    out.insert("fields".into(), Value::Array(fields));
    out.insert("defaultScoringProfile".into(), or_default(src, "defaultScoringProfile", Value::Null));
    out.insert(
        "scoringProfiles".into(),
        fill_each(src.get("scoringProfiles"), &[("functionAggregation", json!("sum")), ("functions", json!([]))]),
    );
    out.insert(
        "suggesters".into(),
        fill_each(src.get("suggesters"), &[("searchMode", json!("analyzingInfixMatching"))]),
    );
    for key in DOWNTIME_PARTS {
        out.insert((*key).into(), or_default(src, key, json!([])));
    }
    for key in ["corsOptions", "encryptionKey"] {
        out.insert(key.into(), or_default(src, key, Value::Null));
    }
    out.insert(
        "similarity".into(),
        or_default(
            src,
            "similarity",
            json!({"@odata.type": "#Microsoft.Azure.Search.BM25Similarity", "k1": null, "b": null}),
        ),
    );
    out.insert("semantic".into(), src.get("semantic").map_or(Value::Null, semantic));
    out.insert("vectorSearch".into(), src.get("vectorSearch").map_or(Value::Null, vector_search));
    Ok(Value::Object(out))
}

/// Exactly one top-level key field, of type `Edm.String` (the first message is the service's,
/// azure-sdk-for-java#42161).
fn check_key(index: &str, fields: &[Value]) -> Result<(), Refusal> {
    let keys: Vec<&Value> = fields.iter().filter(|f| f["key"] == json!(true)).collect();
    if keys.len() != 1 {
        let detail =
            format!("Found {} key fields in index '{index}'. Each index must have exactly one key field.", keys.len());
        return Err(Refusal {
            code: "OperationNotAllowed",
            message: format!("The request is invalid. Details: index : {detail}"),
            detail: Some(("MissingKeyField", format!("{detail} Parameters: index"))),
        });
    }
    let key = keys[0];
    if key["type"] != json!("Edm.String") {
        let detail = format!(
            "The key field '{}' is of type '{}'. Key fields must be of type 'Edm.String'.",
            key["name"].as_str().unwrap_or_default(),
            key["type"].as_str().unwrap_or_default()
        );
        return Err(Refusal {
            code: "OperationNotAllowed",
            message: format!("The request is invalid. Details: index : {detail}"),
            detail: Some(("InvalidKeyField", format!("{detail} Parameters: index"))),
        });
    }
    Ok(())
}

/// Why an update of `old` to `new` (both normalized) is refused, if it is.
pub fn refuse_update(old: &Value, new: &Value, allow_downtime: bool) -> Option<Refusal> {
    let empty = Vec::new();
    let list = |v: &Value| v["fields"].as_array().cloned().unwrap_or_default();
    if let Some(path) = changed_field(&list(old), &list(new), "") {
        let message = format!("Existing field '{path}' cannot be changed.");
        return Some(Refusal {
            code: "OperationNotAllowed",
            message: message.clone(),
            detail: Some(("CannotChangeExistingField", message)),
        });
    }
    if !allow_downtime {
        for part in DOWNTIME_PARTS {
            let before = old[*part].as_array().unwrap_or(&empty);
            let after = new[*part].as_array().unwrap_or(&empty);
            if after.iter().any(|item| !before.contains(item)) {
                return Some(Refusal {
                    code: "OperationNotAllowed",
                    message: "Index update not allowed because it would cause downtime. In order to add new \
                              analyzers, tokenizers, token filters, or character filters to an existing index, set \
                              the 'allowIndexDowntime' query parameter to 'true' in the index update request. Note \
                              that this operation will put your index offline for at least a few seconds, causing \
                              your indexing and query requests to fail. Performance and write availability of the \
                              index can be impaired for several minutes after the index is updated, or longer for \
                              very large indexes."
                        .to_owned(),
                    detail: Some(("CannotUpdateIndexWithoutDowntime", format!("'{part}' changed"))),
                });
            }
        }
    }
    None
}

/// The first existing field (in the old definition's order; `parent/child` for sub-fields)
/// that `new` removes or changes.
fn changed_field(old: &[Value], new: &[Value], path: &str) -> Option<String> {
    for of in old {
        let name = of["name"].as_str().unwrap_or_default();
        let at = if path.is_empty() { name.to_owned() } else { format!("{path}/{name}") };
        let Some(nf) = new.iter().find(|f| f["name"].as_str() == Some(name)) else {
            return Some(at);
        };
        if IMMUTABLE.iter().any(|a| of.get(*a) != nf.get(*a)) {
            return Some(at);
        }
        let subs = |f: &Value| f["fields"].as_array().cloned().unwrap_or_default();
        if let Some(p) = changed_field(&subs(of), &subs(nf), &at) {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(extra: Value) -> Value {
        let mut fields = vec![
            json!({"name": "id", "type": "Edm.String", "key": true}),
            json!({"name": "title", "type": "Edm.String"}),
            json!({"name": "year", "type": "Edm.Int32", "facetable": false}),
        ];
        if let Some(more) = extra.as_array() {
            fields.extend(more.iter().cloned());
        }
        json!({"name": "docs", "fields": fields})
    }

    #[test]
    fn fills_the_service_defaults() {
        let n = normalize(&docs(json!([{"name": "tags", "type": "Collection(Edm.String)"}])), "docs").unwrap();
        let f = &n["fields"];
        assert_eq!(f[0]["searchable"], true);
        assert_eq!(f[0]["stored"], true);
        assert_eq!(f[0]["synonymMaps"], json!([]));
        assert_eq!(f[0]["analyzer"], Value::Null);
        assert_eq!((f[2]["searchable"].clone(), f[2]["facetable"].clone()), (json!(false), json!(false)));
        assert_eq!(f[3]["sortable"], false, "collections are not sortable");
        assert_eq!(n["scoringProfiles"], json!([]));
        assert_eq!(n["similarity"]["@odata.type"], "#Microsoft.Azure.Search.BM25Similarity");
        assert_eq!(n["semantic"], Value::Null);
        // Normalizing what the service returned changes nothing: a GET body diffs clean.
        assert_eq!(normalize(&n, "docs").unwrap(), n);
    }

    #[test]
    fn hnsw_parameters_default() {
        let mut def = docs(json!([]));
        def["vectorSearch"] = json!({"algorithms": [{"name": "h", "kind": "hnsw", "hnswParameters": {"m": 8}}]});
        let n = normalize(&def, "docs").unwrap();
        assert_eq!(
            n["vectorSearch"]["algorithms"][0]["hnswParameters"],
            json!({"metric": "cosine", "m": 8, "efConstruction": 400, "efSearch": 500})
        );
        assert_eq!(n["vectorSearch"]["profiles"], json!([]));
    }

    #[test]
    fn names_and_keys_are_checked() {
        assert!(valid_name("vibedata-docs") && valid_name("a1"));
        for bad in ["Docs", "-docs", "docs-", "d", "do_cs", &"a".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
        let no_key = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.String"}]});
        let r = normalize(&no_key, "docs").unwrap_err();
        assert_eq!((r.code, r.detail.unwrap().0), ("OperationNotAllowed", "MissingKeyField"));
        assert!(r.message.contains("Found 0 key fields in index 'docs'"));
        let two = json!({"name": "docs", "fields": [
            {"name": "id", "type": "Edm.String", "key": true}, {"name": "b", "type": "Edm.String", "key": true}]});
        assert!(normalize(&two, "docs").unwrap_err().message.contains("Found 2 key fields"));
        let int_key = json!({"name": "docs", "fields": [{"name": "id", "type": "Edm.Int32", "key": true}]});
        assert_eq!(normalize(&int_key, "docs").unwrap_err().detail.unwrap().0, "InvalidKeyField");
        assert!(normalize(&docs(json!([])), "other").unwrap_err().message.contains("does not match"));
        let bad_type = docs(json!([{"name": "x", "type": "Edm.Decimal"}]));
        assert!(normalize(&bad_type, "docs").unwrap_err().message.contains("unknown type"));
    }

    #[test]
    fn additions_pass_and_changes_or_removals_name_the_field() {
        let old = normalize(&docs(json!([])), "docs").unwrap();
        let added = normalize(&docs(json!([{"name": "body", "type": "Edm.String"}])), "docs").unwrap();
        assert_eq!(refuse_update(&old, &added, false), None);
        let mut retrievable = docs(json!([]));
        retrievable["fields"][1]["retrievable"] = json!(false);
        assert_eq!(refuse_update(&old, &normalize(&retrievable, "docs").unwrap(), false), None);

        let mut changed = docs(json!([]));
        changed["fields"][1]["filterable"] = json!(false);
        let r = refuse_update(&old, &normalize(&changed, "docs").unwrap(), false).unwrap();
        assert_eq!(r.message, "Existing field 'title' cannot be changed.");
        assert_eq!(r.detail.unwrap().0, "CannotChangeExistingField");

        let mut removed = docs(json!([]));
        removed["fields"].as_array_mut().unwrap().remove(2);
        let r = refuse_update(&old, &normalize(&removed, "docs").unwrap(), false).unwrap();
        assert!(r.message.contains("'year'"));
    }

    #[test]
    fn new_analyzers_need_downtime() {
        let old = normalize(&docs(json!([])), "docs").unwrap();
        let mut def = docs(json!([]));
        def["analyzers"] =
            json!([{"@odata.type": "#Microsoft.Azure.Search.CustomAnalyzer", "name": "a", "tokenizer": "standard_v2"}]);
        let new = normalize(&def, "docs").unwrap();
        assert!(refuse_update(&old, &new, false).unwrap().message.contains("allowIndexDowntime"));
        assert_eq!(refuse_update(&old, &new, true), None);
    }
}
