//! `steps.<id>` as templates see it: filled in as steps finish, read without copying the
//! whole table into every render.

use minijinja::Value;
use minijinja::value::{Enumerator, Object};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct StepTable {
    entries: RwLock<HashMap<String, Value>>,
}

impl StepTable {
    pub fn set(&self, id: &str, entry: &serde_json::Value) {
        let value = crate::evaluate::to_jinja(entry);
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), value);
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

impl StepTable {
    /// When step `id` was skipped: why (its `reason`, or "skipped" without one).
    pub fn skip_reason(&self, id: &str) -> Option<String> {
        let entry = self.get(id)?;
        let field = |name: &str| {
            entry
                .get_attr(name)
                .ok()
                .filter(|v| !v.is_none() && !v.is_undefined())
        };
        (field("status")?.as_str() == Some("skipped"))
            .then(|| field("reason").map_or_else(|| "skipped".to_string(), |r| r.to_string()))
    }
}

impl Object for StepTable {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|k| Value::from(k.as_str()))
            .collect();
        Enumerator::Values(keys)
    }
}
