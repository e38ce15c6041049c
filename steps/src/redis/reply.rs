//! Redis replies as JSON data: bulk strings as text (base64 when they are not UTF-8),
//! integers, arrays, maps, nil as null.

use base64::Engine as _;
use redis::Value;
use serde_json::{Value as Json, json};

pub fn to_json(value: Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Int(i) => json!(i),
        Value::BulkString(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Json::String(text),
            Err(e) => {
                json!({ "base64": base64::engine::general_purpose::STANDARD.encode(e.as_bytes()) })
            }
        },
        Value::Array(items) | Value::Set(items) => {
            Json::Array(items.into_iter().map(to_json).collect())
        }
        Value::SimpleString(text) => Json::String(text),
        Value::Okay => Json::String("OK".into()),
        Value::Map(pairs) => Json::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (key_text(k), to_json(v)))
                .collect(),
        ),
        Value::Attribute { data, .. } => to_json(*data),
        Value::Double(f) => json!(f),
        Value::Boolean(b) => Json::Bool(b),
        Value::VerbatimString { text, .. } => Json::String(text),
        Value::Push { data, .. } => Json::Array(data.into_iter().map(to_json).collect()),
        Value::ServerError(error) => json!({ "error": error.to_string() }),
        other => Json::String(format!("{other:?}")),
    }
}

fn key_text(value: Value) -> String {
    match to_json(value) {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// RESP2 answers HGETALL and CONFIG GET with a flat `[field, value, …]` list; RESP3 with a
/// map. Either way, a mapping.
pub fn pairs_to_map(value: Json) -> Json {
    match value {
        Json::Array(items) if items.len() % 2 == 0 => Json::Object(
            items
                .chunks(2)
                .map(|pair| {
                    (
                        pair[0]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| pair[0].to_string()),
                        pair[1].clone(),
                    )
                })
                .collect(),
        ),
        other => other,
    }
}

/// A reply as plain text, when it is one (bulk or simple string).
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

pub fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => as_text(other)?.trim().parse().ok(),
    }
}
