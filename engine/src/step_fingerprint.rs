//! What a step is, as a resume compares it: its type and effect, its `with` (with `defaults`
//! merged), `when`, `for_each`, `confirm`, `retry`, `timeout`, `continue_on_error`, which of
//! its outputs are secret (`secret`, `secret_outputs`), the steps
//! it waits for, and the values of the params it reads — everything that decided what it did.
//! Not its `name` (a label) nor its `undo` (which has not run, and may need a fix).
//!
//! Recorded in `run.json` when a run starts, fingerprinted like a saved plan's reads: a sha256
//! salted with the run id, or, when the definition holds a secret (a secret param's value,
//! a password written in the playbook), an HMAC under the state dir's plan key, so that
//! `run.json` never holds anything a guess could be tested against; the preview shown in a
//! diff has every secret masked.

use crate::analyze::Checked;
use crate::param::ResolvedParams;
use crate::playbook::Step;
use crate::saved_plan::{
    PlanKey, ReadFingerprint, fingerprint, holds_secret, learn_written_secrets,
};
use crate::secret_outputs::SecretOutputs;
use crate::secrets::Masker;
use crate::template::{Reference, Tmpl};
use indexmap::IndexMap;
use serde_json::{Value, json};
use std::path::Path;

/// The fingerprint of every main step. `masker` must know the params' secrets; it learns
/// those written in the playbook here.
pub fn fingerprints(
    checked: &Checked,
    params: &ResolvedParams,
    run_id: &str,
    masker: &Masker,
    state_dir: &Path,
) -> std::io::Result<IndexMap<String, ReadFingerprint>> {
    let definitions: Vec<(String, Value)> = checked
        .playbook
        .main_steps()
        .map(|step| (step.id.clone(), definition(checked, step, params)))
        .collect();
    // The secrets written in the playbook, learnt from what is fingerprinted (the `with`
    // of each step has its `defaults` merged) rather than from a second parse of the file.
    for (step, (_, d)) in checked.playbook.main_steps().zip(&definitions) {
        learn_written_secrets(
            &d["with"],
            &step.body.step_type.meta().secret_fields,
            masker,
        );
        learn_url_passwords(d, masker);
    }
    // The key is made only when a definition needs one.
    let key = if definitions.iter().any(|(_, d)| holds_secret(d, masker)) {
        PlanKey::load(state_dir, true)?
    } else {
        None
    };
    Ok(definitions
        .into_iter()
        .map(|(id, d)| {
            let print = fingerprint(run_id, &d, masker, key.as_ref());
            (id, print)
        })
        .collect())
}

/// A step's definition as plain JSON, in a fixed shape.
fn definition(checked: &Checked, step: &Step, params: &ResolvedParams) -> Value {
    let seen: IndexMap<&str, &Value> = references(step, false)
        .filter(|r| r.root() == "params")
        .filter_map(|r| r.path.get(1))
        .filter_map(|name| Some((name.as_str(), params.values.get(name)?)))
        .collect();
    let needs: Vec<&str> = checked.deps[step.index]
        .iter()
        .map(|d| checked.playbook.steps[*d].id.as_str())
        .collect();
    let mut definition = json!({
        "type": step.body.type_name,
        "effect": step.body.effect.as_str(),
        "with": canonical(&step.body.with),
        "when": step.when.as_ref().map(|w| canonical(&w.expr)),
        "for_each": step.for_each.as_ref().map(canonical),
        "concurrency": step.concurrency,
        "confirm": step.confirm.as_ref().map(canonical),
        "retry": step.retry.as_ref().map(|r| json!({
            "attempts": r.attempts,
            "delay_ms": r.delay.as_millis() as u64,
            "backoff": r.backoff,
            "max_delay_ms": r.max_delay.map(|d| d.as_millis() as u64),
            "until": r.until.as_ref().map(|u| canonical(&u.expr)),
        })),
        "timeout_ms": step.timeout.map(|t| t.as_millis() as u64),
        "continue_on_error": step.continue_on_error,
        "needs": needs,
        "params": seen,
    });
    // Only when declared, so that the runs of a flow that did not know the field resume.
    let secret = match &step.secret_outputs {
        SecretOutputs::None => None,
        SecretOutputs::All => Some(json!(true)),
        SecretOutputs::Named(names) => Some(json!(names)),
    };
    if let (Some(secret), Some(map)) = (secret, definition.as_object_mut()) {
        map.insert("secret".into(), secret);
    }
    definition
}

/// The password of every URL-like text in a definition, more eagerly than the masking of a
/// run does (`redis://:pw@host:notaport` is no valid URL, but its password is one): a preview
/// is the playbook's text, and nothing of it that looks like a password may reach `run.json`.
fn learn_url_passwords(value: &Value, masker: &Masker) {
    static USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*[:/]{1,3}[^\s:@/]*:([^\s@]+)@")
            .expect("a valid regex")
    });
    match value {
        Value::String(text) => {
            for found in USERINFO.captures_iter(text) {
                if let Some(password) = found.get(1) {
                    masker.add(&Value::String(password.as_str().to_string()));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| learn_url_passwords(v, masker)),
        Value::Object(map) => map.values().for_each(|v| learn_url_passwords(v, masker)),
        _ => {}
    }
}

/// A template value as JSON: literals as they are, templates as their source text.
fn canonical(tmpl: &Tmpl) -> Value {
    match tmpl {
        Tmpl::Literal(value) => value.clone(),
        Tmpl::Expr(source) => Value::String(format!("{{{{ {} }}}}", source.text)),
        Tmpl::Text(source) => Value::String(source.text.clone()),
        Tmpl::List(items) => Value::Array(items.iter().map(canonical).collect()),
        Tmpl::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect(),
        ),
    }
}

/// Every reference in a step's templates — `with`, `when`, `for_each`, `confirm`,
/// `retry.until`, deferred expressions — and, with `undo`, in its `undo` too.
pub fn references(step: &Step, undo: bool) -> impl Iterator<Item = &Reference> {
    let mut tmpls: Vec<&Tmpl> = vec![&step.body.with];
    tmpls.extend(step.when.as_ref().map(|w| &w.expr));
    tmpls.extend(step.for_each.as_ref());
    tmpls.extend(step.confirm.as_ref());
    tmpls.extend(
        step.retry
            .as_ref()
            .and_then(|r| r.until.as_ref())
            .map(|u| &u.expr),
    );
    if undo {
        tmpls.extend(step.undo.as_ref().map(|u| &u.with));
    }
    let deferred = step.body.deferred.iter().flat_map(|(source, names)| {
        source
            .references
            .iter()
            .filter(move |r| !names.iter().any(|n| n == r.root()))
    });
    tmpls
        .into_iter()
        .flat_map(|t| t.references())
        .chain(deferred)
        .collect::<Vec<_>>()
        .into_iter()
}
