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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
            "format": "flow-duration",
            "description": "a duration: 500ms, 30s, 5m, 1h30m, or seconds"
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Text that must stay on one line and show as itself: a name or a key sent to a service
/// (an S3 key, a prefix). A control character in one (`\u0001`, a newline) cannot be shown
/// in a plan, nor carried by every API (S3 lists keys as XML 1.0, which has no `\u0001`):
/// refused at `flow validate` when written in the playbook (its schema's format), and when a
/// template renders one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printable(pub String);

/// Why `text` is not [`Printable`]: the first control character and where it is.
pub fn control_character(text: &str) -> Option<String> {
    let (at, c) = text.chars().enumerate().find(|(_, c)| c.is_control())?;
    Some(format!(
        "holds a control character (U+{:04X}, character {}), which it cannot take",
        c as u32,
        at + 1
    ))
}

impl<'de> Deserialize<'de> for Printable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Text(text) = Text::deserialize(deserializer)?;
        match control_character(&text) {
            Some(why) => Err(serde::de::Error::custom(why)),
            None => Ok(Printable(text)),
        }
    }
}

impl JsonSchema for Printable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Printable".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"], "format": "printable" })
    }

    fn inline_schema() -> bool {
        true
    }
}

impl std::fmt::Display for Printable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Printable {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
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

/// A bare expression as a step receives it (its schema is marked `x-flow-expression`, so the
/// engine evaluates it before the step runs): the text as written and the value.
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
            "x-flow-expression": true,
            "description": "an expression, e.g. `steps.check.exit_code == 0`"
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// A file mode written as octal: `"0644"`, `"600"`, or `0644` (YAML reads it as 644).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

/// Parses an octal mode like `0644`, `644` or `0o644`.
pub fn parse_file_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim().trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !digits.is_empty())
        .ok_or_else(|| format!("`{text}` is not an octal file mode like \"0644\""))
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Text(text) = Text::deserialize(deserializer)?;
        parse_file_mode(&text)
            .map(FileMode)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for FileMode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FileMode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "format": "file-mode",
            "description": "octal permissions, e.g. \"0600\""
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// A plain value: text, number or boolean, never a list or a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub serde_json::Value);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            v @ (serde_json::Value::String(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)) => Ok(Scalar(v)),
            other => Err(serde::de::Error::custom(format!(
                "expected text, a number or a boolean, found {}",
                kind(&other)
            ))),
        }
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// The outputs of a step type that has none (`log`, `sleep`).
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct NoOutputs {}

/// A secret in a step's params or outputs (a password, a token, a SecureString): its schema is
/// marked `x-flow-secret`, which is the one place the engine learns it from — the value is
/// masked in everything flow prints, wherever the field sits (also in `undo`, `finally` and
/// under a connection block's defaults).
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "x-flow-secret": true })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Schema markers: facts about a field that the engine reads from its type's schema, so the
/// check of `with`, the masking and the editor schema share one definition.
pub const SECRET_MARK: &str = "x-flow-secret";
/// An output that is a secret for some values only, with when: `x-flow-maybe-secret: "when
/// the parameter is a SecureString"`. The step registers such a value itself
/// (`PlanContext::add_secret`); `flow validate` warns where one reaches a command line.
pub const MAYBE_SECRET_MARK: &str = "x-flow-maybe-secret";
/// A field whose value ends up in a process's command line (`exec`'s `command` and `shell`),
/// which every local user can read in `ps`: `flow validate` warns when a secret reaches it.
pub const ARGV_MARK: &str = "x-flow-argv";
/// A bare expression evaluated by the engine before the step runs (`assert.that`).
pub const EXPRESSION_MARK: &str = "x-flow-expression";
/// An expression the step evaluates itself, many times, with these extra names
/// (`redis.delete.where` per key): `x-flow-deferred: [key, value, ttl, type]`.
pub const DEFERRED_MARK: &str = "x-flow-deferred";
/// A connection block merging `defaults.<key>` wherever it appears: `x-flow-defaults: redis`.
pub const DEFAULTS_MARK: &str = "x-flow-defaults";
