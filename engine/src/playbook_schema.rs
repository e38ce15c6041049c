//! The JSON Schema of the playbook format, for editors (`flow schema`), built from the
//! registered step types so that each `type` gets the schema of its own `with`.

use crate::registry::Registry;
use serde_json::{Value, json};

pub fn playbook_schema(registry: &Registry) -> Value {
    let types: Vec<&str> = registry.names().collect();
    // Each type's `with`, for a step and an `undo`; and, for a step, the names its
    // `secret_outputs` may take.
    let per_type = |step: bool| -> Vec<Value> {
        registry
            .iter()
            .map(|t| {
                let meta = t.meta();
                let mut then = json!({ "with": with_schema(&meta.params_schema) });
                if step {
                    then["secret_outputs"] = json!({ "items": { "enum": meta.outputs } });
                }
                json!({
                    "if": { "properties": { "type": { "const": meta.name } }, "required": ["type"] },
                    "then": { "properties": then }
                })
            })
            .collect()
    };
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
            "when": {
                "description": "expression; false skips the step. Or a list of checks, all of which must hold, each an expression or `{ if: expr, reason: text }`: the first false one skips the step with its reason",
                "anyOf": [
                    { "type": ["string", "boolean"] },
                    { "$ref": "#/$defs/when_check" },
                    { "type": "array", "minItems": 1, "items": { "anyOf": [ { "type": ["string", "boolean"] }, { "$ref": "#/$defs/when_check" } ] } }
                ]
            },
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
            "secret": { "type": "boolean", "description": "every output of this step is a secret: masked everywhere, and its lines (a command's stdout and stderr) are not shown" },
            "secret_outputs": {
                "type": "array",
                "items": { "type": "string" },
                "description": "these outputs of the step are secrets (`[stdout]`): masked everywhere, and the lines they are made of are not shown"
            },
            "undo": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": false,
                "properties": body,
                "allOf": per_type(false)
            }
        },
        "allOf": per_type(true)
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
            "must_exist": { "type": "boolean" },
            "ask": { "type": "boolean", "description": "asked on a terminal when no source gives a value" }
        }
    });
    let steps = json!({
        "type": "object",
        "propertyNames": { "pattern": "^[a-z][a-z0-9_]*$" },
        "additionalProperties": { "$ref": "#/$defs/step" }
    });
    let defaults: serde_json::Map<String, Value> = registry
        .defaults_keys()
        .into_iter()
        .map(|key| {
            let schema = editor_schema(registry.defaults_schema(&key));
            (key, schema)
        })
        .collect();
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
                "properties": defaults,
                "additionalProperties": false,
                "description": "values merged under the steps that take them: `redis` under every Redis block, `exec` under every exec step (step values win)"
            },
            "steps": steps,
            "finally": steps,
            "outputs": { "type": "object" }
        },
        "$defs": {
            "step": step,
            "when_check": {
                "type": "object",
                "required": ["if"],
                "additionalProperties": false,
                "properties": {
                    "if": { "type": ["string", "boolean"], "description": "expression; false skips the step" },
                    "reason": { "type": "string", "description": "what the skip means to an operator; templated" }
                }
            }
        }
    })
}

/// A step type's params schema for editors: nothing `required` at the top, because
/// `defaults:` may supply it (flow checks after merging), and a template wherever a value is.
fn with_schema(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        map.remove("required");
    }
    editor_schema(schema)
}

/// Accepts a template (`"{{ params.keep }}"`) wherever the schema expects a typed value, as flow
/// does: an editor must not mark a valid playbook red.
fn editor_schema(schema: Value) -> Value {
    loosen(schema, true)
}

/// `wrap`: false for the branches of a union, which is wrapped as a whole.
fn loosen(schema: Value, wrap: bool) -> Value {
    let Value::Object(mut map) = schema else {
        return schema;
    };
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            for child in children.values_mut() {
                *child = loosen(child.take(), true);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key)
            && child.is_object()
        {
            *child = loosen(child.take(), true);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = map.get_mut(key) {
            for branch in branches.iter_mut() {
                *branch = loosen(branch.take(), false);
            }
        }
    }
    if !wrap || takes_any_string(&map) {
        return Value::Object(map);
    }
    let description = map.remove("description");
    let mut wrapped = serde_json::Map::new();
    if let Some(description) = description {
        wrapped.insert("description".into(), description);
    }
    wrapped.insert(
        "anyOf".into(),
        json!([Value::Object(map), { "type": "string", "pattern": "\\{\\{|\\{%" }]),
    );
    Value::Object(wrapped)
}

/// Whether a schema already accepts any string (so any template).
fn takes_any_string(map: &serde_json::Map<String, Value>) -> bool {
    let string_type = match map.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    let constrained = ["pattern", "enum", "const", "minLength", "maxLength"]
        .iter()
        .any(|k| map.contains_key(*k));
    (string_type && !constrained) || map.is_empty()
}
