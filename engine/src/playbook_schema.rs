//! The JSON Schema of the playbook format, for editors (`flow schema`), built from the
//! registered step types so that each `type` gets the schema of its own `with`.

use crate::registry::Registry;
use serde_json::{Value, json};

pub fn playbook_schema(registry: &Registry) -> Value {
    let types: Vec<&str> = registry.names().collect();
    let per_type: Vec<Value> = registry
        .iter()
        .map(|t| {
            let meta = t.meta();
            json!({
                "if": { "properties": { "type": { "const": meta.name } }, "required": ["type"] },
                "then": { "properties": { "with": with_schema(&meta.params_schema) } }
            })
        })
        .collect();
    let duration = json!({ "oneOf": [
        { "type": "string", "pattern": "^([0-9.]+(ms|s|m|h|d)?)+$" },
        { "type": "number", "minimum": 0 }
    ], "description": "a duration: 500ms, 30s, 5m, 1h30m, or seconds" });
    let body = json!({
        "type": { "enum": types, "description": "the step type; `flow steps` lists them" },
        "with": { "type": "object", "description": "the step type's params; templated" }
    });
    let step = json!({
        "type": "object",
        "required": ["type"],
        "additionalProperties": false,
        "properties": {
            "type": body["type"],
            "name": { "type": "string", "description": "display name (default: the id)" },
            "with": body["with"],
            "needs": { "type": "array", "items": { "type": "string" }, "description": "step ids this step waits for" },
            "when": { "type": ["string", "boolean"], "description": "expression; false skips the step" },
            "for_each": { "description": "expression giving a list; the step runs once per element (item, item_index)" },
            "concurrency": { "type": "integer", "minimum": 1, "description": "with for_each: at most N elements at once" },
            "retry": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "attempts": { "type": "integer", "minimum": 1 },
                    "delay": duration,
                    "backoff": { "type": "number", "minimum": 1 },
                    "max_delay": duration,
                    "until": { "type": "string", "description": "expression over `result`; retries while false" }
                }
            },
            "timeout": duration,
            "continue_on_error": { "type": "boolean" },
            "confirm": { "type": "string", "description": "ask for approval before this step" },
            "effect": { "enum": ["read", "write"], "description": "override for generic step types" },
            "undo": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": false,
                "properties": body,
                "allOf": per_type
            }
        },
        "allOf": per_type
    });
    let param = json!({
        "type": "object",
        "required": ["type"],
        "additionalProperties": false,
        "properties": {
            "type": { "enum": crate::param::ParamType::NAMES },
            "description": { "type": "string" },
            "default": {},
            "required": { "type": "boolean" },
            "choices": { "type": "array" },
            "pattern": { "type": "string" },
            "min": { "type": "number" },
            "max": { "type": "number" },
            "env": { "type": "string" },
            "secret": { "type": "boolean" },
            "must_exist": { "type": "boolean" }
        }
    });
    let steps = json!({
        "type": "object",
        "propertyNames": { "pattern": "^[a-z][a-z0-9_]*$" },
        "additionalProperties": { "$ref": "#/$defs/step" }
    });
    let families: Vec<String> = registry.families();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "flow playbook",
        "type": "object",
        "required": ["flow", "steps"],
        "additionalProperties": false,
        "properties": {
            "flow": { "const": 1, "description": "format version" },
            "name": { "type": "string" },
            "description": { "type": "string" },
            "params": { "type": "object", "additionalProperties": param },
            "defaults": {
                "type": "object",
                "propertyNames": { "enum": families },
                "additionalProperties": { "type": "object" },
                "description": "merged under every step of a family (step values win)"
            },
            "steps": steps,
            "finally": steps,
            "outputs": { "type": "object" }
        },
        "$defs": { "step": step }
    })
}

/// Loosens a params schema for editors: any string may be a template.
/// A step type's params schema for editors: nothing `required` at the top, because
/// `defaults:` may supply it (flow checks after merging).
fn with_schema(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        map.remove("required");
    }
    schema
}
