//! The step types a playbook may use, by name.

use crate::step_type::{DynStepType, Erased, StepType};
use indexmap::IndexMap;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct Registry {
    types: IndexMap<&'static str, Arc<dyn DynStepType>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<T: StepType>(&mut self, step_type: T) -> &mut Self {
        self.types.insert(T::NAME, Arc::new(Erased::new(step_type)));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynStepType>> {
        self.types.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn DynStepType>> {
        self.types.values()
    }

    /// The keys `defaults:` takes: the step types' own (`exec`, `file`) and their connection
    /// blocks' (`redis`).
    pub fn defaults_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.iter().flat_map(|t| t.meta().defaults_keys()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// What `defaults.<key>` may hold, for the editor schema: the connection block's fields
    /// (from a block that is not flattened into a step, when there is one), or the fields of
    /// the step types that take the key, all optional.
    pub fn defaults_schema(&self, key: &str) -> serde_json::Value {
        // (nested?, the block's fields) for every place the key is merged.
        let mut places: Vec<(bool, serde_json::Value)> = Vec::new();
        for step_type in self.iter() {
            let meta = step_type.meta();
            if meta.defaults == Some(key) {
                places.push((false, meta.params_schema.clone()));
            }
            crate::schema::defaults_blocks(&meta.params_schema, &mut |found, schema, depth| {
                if found == key {
                    places.push((depth > 0, schema.clone()));
                }
            });
        }
        let nested = places.iter().any(|(nested, _)| *nested);
        let mut properties = serde_json::Map::new();
        for (_, schema) in places.iter().filter(|(n, _)| *n == nested) {
            let fields = crate::schema::first_object(schema)
                .and_then(|o| o.get("properties"))
                .and_then(|p| p.as_object());
            for (name, property) in fields.into_iter().flatten() {
                properties
                    .entry(name.clone())
                    .or_insert_with(|| property.clone());
            }
        }
        serde_json::json!({ "type": "object", "properties": properties, "additionalProperties": false })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Registry;
    use crate::prelude::*;

    /// A `log` of one message: enough for the engine's own unit tests.
    struct Log;

    #[derive(Deserialize, JsonSchema)]
    struct LogParams {
        #[allow(dead_code)]
        message: String,
    }

    impl StepType for Log {
        const NAME: &'static str = "log";
        const SUMMARY: &'static str = "test log";
        const EFFECT: Effect = Effect::Read;
        const EXAMPLE: &'static str = "a: { type: log, with: { message: hi } }";
        type Params = LogParams;
        type Outputs = NoOutputs;

        async fn describe(&self, _: &LogParams, _: &PlanContext) -> Description {
            Description::new(Action::Read, "log")
        }

        async fn apply(&self, _: LogParams, _: &StepContext) -> Result<NoOutputs, StepError> {
            Ok(NoOutputs {})
        }
    }

    pub fn minimal() -> Registry {
        let mut registry = Registry::new();
        registry.register(Log);
        registry
    }
}
