//! What a template derives from a secret is a secret too: `{{ params.pw[:6] }}`,
//! `{{ params.pw | reverse }}`, `{{ (params.pw ~ 'x') | b64encode }}` print text the masker
//! has never seen, so a rendered value that read a secret is registered as one — each
//! `{{ … }}` of a text on its own (the rest of the text stays readable), the whole text when
//! the secret steers a `{% … %}` block. Only text of at least `SHORTEST_DERIVED` characters in
//! which no known form of the secret shows already: a number (`| length`) or a short word
//! says little and would mask every `16` and `yes` flow prints, and a text that shows the
//! secret (`--password=…`) is masked around it as it is.

use crate::evaluate::{Evaluator, SHOWN_KEY, UNKNOWN_KEY};
use crate::secrets::Masker;
use crate::template::{Reference, Source};
use minijinja::value::ValueKind;
use serde_json::Value;

/// The least length of a derived text that is registered as a secret.
pub const SHORTEST_DERIVED: usize = 4;

/// How much of the values a template reads is searched for a secret: a reference to a list
/// of a hundred thousand keys is not searched to its end (what it holds is masked anyway
/// when printed; only what a template derives from it is not).
const SEARCH_ITEMS: usize = 10_000;
const SEARCH_BYTES: usize = 1 << 20;

/// Registers what `source` (a text with `{{ }}` in it when `text`, else one expression),
/// rendered to `value`, derived from a secret it read.
pub fn learn(evaluator: &Evaluator, masker: &Masker, source: &Source, text: bool, value: &Value) {
    // An expression whose value could not be registered is not worth a search.
    if masker.is_empty() || (!text && candidate(masker, value).is_none()) {
        return;
    }
    let secret: Vec<&Reference> = source
        .references
        .iter()
        .filter(|r| !evaluator.is_unknown(r) && reads_secret(evaluator, masker, r))
        .collect();
    if secret.is_empty() {
        return;
    }
    if !text {
        derived(masker, value);
        return;
    }
    if learn_blocks(evaluator, masker, source, &secret).is_none() {
        derived(masker, value);
    }
}

/// Each `{{ … }}` of a text that reads a secret, evaluated on its own; `None` when that
/// cannot be done (an expression using a loop's variable, a raw block) or a `{% … %}` block
/// reads a secret: then the whole text counts.
fn learn_blocks(
    evaluator: &Evaluator,
    masker: &Masker,
    source: &Source,
    secret: &[&Reference],
) -> Option<()> {
    if source.text.contains("{% raw") {
        return None;
    }
    let mut rest = source.text.as_str();
    let mut outside = String::new();
    while let Some(open) = rest.find("{{") {
        outside.push_str(&rest[..open]);
        let close = crate::partial_render::closing(&rest[open + 2..])? + open + 2;
        let inner = rest[open + 2..close].trim_matches(|c: char| c == '-' || c.is_whitespace());
        rest = &rest[close + 2..];
        let block = crate::template::expression_source(inner, &source.span)?;
        let reads = block
            .references
            .iter()
            .any(|r| secret.iter().any(|s| s.path == r.path));
        if !reads {
            continue;
        }
        if block.references.iter().any(|r| evaluator.is_unknown(r)) {
            continue;
        }
        let compiled = evaluator.env.compile_expression(inner).ok()?;
        let value = compiled.eval(&evaluator.context).ok()?;
        if value.is_undefined() {
            return None;
        }
        derived(masker, &serde_json::to_value(&value).ok()?);
    }
    outside.push_str(rest);
    // A secret read by a `{% if %}` or `{% for %}` steers what the text says.
    if outside.contains("{%")
        && crate::template::text_references(&outside, &source.span)?
            .iter()
            .any(|r| secret.iter().any(|s| s.path == r.path))
    {
        return None;
    }
    Some(())
}

/// Registers a text derived from a secret.
fn derived(masker: &Masker, value: &Value) {
    if let Some(text) = candidate(masker, value) {
        masker.add(&Value::String(text.to_string()));
    }
}

/// The text of a value that would be registered if derived from a secret: long enough, and
/// not showing a known secret already (a plan's partly known text: its shown part).
fn candidate<'v>(masker: &Masker, value: &'v Value) -> Option<&'v str> {
    let text = match value {
        Value::String(text) => text,
        Value::Object(map) if map.contains_key(UNKNOWN_KEY) => match map.get(SHOWN_KEY) {
            Some(Value::String(shown)) => shown,
            _ => return None,
        },
        _ => return None,
    };
    (text.trim().chars().count() >= SHORTEST_DERIVED && !masker.reveals(text)).then_some(text)
}

/// Whether the value `reference` names holds a secret the masker knows.
fn reads_secret(evaluator: &Evaluator, masker: &Masker, reference: &Reference) -> bool {
    let dotted = reference.dotted();
    let Ok(expression) = evaluator.env.compile_expression(&dotted) else {
        return false;
    };
    let Ok(value) = expression.eval(&evaluator.context) else {
        return false;
    };
    let mut budget = Budget {
        items: SEARCH_ITEMS,
        bytes: SEARCH_BYTES,
    };
    holds_secret(&value, masker, &mut budget)
}

struct Budget {
    items: usize,
    bytes: usize,
}

fn holds_secret(value: &minijinja::Value, masker: &Masker, budget: &mut Budget) -> bool {
    if budget.items == 0 || budget.bytes == 0 {
        return false;
    }
    budget.items -= 1;
    match value.kind() {
        ValueKind::String => {
            let text = value.as_str().unwrap_or("");
            budget.bytes = budget.bytes.saturating_sub(text.len());
            masker.reveals(text)
        }
        ValueKind::Number => masker.is_secret(&value.to_string()),
        ValueKind::Seq | ValueKind::Iterable => value
            .try_iter()
            .is_ok_and(|mut items| items.any(|item| holds_secret(&item, masker, budget))),
        ValueKind::Map => value.try_iter().is_ok_and(|mut keys| {
            keys.any(|key| {
                value
                    .get_item(&key)
                    .is_ok_and(|item| holds_secret(&item, masker, budget))
            })
        }),
        _ => false,
    }
}
