//! Declared params: their spec, the check of a value against it, and where values come from
//! (`-p`, `--params-file`, `env`, `default`, strongest first).

use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::source::{SourceFile, Span};
use crate::yaml::{Node, NodeValue};
use indexmap::IndexMap;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Map,
    Path,
}

impl ParamType {
    pub const NAMES: &'static [&'static str] = &[
        "string", "integer", "number", "boolean", "list", "map", "path",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "list" => Self::List,
            "map" => Self::Map,
            "path" => Self::Path,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    pub span: Span,
    pub ty: ParamType,
    pub description: Option<String>,
    pub default: Option<Value>,
    pub required: bool,
    pub choices: Option<Vec<Value>>,
    pub pattern: Option<regex::Regex>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub env: Option<String>,
    pub secret: bool,
    pub must_exist: bool,
    /// Asked on a terminal when no source gives a value (`ask: true`).
    pub ask: bool,
}

const FIELDS: &[&str] = &[
    "type",
    "description",
    "default",
    "required",
    "choices",
    "pattern",
    "min",
    "max",
    "env",
    "secret",
    "must_exist",
    "ask",
];

/// Parses `name: { type: …, … }` from the playbook's `params:`.
pub fn parse_spec(
    name: &str,
    name_span: &Span,
    node: &Node,
    diags: &mut Diagnostics,
) -> Option<ParamSpec> {
    let Some(entries) = node.as_map() else {
        diags.push(
            Diagnostic::error(
                Some(&node.span),
                format!(
                    "param `{name}` must be a mapping like `{{ type: string }}`, found {}",
                    node.kind()
                ),
            )
            .with_help("write `name: { type: string, default: … }`"),
        );
        return None;
    };
    let before = diags.items.len();
    for (key, _) in entries {
        if !FIELDS.contains(&key.name.as_str()) {
            let mut d = Diagnostic::error(
                Some(&key.span),
                format!("unknown field `{}` in param `{name}`", key.name),
            );
            if let Some(hint) = did_you_mean(&key.name, FIELDS.iter().copied()) {
                d = d.with_help(hint);
            }
            diags.push(d);
        }
    }
    let ty = match node.get("type") {
        None => {
            diags.push(
                Diagnostic::error(Some(name_span), format!("param `{name}` has no `type`"))
                    .with_help(format!("one of: {}", ParamType::NAMES.join(", "))),
            );
            return None;
        }
        Some(t) => match t.as_str().and_then(ParamType::parse) {
            Some(ty) => ty,
            None => {
                let written = t
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| t.kind().to_string());
                let mut d =
                    Diagnostic::error(Some(&t.span), format!("unknown param type `{written}`"));
                d = d.with_help(
                    did_you_mean(&written, ParamType::NAMES.iter().copied())
                        .unwrap_or_else(|| format!("one of: {}", ParamType::NAMES.join(", "))),
                );
                diags.push(d);
                return None;
            }
        },
    };
    let text = |field: &str, diags: &mut Diagnostics| -> Option<String> {
        let n = node.get(field)?;
        match n.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                diags.error(
                    Some(&n.span),
                    format!(
                        "`{field}` of param `{name}` must be a string, found {}",
                        n.kind()
                    ),
                );
                None
            }
        }
    };
    let flag = |field: &str, diags: &mut Diagnostics| -> Option<bool> {
        let n = node.get(field)?;
        match n.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                diags.error(
                    Some(&n.span),
                    format!(
                        "`{field}` of param `{name}` must be true or false, found {}",
                        n.kind()
                    ),
                );
                None
            }
        }
    };
    let number = |field: &str, diags: &mut Diagnostics| -> Option<f64> {
        let n = node.get(field)?;
        match n.value {
            NodeValue::Int(i) => Some(i as f64),
            NodeValue::Float(f) => Some(f),
            _ => {
                diags.error(
                    Some(&n.span),
                    format!(
                        "`{field}` of param `{name}` must be a number, found {}",
                        n.kind()
                    ),
                );
                None
            }
        }
    };
    let pattern = node.get("pattern").and_then(|p| {
        let source = text("pattern", diags)?;
        match regex::Regex::new(&format!("^(?:{source})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                diags.error(
                    Some(&p.span),
                    format!(
                        "`pattern` of param `{name}` is not a valid regular expression: {}",
                        first_line(&e.to_string())
                    ),
                );
                None
            }
        }
    });
    let choices = node.get("choices").and_then(|c| match &c.value {
        NodeValue::List(items) if !items.is_empty() => {
            Some(items.iter().map(Node::to_json).collect())
        }
        _ => {
            diags.error(
                Some(&c.span),
                format!(
                    "`choices` of param `{name}` must be a non-empty list, found {}",
                    c.kind()
                ),
            );
            None
        }
    });
    let mut spec = ParamSpec {
        name: name.to_string(),
        span: name_span.clone(),
        ty,
        description: text("description", diags),
        default: None,
        required: true,
        choices,
        pattern,
        min: number("min", diags),
        max: number("max", diags),
        env: text("env", diags),
        secret: flag("secret", diags).unwrap_or(false),
        must_exist: flag("must_exist", diags).unwrap_or(true),
        ask: flag("ask", diags).unwrap_or(false),
    };
    if let Some(default) = node.get("default") {
        // Whether a default path exists is a fact about the machine, checked when params are
        // resolved for a run, not about the playbook.
        let shape_only = ParamSpec {
            must_exist: false,
            ..spec.clone()
        };
        match check_value(&shape_only, default.to_json(), Path::new(".")).map(|_| default.to_json())
        {
            Ok(value) => spec.default = Some(value),
            Err(message) => diags.error(
                Some(&default.span),
                format!("default of param `{name}`: {message}"),
            ),
        }
    }
    spec.required = flag("required", diags).unwrap_or(spec.default.is_none());
    if let (Some(min), Some(max)) = (spec.min, spec.max)
        && min > max
    {
        let span = node.get("min").map(|n| n.span.clone());
        diags.error(
            span.as_ref(),
            format!("param `{name}`: `min` {min} is greater than `max` {max}"),
        );
    }
    if let (Some(choices), Some(choices_node)) = (&spec.choices, node.get("choices")) {
        let shape_only = ParamSpec {
            choices: None,
            pattern: None,
            min: None,
            max: None,
            must_exist: false,
            ..spec.clone()
        };
        for (choice, choice_node) in choices.iter().zip(choices_node_items(choices_node)) {
            if let Err(message) = check_value(&shape_only, choice.clone(), Path::new(".")) {
                diags.error(
                    Some(&choice_node.span),
                    format!("choices of param `{name}`: {message}"),
                );
            }
        }
    }
    (diags.items.len() == before).then_some(spec)
}

fn choices_node_items(node: &Node) -> &[Node] {
    match &node.value {
        NodeValue::List(items) => items,
        _ => &[],
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .unwrap_or(text.lines().next().unwrap_or(""))
        .trim()
        .to_string()
}

/// Parses a `-p name=value` (or env) text per the param's type; lists and maps are YAML.
pub fn parse_text(spec: &ParamSpec, text: &str) -> Result<Value, String> {
    let value = match spec.ty {
        ParamType::String | ParamType::Path => Value::String(text.to_string()),
        ParamType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, got `{text}`"))?,
        ParamType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("expected a number, got `{text}`"))?,
        ParamType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Value::Bool(true),
            "false" | "no" | "0" | "off" => Value::Bool(false),
            _ => return Err(format!("expected true or false, got `{text}`")),
        },
        ParamType::List | ParamType::Map => {
            let file = SourceFile::new("<param>", text);
            crate::yaml::parse(&file)
                .map_err(|d| match &d.span {
                    // There is no file to point at: say where in the value.
                    Some(span) if file.line_text(span.line).is_none() => {
                        format!("{} (at the end of the value)", d.message)
                    }
                    Some(span) if span.line == 1 => {
                        format!("{} (at column {} of the value)", d.message, span.col)
                    }
                    Some(span) => format!(
                        "{} (at line {}, column {} of the value)",
                        d.message, span.line, span.col
                    ),
                    None => d.message,
                })?
                .to_json()
        }
    };
    Ok(value)
}

/// Checks (and for paths, resolves) a value against the param's type, choices, pattern and
/// bounds.
pub fn check_value(spec: &ParamSpec, value: Value, cwd: &Path) -> Result<Value, String> {
    let value = match (spec.ty, value) {
        (ParamType::String, Value::String(s)) => Value::String(s),
        (ParamType::String, v @ (Value::Number(_) | Value::Bool(_))) => {
            Value::String(v.to_string())
        }
        (ParamType::Integer, Value::Number(n)) if n.is_i64() => Value::Number(n),
        (ParamType::Number, Value::Number(n)) => Value::Number(n),
        (ParamType::Boolean, Value::Bool(b)) => Value::Bool(b),
        (ParamType::List, Value::Array(a)) => Value::Array(a),
        (ParamType::Map, Value::Object(m)) => Value::Object(m),
        (ParamType::Path, Value::String(s)) => {
            let joined = if Path::new(&s).is_absolute() {
                PathBuf::from(&s)
            } else {
                cwd.join(&s)
            };
            // `./backups` → `/work/backups`: no `.` components in what steps and logs show.
            let path = std::path::absolute(&joined).unwrap_or(joined);
            if spec.must_exist && !path.exists() {
                return Err(format!(
                    "path `{s}` does not exist (set `must_exist: false` if it is created later)"
                ));
            }
            Value::String(path.display().to_string())
        }
        (ty, other) => {
            return Err(format!(
                "expected {} {}, got {}",
                article(ty),
                ty.name(),
                describe(&other)
            ));
        }
    };
    if let Some(choices) = &spec.choices
        && !choices.contains(&value)
    {
        let names: Vec<String> = choices.iter().map(crate::evaluate::display_value).collect();
        return Err(format!(
            "`{}` is not one of: {}",
            crate::evaluate::display_value(&value),
            names.join(", ")
        ));
    }
    if let (Some(pattern), Value::String(s)) = (&spec.pattern, &value)
        && !pattern.is_match(s)
    {
        let shown = if spec.secret {
            crate::secrets::MASK
        } else {
            s.as_str()
        };
        let source = pattern
            .as_str()
            .trim_start_matches("^(?:")
            .trim_end_matches(")$");
        return Err(format!("`{shown}` does not match the pattern `{source}`"));
    }
    let measure = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if spec.ty == ParamType::String => Some(s.chars().count() as f64),
        Value::Array(a) => Some(a.len() as f64),
        _ => None,
    };
    if let Some(m) = measure {
        let what = if value.is_number() { "" } else { " (length)" };
        if let Some(min) = spec.min.filter(|min| m < *min) {
            return Err(format!("{m}{what} is below the minimum {min}"));
        }
        if let Some(max) = spec.max.filter(|max| m > *max) {
            return Err(format!("{m}{what} is above the maximum {max}"));
        }
    }
    Ok(value)
}

fn article(ty: ParamType) -> &'static str {
    if ty == ParamType::Integer { "an" } else { "a" }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Params given for a run, before they are checked against the playbook.
#[derive(Debug, Default, Clone)]
pub struct ParamInputs {
    /// `-p name=value`, in the order given.
    pub cli: Vec<String>,
    pub file: Option<PathBuf>,
    /// Values already typed (from a saved plan): stronger than the file, weaker than `-p`.
    pub values: IndexMap<String, Value>,
    /// For a plan: a secret param no source gives is left to apply (shown `(given at apply)`)
    /// instead of stopping the plan — a plan needs no secret values.
    pub defer_secrets: bool,
}

/// Resolved params: name → value, plus which are secret.
#[derive(Debug, Clone, Default)]
pub struct ResolvedParams {
    pub values: IndexMap<String, Value>,
    pub secret: Vec<String>,
    /// The `default`s the playbook writes for secret params, in use or not: masked like the
    /// values (a default that `-p` overrode is still a secret written in the playbook text).
    pub secret_defaults: Vec<Value>,
    /// Secret params left to apply (`defer_secrets`): unknown in the plan, `none` meanwhile.
    pub deferred: Vec<String>,
}

impl ResolvedParams {
    /// The params with secret values removed (for plan files and journals).
    pub fn public(&self) -> IndexMap<String, Value> {
        self.values
            .iter()
            .filter(|(k, _)| !self.secret.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Someone to ask for a param that has `ask: true` and no value from any source.
pub trait ParamAsker {
    /// The answer, checked with `check` (a terminal asks again until it passes); `None` when
    /// there is nobody to ask.
    fn ask(
        &self,
        spec: &ParamSpec,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Option<std::io::Result<String>>;
}

/// Nobody to ask: `ask: true` params fall back to their default, or are missing.
pub struct NoAsking;

impl ParamAsker for NoAsking {
    fn ask(
        &self,
        _: &ParamSpec,
        _: &dyn Fn(&str) -> Result<(), String>,
    ) -> Option<std::io::Result<String>> {
        None
    }
}

/// Resolves every declared param from its sources, reporting every problem at once (and
/// each param at most once). Nobody is asked (see [`resolve_asking`]).
pub fn resolve(
    specs: &IndexMap<String, ParamSpec>,
    inputs: &ParamInputs,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<ResolvedParams, Diagnostics> {
    resolve_asking(specs, inputs, env, cwd, &NoAsking)
}

/// What the operator typed for an `ask: true` param: empty takes the default (or `none` for
/// an optional param), anything else is parsed and checked like a `-p` value.
fn answer_value(spec: &ParamSpec, text: &str, cwd: &Path) -> Result<Option<Value>, String> {
    if text.is_empty() {
        return match &spec.default {
            Some(_) => Ok(None),
            None if !spec.required => Ok(Some(Value::Null)),
            None => Err("a value is needed".into()),
        };
    }
    let value = parse_text(spec, text).and_then(|v| check_value(spec, v, cwd));
    value
        .map(Some)
        .map_err(|message| redact(spec, &message, text))
}

/// As [`resolve`]; a param with `ask: true` that no source gives is asked of `asker`.
pub fn resolve_asking(
    specs: &IndexMap<String, ParamSpec>,
    inputs: &ParamInputs,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    asker: &dyn ParamAsker,
) -> Result<ResolvedParams, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut given: IndexMap<String, (Value, String)> = IndexMap::new();
    let mut failed: std::collections::HashSet<String> = Default::default();
    if let Some(path) = &inputs.file {
        read_params_file(path, specs, &mut given, &mut failed, &mut diags);
    }
    for (name, value) in &inputs.values {
        if specs.contains_key(name) {
            given.insert(name.clone(), (value.clone(), "the saved plan".to_string()));
        }
    }
    let mut given_on_cli = std::collections::HashSet::new();
    let mut repeated = std::collections::HashSet::new();
    for arg in &inputs.cli {
        let (name, text) = match arg.split_once('=') {
            Some((name, text)) if !name.trim().is_empty() => (name.trim(), text),
            _ => {
                // `-p pw:hunter2` is a secret typed with the wrong separator: never echo it.
                let secret_name = specs.values().filter(|s| s.secret).find(|s| {
                    arg.strip_prefix(s.name.as_str()).is_some_and(|rest| {
                        !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                });
                let shown = match secret_name.and_then(|s| {
                    let separator = arg[s.name.len()..].chars().next()?;
                    Some(format!("{}{separator}{}", s.name, crate::secrets::MASK))
                }) {
                    Some(shown) => shown,
                    None => crate::secrets::redact_urls(arg).into_owned(),
                };
                diags.push(Diagnostic::error(
                    None,
                    format!("`-p {shown}`: expected NAME=VALUE"),
                ));
                continue;
            }
        };
        // The last of two `-p` would win silently: a typo in a repeated command line, or a
        // value pasted twice, should not pick what runs.
        if !given_on_cli.insert(name) {
            if repeated.insert(name) {
                diags.push(
                    Diagnostic::error(
                        None,
                        format!("param `{name}` is given more than once with -p"),
                    )
                    .with_help(format!("pass `-p {name}=…` once")),
                );
            }
            continue;
        }
        match specs.get(name) {
            None => diags.push(unknown_param(name, specs, "-p")),
            Some(spec) => match parse_text(spec, text) {
                Ok(value) => {
                    failed.remove(name);
                    given.insert(name.to_string(), (value, format!("-p {name}")));
                }
                Err(message) => {
                    failed.insert(name.to_string());
                    diags.push(Diagnostic::error(
                        None,
                        format!("param `{name}` (from -p): {}", redact(spec, &message, text)),
                    ));
                }
            },
        }
    }
    let mut resolved = ResolvedParams::default();
    for (name, spec) in specs {
        if failed.contains(name) {
            continue;
        }
        let from_env = || {
            let var = spec.env.as_ref()?;
            let text = env(var)?;
            Some((parse_text(spec, &text), format!("env {var}"), text))
        };
        let (value, source) = if let Some((value, source)) = given.shift_remove(name) {
            (value, source)
        } else if let Some((parsed, source, text)) = from_env() {
            match parsed {
                Ok(value) => (value, source),
                Err(message) => {
                    let message = format!(
                        "param `{name}` (from {source}): {}",
                        redact(spec, &message, &text)
                    );
                    diags.push(Diagnostic::error(Some(&spec.span), message));
                    continue;
                }
            }
        } else if let Some(asked) = (spec.ask && !(inputs.defer_secrets && spec.secret))
            .then(|| asker.ask(spec, &|text| answer_value(spec, text, cwd).map(|_| ())))
            .flatten()
        {
            let answer = asked.map_err(|e| e.to_string()).and_then(|text| {
                answer_value(spec, &text, cwd).map(|v| v.or_else(|| spec.default.clone()))
            });
            match answer {
                Ok(value) => (value.unwrap_or(Value::Null), "the answer".to_string()),
                Err(message) => {
                    diags.push(Diagnostic::error(
                        Some(&spec.span),
                        format!("param `{name}` (asked): {message}"),
                    ));
                    continue;
                }
            }
        } else if let Some(default) = &spec.default {
            (default.clone(), "default".to_string())
        } else if spec.required && inputs.defer_secrets && spec.secret {
            resolved.secret.push(name.clone());
            resolved.deferred.push(name.clone());
            resolved.values.insert(name.clone(), Value::Null);
            continue;
        } else if spec.required {
            let mut how = format!("pass `-p {name}=VALUE`");
            if let Some(var) = &spec.env {
                how.push_str(&format!(" or set `{var}`"));
            }
            if spec.ask {
                how.push_str(" (on a terminal flow asks for it)");
            }
            diags.push(
                Diagnostic::error(Some(&spec.span), format!("missing required param `{name}`"))
                    .with_help(how),
            );
            continue;
        } else {
            (Value::Null, "unset".to_string())
        };
        // A URL with a password in it (alone, or in a list or a mapping) is a secret whatever
        // the param says: it stays out of journals and saved plans like any secret.
        let holds_password = !crate::secrets::url_passwords(&value).is_empty();
        if spec.secret || holds_password {
            resolved.secret.push(name.clone());
        }
        if value.is_null() && !spec.required {
            resolved.values.insert(name.clone(), Value::Null);
            continue;
        }
        let shown = crate::evaluate::display_value(&value);
        match check_value(spec, value, cwd) {
            Ok(value) => {
                resolved.values.insert(name.clone(), value);
            }
            Err(message) => {
                let message = format!(
                    "param `{name}` (from {source}): {}",
                    redact(spec, &message, &shown)
                );
                diags.push(Diagnostic::error(Some(&spec.span), message));
            }
        }
    }
    resolved.secret_defaults = specs
        .values()
        .filter(|spec| spec.secret)
        .filter_map(|spec| spec.default.clone())
        .collect();
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(resolved)
    }
}

/// A message about a param's value (`text`, as written or shown), with nothing of a secret
/// param's value and no URL password of any param's (`redis://:***@host`).
fn redact(spec: &ParamSpec, message: &str, text: &str) -> String {
    if spec.secret && !text.is_empty() {
        return message.replace(text, crate::secrets::MASK);
    }
    let message = match crate::secrets::url_password(text) {
        Some(_) => message.replace(text.trim(), &crate::secrets::redact_url(text.trim())),
        None => message.to_string(),
    };
    crate::secrets::redact_urls(&message).into_owned()
}

fn unknown_param(name: &str, specs: &IndexMap<String, ParamSpec>, from: &str) -> Diagnostic {
    let d = Diagnostic::error(None, format!("unknown param `{name}` (from {from})"));
    match did_you_mean(name, specs.keys().map(String::as_str)) {
        Some(hint) => d.with_help(hint),
        None if specs.is_empty() => d.with_help("this playbook declares no params"),
        None => d.with_help(format!(
            "declared params: {}",
            specs.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

fn read_params_file(
    path: &Path,
    specs: &IndexMap<String, ParamSpec>,
    given: &mut IndexMap<String, (Value, String)>,
    failed: &mut std::collections::HashSet<String>,
    diags: &mut Diagnostics,
) {
    let first = diags.items.len();
    let Some((file, secrets)) = read_params_file_values(path, specs, given, failed, diags) else {
        return;
    };
    if diags.items.len() == first {
        return;
    }
    // The lines diagnostics show come from a copy of the file with the values of secret
    // params (and URL passwords) masked: a syntax error next to a secret must not print it.
    let names: Vec<&str> = specs
        .values()
        .filter(|s| s.secret)
        .map(|s| s.name.as_str())
        .collect();
    let masker = crate::secrets::Masker::new();
    secrets.iter().for_each(|v| masker.add(v));
    let shown = SourceFile::new(&file.path, mask_params_text(&file.text, &names, &masker));
    for d in &mut diags.items[first..] {
        if let Some(span) = &mut d.span
            && std::sync::Arc::ptr_eq(&span.file, &file)
        {
            span.file = std::sync::Arc::clone(&shown);
        }
    }
}

/// The text of a params file with the values of the keys `secret_names` (`pw: ***`, also
/// the lines of a block or an unclosed quote that continue it), every value `masker` knows and
/// every URL password masked, line for line (positions in it stay valid).
fn mask_params_text(text: &str, secret_names: &[&str], masker: &crate::secrets::Masker) -> String {
    enum Continues {
        /// Lines indented deeper than the key (a block scalar, a nested mapping or list).
        Indented(usize),
        /// Lines up to the one that closes the quote.
        Quote(char),
        /// Lines up to the one that closes the brackets.
        Brackets(i64),
    }
    let keys: Vec<regex::Regex> = secret_names
        .iter()
        .filter_map(|name| {
            regex::Regex::new(&format!(
                r#"(?:^|[\s{{,\[?-])["']?{}["']?\s*:(?:\s|$)"#,
                regex::escape(name)
            ))
            .ok()
        })
        .collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let masked_rest = |line: &str| format!("{}{}", &line[..indent(line)], crate::secrets::MASK);
    let depth = |text: &str| {
        text.chars()
            .map(|c| match c {
                '[' | '{' => 1,
                ']' | '}' => -1,
                _ => 0,
            })
            .sum::<i64>()
    };
    let mut continues: Option<Continues> = None;
    let mut out = Vec::new();
    for line in text.split('\n') {
        match continues {
            Some(Continues::Indented(key)) if line.trim().is_empty() || indent(line) > key => {
                out.push(masked_rest(line));
                continue;
            }
            Some(Continues::Quote(quote)) => {
                out.push(masked_rest(line));
                if line.contains(quote) {
                    continues = None;
                }
                continue;
            }
            Some(Continues::Brackets(open)) => {
                out.push(masked_rest(line));
                let open = open + depth(line);
                continues = (open > 0).then_some(Continues::Brackets(open));
                continue;
            }
            _ => continues = None,
        }
        let key = keys
            .iter()
            .filter_map(|k| k.find(line))
            .min_by_key(|m| m.start());
        let shown = match key {
            Some(key) => {
                let value = line[key.end()..].trim();
                continues = if value.is_empty() || value.starts_with(['|', '>', '&', '!']) {
                    Some(Continues::Indented(indent(line)))
                } else if let Some(quote) = value.chars().next().filter(|q| *q == '"' || *q == '\'')
                    && !value[1..].contains(quote)
                {
                    Some(Continues::Quote(quote))
                } else if depth(value) > 0 {
                    Some(Continues::Brackets(depth(value)))
                } else {
                    None
                };
                let kept = line[..key.end()].trim_end_matches('\r');
                if value.is_empty() {
                    kept.to_string()
                } else {
                    let space = if kept.ends_with(char::is_whitespace) {
                        ""
                    } else {
                        " "
                    };
                    format!("{kept}{space}{}", crate::secrets::MASK)
                }
            }
            None => masker.mask(line),
        };
        out.push(crate::secrets::redact_urls(&shown).into_owned());
    }
    out.join("\n")
}

/// Reads the params file into `given`; returns the file and the values written for secret
/// params, for masking what diagnostics quote of it.
fn read_params_file_values(
    path: &Path,
    specs: &IndexMap<String, ParamSpec>,
    given: &mut IndexMap<String, (Value, String)>,
    failed: &mut std::collections::HashSet<String>,
    diags: &mut Diagnostics,
) -> Option<(std::sync::Arc<SourceFile>, Vec<Value>)> {
    let text = match crate::regular_file::read_text(path, crate::regular_file::INPUT_TEXT_LIMIT) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(
                None,
                format!("cannot read params file {}: {e}", path.display()),
            ));
            return None;
        }
    };
    let file = SourceFile::new(path, text);
    let mut secrets = Vec::new();
    let node = match crate::yaml::parse(&file) {
        Ok(n) => n,
        Err(d) => {
            diags.push(d);
            return Some((file, secrets));
        }
    };
    if matches!(node.value, NodeValue::Null) {
        return Some((file, secrets));
    }
    let Some(entries) = node.as_map() else {
        diags.push(Diagnostic::error(
            Some(&node.span),
            format!(
                "a params file is a mapping of param names to values, found {}",
                node.kind()
            ),
        ));
        return Some((file, secrets));
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    for (key, value) in entries {
        let Some(spec) = specs.get(&key.name) else {
            let mut d = unknown_param(&key.name, specs, "params file");
            d.span = Some(key.span.clone());
            diags.push(d);
            continue;
        };
        if spec.secret {
            secrets.push(value.to_json());
        }
        let checked = match (&value.value, spec.ty) {
            (NodeValue::Str(s), ParamType::Integer | ParamType::Number | ParamType::Boolean) => {
                parse_text(spec, s)
            }
            _ => Ok(value.to_json()),
        }
        .and_then(|json| check_value(spec, json, &cwd));
        match checked {
            Ok(v) => {
                given.insert(key.name.clone(), (v, "params file".into()));
            }
            Err(message) => {
                failed.insert(key.name.clone());
                let shown = crate::evaluate::display_value(&value.to_json());
                let mut d = Diagnostic::error(
                    Some(&value.span),
                    format!(
                        "param `{}` (from params file): {}",
                        key.name,
                        redact(spec, &message, &shown)
                    ),
                );
                // The source line would show the secret itself.
                d.snippet = !spec.secret;
                diags.push(d);
            }
        }
    }
    Some((file, secrets))
}
