//! The ARM resource envelope — `{id, name, type, location, tags, kind, sku, identity, etag,
//! properties}` — that every ARM answer for a resource wraps its `properties` in. One builder,
//! so every handler spells the common fields alike and leaves out the same ones when absent.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub struct Envelope {
    fields: Map<String, Value>,
}

/// A resource's envelope: the three fields every resource has.
pub fn resource(id: impl Into<String>, name: impl Into<String>, resource_type: &str) -> Envelope {
    let mut fields = Map::new();
    fields.insert("id".into(), json!(id.into()));
    fields.insert("name".into(), json!(name.into()));
    fields.insert("type".into(), json!(resource_type));
    Envelope { fields }
}

impl Envelope {
    fn set(mut self, key: &str, value: Option<Value>) -> Envelope {
        if let Some(value) = value {
            self.fields.insert(key.to_owned(), value);
        }
        self
    }

    pub fn location(self, location: &str) -> Envelope {
        self.set("location", Some(json!(location)))
    }

    pub fn tags(self, tags: &Value) -> Envelope {
        self.set("tags", Some(tags.clone()))
    }

    pub fn kind(self, kind: Option<&str>) -> Envelope {
        self.set("kind", kind.map(|k| json!(k)))
    }

    pub fn sku(self, sku: Option<&Value>) -> Envelope {
        self.set("sku", sku.cloned())
    }

    pub fn identity(self, identity: Option<&Value>) -> Envelope {
        self.set("identity", identity.cloned())
    }

    pub fn etag(self, etag: Option<&str>) -> Envelope {
        self.set("etag", etag.map(|e| json!(e)))
    }

    pub fn properties(self, properties: Value) -> Envelope {
        self.set("properties", Some(properties))
    }

    pub fn build(self) -> Value {
        Value::Object(self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_parts_are_left_out() {
        let v = resource("/s/x", "x", "A/b").location("eastus").kind(None).etag(Some("W/\"1\"")).build();
        assert_eq!(v, json!({"id": "/s/x", "name": "x", "type": "A/b", "location": "eastus", "etag": "W/\"1\""}));
        let v = resource("/s/y", "y", "A/b").tags(&json!({})).properties(json!({"p": 1})).build();
        assert_eq!(v, json!({"id": "/s/y", "name": "y", "type": "A/b", "tags": {}, "properties": {"p": 1}}));
    }
}
