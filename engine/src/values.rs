//! Param types step types share: scalars taken as text, durations, one-or-many lists, and
//! evaluated expressions.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A scalar used as text: `5` and `true` are accepted where a string is meant (argv items,
/// env values), as operators write them unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => Ok(Text(s)),
            serde_json::Value::Number(n) => Ok(Text(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Text(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected text, found {}",
                kind(&other)
            ))),
        }
    }
}

impl JsonSchema for Text {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }

    fn inline_schema() -> bool {
        true
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// A duration written as `30s`, `5m`, `1h30m`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowDuration(pub Duration);

impl<'de> Deserialize<'de> for FlowDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let parsed = match &value {
            serde_json::Value::String(s) => crate::duration::parse_duration(s),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|s| *s >= 0.0 && s.is_finite())
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("`{n}` is not a duration")),
            other => Err(format!(
                "expected a duration like 30s, found {}",
                kind(other)
            )),
        };
        parsed.map(FlowDuration).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for FlowDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number"],
            "description": "a duration: 500ms, 30s, 5m, 1h30m, or seconds"
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// A value or a list of values; `one` and `[one, two]` both work.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({ "anyOf": [one, { "type": "array", "items": one }] })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// A bare expression as a step receives it from a field listed in `EXPRESSION_FIELDS`: the
/// text as written and the value it evaluated to.
#[derive(Debug, Clone, Deserialize)]
pub struct Evaluated {
    pub expression: String,
    pub value: serde_json::Value,
}

impl Evaluated {
    pub fn is_true(&self) -> bool {
        crate::evaluate::to_jinja(&self.value).is_true()
    }
}

impl JsonSchema for Evaluated {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Expression".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "boolean"],
            "description": "an expression, e.g. `steps.check.exit_code == 0`"
        })
    }

    fn inline_schema() -> bool {
        true
    }
}
