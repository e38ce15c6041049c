//! "What this field takes", in the user's terms, read from a step type's schema — for the
//! errors serde can only phrase as "data did not match any variant of untagged enum".

use serde_json::Value;

/// One step of a path into `with`.
pub enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// The schema node at `path`, looking through `allOf`/`anyOf`/`oneOf` (flattened blocks).
fn node_at<'a>(schema: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(schema);
    };
    let child = match first {
        Segment::Key(key) => schema
            .get("properties")
            .and_then(|p| p.get(*key))
            .or_else(|| {
                alternatives(schema)
                    .iter()
                    .find_map(|a| a.get("properties").and_then(|p| p.get(*key)))
            })
            .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object())),
        Segment::Index(_) => schema
            .get("items")
            .or_else(|| alternatives(schema).iter().find_map(|a| a.get("items"))),
    }?;
    node_at(child, rest)
}

fn alternatives(schema: &Value) -> Vec<&Value> {
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// A schema node in words: "a text", "a list of texts", "a mapping with `value` and `label`".
fn describe(schema: &Value) -> String {
    let forms: Vec<String> = {
        let alternatives = alternatives(schema);
        if alternatives.is_empty() {
            vec![describe_one(schema)]
        } else {
            alternatives.into_iter().map(describe).collect()
        }
    };
    let mut forms: Vec<String> = forms.into_iter().filter(|f| !f.is_empty()).collect();
    forms.dedup();
    match forms.len() {
        0 => "a value".into(),
        1 => forms.remove(0),
        _ => forms.join(", or "),
    }
}

fn describe_one(schema: &Value) -> String {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let words: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "string" => "a text".to_string(),
            "integer" => "a whole number".into(),
            "number" => "a number".into(),
            "boolean" => "true or false".into(),
            "null" => "nothing".into(),
            "array" => match schema.get("items") {
                Some(items) => format!("a list of {}", plural(&describe(items))),
                None => "a list".into(),
            },
            "object" => match schema.get("properties").and_then(Value::as_object) {
                Some(fields) if !fields.is_empty() => format!(
                    "a mapping with {}",
                    fields
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                _ => "a mapping".into(),
            },
            other => other.to_string(),
        })
        .collect();
    words.join(" or ")
}

/// "a text" → "texts", for "a list of texts".
fn plural(form: &str) -> String {
    match form.strip_prefix("a ") {
        Some(rest) if !rest.contains(' ') => format!("{rest}s"),
        _ => form.to_string(),
    }
}

/// What kind of value the user gave: "a mapping", "a list", "a text", …
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The value at `path` in `value`.
pub fn value_at<'a>(value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Key(key) => v.get(*key),
        Segment::Index(index) => v.get(*index),
    })
}

/// "expected a text, or a mapping with `value` and `label`; found a number".
pub fn explain(schema: &Value, value: &Value, path: &[Segment]) -> Option<String> {
    let node = node_at(schema, path)?;
    let found = match value_at(value, path) {
        // Its keys tell a mapping of the wrong shape from the one expected.
        Some(Value::Object(map)) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().take(5).map(|k| format!("`{k}`")).collect();
            let more = if map.len() > 5 { " …" } else { "" };
            format!("; found a mapping with {}{more}", keys.join(", "))
        }
        Some(found) => format!("; found {}", kind_of(found)),
        None => String::new(),
    };
    Some(format!("expected {}{found}", describe(node)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_untagged_choice_is_said_in_words() {
        let schema = json!({ "type": "object", "properties": { "options": { "type": "array", "items": {
            "anyOf": [ { "type": "string" }, { "type": "object", "properties": { "value": {}, "label": {} } } ]
        } } } });
        let value = json!({ "options": [ 3 ] });
        let path = [Segment::Key("options"), Segment::Index(0)];
        assert_eq!(
            explain(&schema, &value, &path).as_deref(),
            Some("expected a text, or a mapping with `value` and `label`; found a number")
        );
    }

    #[test]
    fn one_or_many_is_a_value_or_a_list_of_them() {
        let schema = json!({ "properties": { "ids": { "anyOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] } } });
        let path = [Segment::Key("ids")];
        assert_eq!(
            explain(&schema, &json!({ "ids": { "a": 1 } }), &path).as_deref(),
            Some("expected a text, or a list of texts; found a mapping with `a`")
        );
    }
}
