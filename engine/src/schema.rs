//! JSON Schemas of step params (from schemars) and the check of a `with` block against one,
//! done on the YAML nodes so that each error points at the field that is wrong. Templated
//! values are accepted where their rendered type cannot be known before the run.

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::yaml::{Node, NodeValue};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The schema of a type with every subschema inlined, so the checker never follows `$ref`.
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Some(map) = value.as_object_mut() {
        map.remove("title");
    }
    close_objects(&mut value);
    value
}

/// Structs with named fields accept no other field, also when they flatten a shared block
/// (serde cannot `deny_unknown_fields` with `flatten`; the check of `with` does it instead).
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Checks `node` against `schema`; `path` names the field (`with.command`) in messages.
pub fn check(node: &Node, schema: &Value, path: &str, out: &mut Vec<Diagnostic>) {
    let Some(schema) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            out.push(Diagnostic::error(
                Some(&node.span),
                format!("`{path}` is not allowed here"),
            ));
        }
        return;
    };
    if let NodeValue::Str(text) = &node.value
        && (text.contains("{{") || text.contains("{%"))
    {
        let whole = text.trim_start().starts_with("{{") && text.trim_end().ends_with("}}");
        if whole || accepts(schema, "string") {
            return;
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            check_union(node, branches, path, out);
            return;
        }
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for branch in all {
            check(node, branch, path, out);
        }
    }
    if let Some(Value::Array(choices)) = schema.get("enum") {
        check_choice(node, choices, path, out);
        return;
    }
    if let Some(constant) = schema.get("const") {
        check_choice(node, std::slice::from_ref(constant), path, out);
        return;
    }
    if schema.contains_key("type") && !type_matches(schema, node) {
        out.push(Diagnostic::error(
            Some(&node.span),
            format!(
                "`{path}` must be {}, found {}",
                describe(&Value::Object(schema.clone())),
                node.kind()
            ),
        ));
        return;
    }
    match &node.value {
        NodeValue::Map(entries) => check_object(node, entries, schema, path, out),
        NodeValue::List(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(item, item_schema, &format!("{path}[{index}]"), out);
                }
            }
        }
        NodeValue::Int(_) | NodeValue::Float(_) => {
            let value = match node.value {
                NodeValue::Int(i) => i as f64,
                NodeValue::Float(f) => f,
                _ => unreachable!("matched above"),
            };
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && value < min
            {
                out.push(Diagnostic::error(
                    Some(&node.span),
                    format!(
                        "`{path}` must be at least {min}, found {}",
                        crate::evaluate::display_value(&node.to_json())
                    ),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && value > max
            {
                out.push(Diagnostic::error(
                    Some(&node.span),
                    format!(
                        "`{path}` must be at most {max}, found {}",
                        crate::evaluate::display_value(&node.to_json())
                    ),
                ));
            }
        }
        NodeValue::Str(text) => {
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && regex::Regex::new(pattern).is_ok_and(|r| !r.is_match(text))
            {
                out.push(Diagnostic::error(
                    Some(&node.span),
                    format!("`{path}` does not match `{pattern}`, found `{text}`"),
                ));
            }
        }
        _ => {}
    }
    if let (NodeValue::List(items), Some(min)) =
        (&node.value, schema.get("minItems").and_then(Value::as_u64))
        && (items.len() as u64) < min
    {
        out.push(Diagnostic::error(
            Some(&node.span),
            format!(
                "`{path}` is empty: it needs at least {min} item{}",
                if min == 1 { "" } else { "s" }
            ),
        ));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && let Err(message) = check_format(format, node)
    {
        out.push(Diagnostic::error(
            Some(&node.span),
            format!("`{path}`: {message}"),
        ));
    }
}

/// Formats flow's own types declare, checked with the same parsers the run uses.
fn check_format(format: &str, node: &Node) -> Result<(), String> {
    let text = match &node.value {
        NodeValue::Str(s) => s.clone(),
        NodeValue::Int(i) => i.to_string(),
        NodeValue::Float(f) => f.to_string(),
        _ => return Ok(()),
    };
    match format {
        "flow-duration" => crate::duration::parse_duration(&text).map(|_| ()),
        "file-mode" => crate::values::parse_file_mode(&text).map(|_| ()),
        "printable" => match crate::values::control_character(&text) {
            Some(why) => Err(why),
            None => Ok(()),
        },
        "distinct-characters" => {
            let mut seen = std::collections::HashSet::new();
            match text.chars().find(|c| !seen.insert(*c)) {
                Some(twice) => Err(format!("`{twice}` is there more than once")),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn check_object(
    node: &Node,
    entries: &[(crate::yaml::Key, Node)],
    schema: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<Diagnostic>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (key, value) in entries {
        let field = if path.is_empty() {
            key.name.clone()
        } else {
            format!("{path}.{}", key.name)
        };
        match properties.and_then(|p| p.get(&key.name)) {
            Some(sub) => check(value, sub, &field, out),
            None => match additional {
                Some(Value::Bool(false)) => {
                    let names = properties
                        .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>())
                        .unwrap_or_default();
                    let mut diagnostic =
                        Diagnostic::error(Some(&key.span), format!("unknown field `{field}`"));
                    diagnostic = match did_you_mean(&key.name, names.iter().copied()) {
                        Some(hint) => diagnostic.with_help(hint),
                        None if !names.is_empty() => {
                            diagnostic.with_help(format!("accepted fields: {}", names.join(", ")))
                        }
                        None => diagnostic,
                    };
                    out.push(diagnostic);
                }
                Some(sub) => check(value, sub, &field, out),
                None => {}
            },
        }
    }
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !entries.iter().any(|(k, _)| k.name == name) {
                let field = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                out.push(Diagnostic::error(
                    Some(&node.span),
                    format!("missing required field `{field}`"),
                ));
            }
        }
    }
}

fn check_union(node: &Node, branches: &[Value], path: &str, out: &mut Vec<Diagnostic>) {
    // An enum whose variants carry docs comes out as `oneOf` of constants: one choice.
    let constants: Option<Vec<Value>> = branches.iter().map(|b| b.get("const").cloned()).collect();
    if let Some(constants) = constants {
        check_choice(node, &constants, path, out);
        return;
    }
    let mut best: Option<Vec<Diagnostic>> = None;
    for branch in branches {
        let mut errors = Vec::new();
        check(node, branch, path, &mut errors);
        if errors.is_empty() {
            return;
        }
        let shaped = branch
            .as_object()
            .is_some_and(|b| !b.contains_key("type") || type_matches(b, node));
        if shaped && best.as_ref().is_none_or(|b| errors.len() < b.len()) {
            best = Some(errors);
        }
    }
    match best {
        Some(errors) => out.extend(errors),
        None => out.push(Diagnostic::error(
            Some(&node.span),
            format!(
                "`{path}` must be {}, found {}",
                branches
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join(" or "),
                node.kind()
            ),
        )),
    }
}

/// Choices as written: text without quotes, other values as JSON.
fn choice_names(choices: &[Value]) -> Vec<String> {
    choices
        .iter()
        .map(|c| {
            c.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c.to_string())
        })
        .collect()
}

fn check_choice(node: &Node, choices: &[Value], path: &str, out: &mut Vec<Diagnostic>) {
    let value = node.to_json();
    if choices.contains(&value) {
        return;
    }
    let names = choice_names(choices);
    let mut diagnostic = Diagnostic::error(
        Some(&node.span),
        format!(
            "`{path}` must be one of {}, found `{}`",
            quote_list(&names),
            crate::evaluate::display_value(&value)
        ),
    );
    if let Some(hint) = node
        .as_str()
        .and_then(|s| did_you_mean(s, names.iter().map(String::as_str)))
    {
        diagnostic = diagnostic.with_help(hint);
    }
    out.push(diagnostic);
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn accepts(schema: &serde_json::Map<String, Value>, kind: &str) -> bool {
    match schema.get("type") {
        None => {
            ["anyOf", "oneOf"].iter().all(|k| !schema.contains_key(*k))
                || ["anyOf", "oneOf"].iter().any(|k| {
                    schema.get(*k).and_then(Value::as_array).is_some_and(|bs| {
                        bs.iter()
                            .any(|b| b.as_object().is_some_and(|b| accepts(b, kind)))
                    })
                })
        }
        Some(Value::String(t)) => t == kind,
        Some(Value::Array(ts)) => ts.iter().any(|t| t == kind),
        _ => false,
    }
}

fn type_matches(schema: &serde_json::Map<String, Value>, node: &Node) -> bool {
    let kinds: &[&str] = match &node.value {
        NodeValue::Null => &["null"],
        NodeValue::Bool(_) => &["boolean"],
        NodeValue::Int(_) => &["integer", "number"],
        NodeValue::Float(f) if f.fract() == 0.0 => &["number", "integer"],
        NodeValue::Float(_) => &["number"],
        NodeValue::Str(_) => &["string"],
        NodeValue::List(_) => &["array"],
        NodeValue::Map(_) => &["object"],
    };
    kinds.iter().any(|k| accepts(schema, k))
}

/// Names what a schema accepts, for error messages: `a string`, `a list of strings`, …
pub fn describe(schema: &Value) -> String {
    let Some(map) = schema.as_object() else {
        return "anything".into();
    };
    if let Some(Value::Array(choices)) = map.get("enum") {
        return format!("one of {}", quote_list(&choice_names(choices)));
    }
    if map.contains_key(crate::values::EXPRESSION_MARK) {
        return "an expression".into();
    }
    if let Some(c) = map.get("const") {
        return format!(
            "`{}`",
            c.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c.to_string())
        );
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            return branches
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    let one = |t: &str| match t {
        "string" => "a string".to_string(),
        "integer" => "an integer".to_string(),
        "number" => "a number".to_string(),
        "boolean" => "a boolean".to_string(),
        "null" => "null".to_string(),
        "array" => match map.get("items") {
            Some(items) if items.is_object() => format!("a list of {}", plural(&describe(items))),
            _ => "a list".to_string(),
        },
        "object" => "a mapping".to_string(),
        other => other.to_string(),
    };
    match map.get("type") {
        Some(Value::Array(ts))
            if ts.iter().any(|t| t == "string")
                && ts.iter().all(|t| t != "array" && t != "object") =>
        {
            "text".to_string()
        }
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "anything".into(),
    }
}

fn plural(single: &str) -> String {
    let bare = single.trim_start_matches("a ").trim_start_matches("an ");
    match bare {
        "text" => "strings".to_string(),
        "expression" => "expressions".to_string(),
        _ if bare.starts_with("one of") => bare.to_string(),
        _ if bare.contains(" or ") => bare
            .split(" or ")
            .map(plural)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => format!("{bare}s"),
    }
}

/// Turns numbers and booleans into text where the schema wants a string: `{{ item_index }}`
/// keeps its type as a value, and a `content:` or `message:` field should still take it.
pub fn coerce(value: Value, schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return value;
    };
    match value {
        Value::Number(_) | Value::Bool(_) => {
            let kind = if value.is_boolean() {
                "boolean"
            } else if value.as_i64().is_some() || value.as_u64().is_some() {
                "integer"
            } else {
                "number"
            };
            if accepts(map, "string")
                && !accepts(map, kind)
                && !(kind == "integer" && accepts(map, "number"))
            {
                Value::String(value.to_string())
            } else {
                value
            }
        }
        Value::Object(entries) => {
            let properties = map.get("properties").and_then(Value::as_object);
            let additional = map.get("additionalProperties");
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let sub = properties.and_then(|p| p.get(&k)).or(additional);
                        let v = match sub {
                            Some(sub) => coerce(v, sub),
                            None => v,
                        };
                        (k, v)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => match map.get("items") {
            Some(sub) => Value::Array(items.into_iter().map(|v| coerce(v, sub)).collect()),
            None => Value::Array(items),
        },
        other => other,
    }
}

/// The value of `mark` on this schema, or on the branch of a union or the items it wraps
/// (`Option<Secret>`, `Vec<Evaluated>`, `OneOrMany<Evaluated>`).
pub fn mark<'a>(schema: &'a Value, mark: &str) -> Option<&'a Value> {
    let map = schema.as_object()?;
    if let Some(value) = map.get(mark) {
        return Some(value);
    }
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_array))
        .flatten()
        .chain(map.get("items"))
        .find_map(|branch| self::mark(branch, mark))
}

/// The object schemas `schema` may be: itself, or the branches of its union.
fn object_branches(schema: &Value) -> Vec<&serde_json::Map<String, Value>> {
    let Some(map) = schema.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if map.contains_key("properties") {
        out.push(map);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in map.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(object_branches(branch));
        }
    }
    out
}

/// The first object schema `schema` may be (itself, or a branch of its union).
pub fn first_object(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    object_branches(schema).into_iter().next()
}

/// The properties of every object schema `schema` may be.
fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    object_branches(schema)
        .into_iter()
        .filter_map(|object| object.get("properties").and_then(Value::as_object))
        .flatten()
}

/// Top-level properties of `schema` that carry `mark`, with the mark's value.
pub fn marked_fields(schema: &Value, mark_name: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (name, property) in properties(schema) {
        if let Some(value) = mark(property, mark_name)
            && !out.iter().any(|(n, _)| n == name)
        {
            out.push((name.clone(), value.clone()));
        }
    }
    out
}

/// Names of properties at any depth of `schema` that carry `mark` (a `password` inside a
/// Redis block inside `left`).
pub fn marked_fields_deep(schema: &Value, mark_name: &str) -> Vec<String> {
    fn walk(schema: &Value, mark_name: &str, out: &mut Vec<String>) {
        for (name, property) in properties(schema) {
            if mark(property, mark_name).is_some() {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            } else {
                walk(property, mark_name, out);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, mark_name, out);
        }
    }
    let mut out = Vec::new();
    walk(schema, mark_name, &mut out);
    out
}

/// Calls `found(key, block_schema, depth)` for every connection block in `schema` (a
/// subschema marked `x-flow-defaults: key`); depth 0 is a block flattened into the top.
pub fn defaults_blocks(schema: &Value, found: &mut dyn FnMut(&str, &Value, usize)) {
    fn walk(schema: &Value, depth: usize, found: &mut dyn FnMut(&str, &Value, usize)) {
        if let Some(key) = mark(schema, crate::values::DEFAULTS_MARK).and_then(Value::as_str) {
            found(key, schema, depth);
        }
        for object in object_branches(schema) {
            let properties = object.get("properties").and_then(Value::as_object);
            for property in properties.into_iter().flat_map(|p| p.values()) {
                walk(property, depth + 1, found);
            }
        }
    }
    walk(schema, 0, found)
}

/// Merges `defaults` under `node` wherever the schema asks for it: the step type's own key at
/// the top, and each connection block's key where the block appears (`with`, `left`, `right`,
/// `tunnel`). Values the step writes win, key by key.
pub fn merge_defaults(
    node: &mut Node,
    schema: &Value,
    own_key: Option<&str>,
    defaults: &indexmap::IndexMap<String, Node>,
) {
    let mut keys: Vec<&str> = own_key.into_iter().collect();
    if let Some(key) = mark(schema, crate::values::DEFAULTS_MARK).and_then(Value::as_str) {
        keys.push(key);
    }
    let NodeValue::Map(entries) = &mut node.value else {
        return;
    };
    for key in keys {
        if let Some(extra) = defaults.get(key).and_then(Node::as_map) {
            for (name, value) in extra {
                if !entries.iter().any(|(k, _)| k.name == name.name) {
                    entries.push((name.clone(), value.clone()));
                }
            }
        }
    }
    for object in object_branches(schema) {
        let Some(properties) = object.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (name, child) in entries.iter_mut() {
            if let Some(property) = properties.get(&name.name) {
                merge_defaults(child, property, None, defaults);
            }
        }
    }
}
