//! Rendering compiled templates against a run's data.

use crate::template::{Reference, Source, Tmpl};
use minijinja::Environment;
use serde_json::Value;

/// The marker a value carries in a plan when it depends on a write that has not happened yet.
pub const UNKNOWN_KEY: &str = "$known_after_apply";
/// Beside it, how a text that is only partly unknown reads in a plan (its known parts
/// rendered).
pub const SHOWN_KEY: &str = "$shown";

pub fn unknown(path: &str) -> Value {
    serde_json::json!({ UNKNOWN_KEY: path })
}

/// The first unknown inside a rendered value, as the path it is waiting for.
pub fn find_unknown(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => match map.get(UNKNOWN_KEY) {
            Some(Value::String(path)) => Some(path.clone()),
            _ => map.values().find_map(find_unknown),
        },
        Value::Array(items) => items.iter().find_map(find_unknown),
        _ => None,
    }
}

/// The value with each unknown replaced by its `(known after apply: …)` text.
pub fn unknowns_as_text(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.contains_key(UNKNOWN_KEY) => Value::String(display_value(value)),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), unknowns_as_text(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(unknowns_as_text).collect()),
        other => other.clone(),
    }
}

/// How a secret param left to apply (`flow plan` without it) reads in a plan.
pub const GIVEN_AT_APPLY: &str = "(given at apply)";

/// Whether text holds a value not known until apply.
pub fn mentions_unknown(text: &str) -> bool {
    text.contains("(known after apply: ") || text.contains(GIVEN_AT_APPLY)
}

/// How an unknown waiting on `path` reads: `expression` known after apply, or — for a param
/// (only a secret not given to the plan is unknown) — given at apply.
pub fn waiting_text(path: &str, expression: &str) -> String {
    if path.starts_with("params.") {
        GIVEN_AT_APPLY.to_string()
    } else {
        format!("(known after apply: {expression})")
    }
}

/// Displays a value for plan and log lines: strings bare, unknowns as
/// `(known after apply: steps.x.y)`, anything else as compact JSON.
pub fn display_value(value: &Value) -> String {
    if let Some(Value::String(path)) = value.get(UNKNOWN_KEY) {
        return match value.get(SHOWN_KEY) {
            Some(Value::String(shown)) => shown.clone(),
            _ => waiting_text(path, path),
        };
    }
    match value {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) if find_unknown(value).is_some() => {
            serde_json::to_string(&unknowns_as_text(value)).unwrap_or_default()
        }
        Value::Object(_) | Value::Array(_) => serde_json::to_string(value).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// What a `when` decided.
pub enum When {
    Run,
    Skip(String),
    Unknown(String),
}

/// A template that failed to render: which expression and why.
#[derive(Debug, Clone)]
pub struct RenderError {
    pub expression: String,
    pub message: String,
    /// When it failed on the outputs of a step that was skipped: the reason to skip this one
    /// too (`needs `restore`, which was skipped: …`).
    pub skip: Option<String>,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in `{}`", self.message, self.expression)
    }
}

/// Renders templates of one run; `is_unknown` tells (in plan mode) which references are not
/// known yet, so that values depending on them become unknown instead of failing.
pub struct Evaluator<'a> {
    pub env: &'a Environment<'static>,
    pub context: minijinja::Value,
    pub is_unknown: &'a (dyn Fn(&Reference) -> bool + Sync),
    /// In a plan, the secret params left to apply: unknown like a write's outputs.
    pub deferred_params: &'a [String],
    /// In a plan, a `for_each` over a list not known yet: `item` is not known either.
    pub item_unknown: bool,
    /// The run's secrets: what a template derives from one becomes one (`template_taint`).
    pub masker: Option<&'a crate::secrets::Masker>,
}

impl Evaluator<'_> {
    pub fn render(&self, tmpl: &Tmpl) -> Result<Value, RenderError> {
        match tmpl {
            Tmpl::Literal(value) => Ok(value.clone()),
            Tmpl::Expr(source) => self.tainted(source, false, self.expression(source)),
            Tmpl::Text(source) if source.references.iter().any(|r| self.unknown(r)) => {
                self.tainted(source, true, self.render_around(source))
            }
            Tmpl::Text(source) => self.tainted(
                source,
                true,
                self.env
                    .render_str(&source.text, &self.context)
                    .map(Value::String)
                    .map_err(|e| self.explain(source, &e)),
            ),
            Tmpl::List(items) => items
                .iter()
                .map(|i| self.render(i))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Tmpl::Map(entries) => entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.render(v)?)))
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(Value::Object),
        }
    }

    /// What `source` rendered to, after what it derived from a secret was registered.
    fn tainted(
        &self,
        source: &Source,
        text: bool,
        rendered: Result<Value, RenderError>,
    ) -> Result<Value, RenderError> {
        if let (Ok(value), Some(masker)) = (&rendered, self.masker) {
            crate::template_taint::learn(self, masker, source, text, value);
        }
        rendered
    }

    /// What a step's `when` decides: run, skip (with the reason: the check that failed, and
    /// its `reason` when it has one), or not known before apply (in a plan).
    pub fn when(&self, when: &crate::playbook::Condition) -> Result<When, RenderError> {
        if when.checks.is_empty() {
            return Ok(match self.truthy(&when.expr)? {
                None => When::Unknown(when.text.clone()),
                Some(true) => When::Run,
                Some(false) => When::Skip(format!("when: {}", when.text)),
            });
        }
        let mut unknown = false;
        for check in &when.checks {
            match self.truthy(&check.expr)? {
                Some(true) => {}
                None => unknown = true,
                Some(false) => {
                    return Ok(When::Skip(match &check.reason {
                        Some(reason) => format!(
                            "{} (when: {})",
                            display_value(&self.render(reason)?),
                            check.text
                        ),
                        None => format!("when: {}", check.text),
                    }));
                }
            }
        }
        Ok(if unknown {
            When::Unknown(when.text.clone())
        } else {
            When::Run
        })
    }

    /// Evaluates a condition to a boolean with Jinja truthiness (empty list, 0, "" are false);
    /// `None` when it is not known before apply. A condition reading an unknown is decided
    /// by its known operands when they suffice (`false and unknown` is false).
    pub fn truthy(&self, tmpl: &Tmpl) -> Result<Option<bool>, RenderError> {
        if let Tmpl::Expr(source) = tmpl
            && source.references.iter().any(|r| self.unknown(r))
        {
            let tree = crate::three_valued::parse(&source.text);
            if !matches!(tree, crate::three_valued::Bool::Leaf(_)) {
                return crate::three_valued::decide(&tree, &mut |operand| {
                    match crate::template::expression_source(operand, &source.span) {
                        Some(part) => self.truthy_whole(&Tmpl::Expr(part)),
                        None => Ok(None),
                    }
                });
            }
        }
        self.truthy_whole(tmpl)
    }

    fn truthy_whole(&self, tmpl: &Tmpl) -> Result<Option<bool>, RenderError> {
        let value = self.render(tmpl)?;
        if find_unknown(&value).is_some() {
            return Ok(None);
        }
        Ok(Some(crate::evaluate::to_jinja(&value).is_true()))
    }

    /// An expression's value; in a plan, unknown when it reads an unknown, shown as the
    /// expression it waits on (`steps.x.stdout.split('/')`, not only the path it reads).
    fn expression(&self, source: &Source) -> Result<Value, RenderError> {
        let Some(reference) = source.references.iter().find(|r| self.unknown(r)) else {
            return self.eval_expression(source);
        };
        let path = reference.dotted();
        let text = crate::template::strip_braces(&source.text);
        Ok(
            if text == path || text.len() > 120 || reference.root() == "params" {
                unknown(&path)
            } else {
                serde_json::json!({ UNKNOWN_KEY: path, SHOWN_KEY: crate::partial_render::shown_expression(text) })
            },
        )
    }

    /// Whether a reference is not known until apply (only ever in a plan).
    pub fn is_unknown(&self, reference: &Reference) -> bool {
        self.unknown(reference)
    }

    fn unknown(&self, reference: &Reference) -> bool {
        (self.is_unknown)(reference)
            || (self.item_unknown && matches!(reference.root(), "item" | "item_index"))
            || (reference.root() == "params"
                && reference
                    .path
                    .get(1)
                    .is_some_and(|name| self.deferred_params.contains(name)))
    }

    /// A text with unknowns: rendered around them when it can be, else unknown whole.
    fn render_around(&self, source: &Source) -> Result<Value, RenderError> {
        let is_unknown = |r: &Reference| self.unknown(r);
        let render = |text: &str| {
            self.env
                .render_str(text, &self.context)
                .map_err(|e| self.explain(source, &e))
        };
        match crate::partial_render::render_around(source, &is_unknown, render) {
            Some(partial) => {
                let partial = partial?;
                Ok(serde_json::json!({ UNKNOWN_KEY: partial.waits_for, SHOWN_KEY: partial.shown }))
            }
            None => Ok(unknown(
                &source
                    .references
                    .iter()
                    .find(|r| self.unknown(r))
                    .map(Reference::dotted)
                    .unwrap_or_default(),
            )),
        }
    }

    fn eval_expression(&self, source: &Source) -> Result<Value, RenderError> {
        let expr = self
            .env
            .compile_expression(&source.text)
            .map_err(|e| self.explain(source, &e))?;
        let value = expr
            .eval(&self.context)
            .map_err(|e| self.explain(source, &e))?;
        if value.is_undefined() {
            return Err(self.explain(
                source,
                &minijinja::Error::from(minijinja::ErrorKind::UndefinedError),
            ));
        }
        serde_json::to_value(&value).map_err(|e| RenderError {
            expression: format!("{{{{ {} }}}}", source.text),
            message: format!("value cannot be used as data: {e}"),
            skip: None,
        })
    }

    /// Turns MiniJinja's error into one naming the undefined path when that is the cause.
    fn explain(&self, source: &Source, error: &minijinja::Error) -> RenderError {
        let expression = if source.text.contains("{{") || source.text.contains("{%") {
            source.text.clone()
        } else {
            format!("{{{{ {} }}}}", source.text)
        };
        let mut skip = None;
        let message = if error.kind() == minijinja::ErrorKind::OutOfFuel {
            format!(
                "the template does more work than flow allows one template (about {} million \
                 operations, or {} MB of data): a loop too large, or one that never ends",
                crate::template_env::TEMPLATE_FUEL / 1_000_000,
                crate::template_env::TEMPLATE_FUEL * 64 / 1_000_000
            )
        } else if error.kind() == minijinja::ErrorKind::UndefinedError {
            match self.first_undefined(source) {
                Some(path) => match self.skipped_step(&path) {
                    Some((step, reason)) => {
                        skip = Some(crate::skip_propagation::because_skipped(&step, &reason));
                        format!("`{path}` is undefined: step `{step}` was skipped ({reason})")
                    }
                    None => format!("`{path}` is undefined"),
                },
                // `steps.x['stdout']`: the path read is `steps.x`, which is there; a step it
                // names that was skipped is the likely cause.
                None => match source
                    .references
                    .iter()
                    .find_map(|r| self.skipped_step(&r.dotted()))
                {
                    Some((step, reason)) => {
                        skip = Some(crate::skip_propagation::because_skipped(&step, &reason));
                        format!("undefined value: step `{step}` was skipped ({reason})")
                    }
                    None => "undefined value".to_string(),
                },
            }
        } else {
            error
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| error.kind().to_string())
        };
        RenderError {
            expression,
            message,
            skip,
        }
    }

    /// For `steps.X.…` of a step that was skipped: X and why, so the error says it.
    fn skipped_step(&self, path: &str) -> Option<(String, String)> {
        let step = path.strip_prefix("steps.")?.split('.').next()?;
        let read = |field: &str| {
            let text = format!("steps.{step}.{field}");
            let expr = self.env.compile_expression(&text).ok()?;
            expr.eval(&self.context)
                .ok()
                .filter(|v| !v.is_undefined())
                .map(|v| v.to_string())
        };
        (read("status")? == "skipped").then(|| {
            (
                step.to_string(),
                read("reason").unwrap_or_else(|| "skipped".into()),
            )
        })
    }

    fn first_undefined(&self, source: &Source) -> Option<String> {
        for reference in &source.references {
            for depth in 1..=reference.path.len() {
                let prefix = reference.path[..depth].join(".");
                let defined = self
                    .env
                    .compile_expression(&format!("{prefix} is defined"))
                    .ok()
                    .and_then(|e| e.eval(&self.context).ok())
                    .is_some_and(|v| v.is_true());
                if !defined {
                    return Some(prefix);
                }
            }
        }
        None
    }
}

/// Data as a MiniJinja value.
pub fn to_jinja<T: serde::Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}
