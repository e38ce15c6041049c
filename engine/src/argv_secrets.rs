//! `flow validate` warns where a secret reaches a process's command line — `exec`'s and
//! `ssh.exec`'s `command` and `shell` (fields marked `x-flow-argv`) — because every user of
//! the machine the process runs on can read it there (`ps`, `/proc/<pid>/cmdline`), however
//! well flow masks its own output. A secret is a secret param (or the environment variable it
//! is read from), an output its step type marks secret (`secrets.get`'s `value`, a generated
//! password), one secret for some values (`ssm.get`'s SecureString), or one the playbook
//! declares secret; and an `item` of a `for_each` over one of those.

use crate::diagnostic::Diagnostic;
use crate::playbook::{Body, Playbook, Step};
use crate::template::{Reference, Tmpl};

/// One warning per secret reference in a field that becomes a command line.
pub fn warnings(playbook: &Playbook) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for step in &playbook.steps {
        let bodies =
            std::iter::once((&step.body, "")).chain(step.undo.as_ref().map(|u| (u, "undo ")));
        for (body, undo) in bodies {
            let Tmpl::Map(fields) = &body.with else {
                continue;
            };
            let meta = body.step_type.meta();
            for (field, tmpl) in fields {
                if !meta.argv_fields.contains(field) {
                    continue;
                }
                for reference in tmpl.references() {
                    if let Some(what) = secret(playbook, step, reference, 0) {
                        out.push(warning(step, body, undo, field, reference, &what));
                    }
                }
            }
        }
    }
    out
}

fn warning(
    step: &Step,
    body: &Body,
    undo: &str,
    field: &str,
    reference: &Reference,
    what: &str,
) -> Diagnostic {
    let takes = |name: &str| {
        crate::schema::first_object(&body.step_type.meta().params_schema)
            .and_then(|o| o.get("properties"))
            .is_some_and(|p| p.get(name).is_some())
    };
    let name = reference
        .path
        .last()
        .map(|n| n.to_uppercase())
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or_else(|| "SECRET".to_string());
    let dotted = reference.dotted();
    let help = match (takes("env"), takes("stdin")) {
        (true, true) => format!(
            "pass it in `env:` (`env: {{ {name}: \"{{{{ {dotted} }}}}\" }}`, then `\"${name}\"` in a `shell:` script) or on `stdin:`, which no other user can read"
        ),
        _ => "keep secrets out of it: a command that needs one should read it from a file or its environment".to_string(),
    };
    Diagnostic::warning(
        Some(&reference.span),
        format!(
            "step `{}`: `{undo}with.{field}` puts `{dotted}` ({what}) in a command line, which every user of the machine it runs on can read (`ps`)",
            step.id
        ),
    )
    .with_help(help)
}

/// What makes `reference` (read in `step`) a secret, if it is one.
fn secret(playbook: &Playbook, step: &Step, reference: &Reference, depth: usize) -> Option<String> {
    match reference.root() {
        "params" => {
            let name = reference.path.get(1)?;
            playbook
                .params
                .get(name)
                .filter(|p| p.secret)
                .map(|_| "a secret param".to_string())
        }
        "env" => {
            let variable = reference.path.get(1)?;
            playbook
                .params
                .values()
                .find(|p| p.secret && p.env.as_deref() == Some(variable.as_str()))
                .map(|p| format!("the value of secret param `{}`", p.name))
        }
        "item" if depth == 0 => step
            .for_each
            .as_ref()?
            .references()
            .find_map(|r| secret(playbook, step, r, depth + 1))
            .map(|why| format!("an element of a list that holds {why}")),
        "steps" => {
            let target = playbook.step(reference.step()?)?;
            let meta = target.body.step_type.meta();
            let declared = !target.secret_outputs.is_none();
            let typed = !meta.sensitive_outputs.is_empty();
            match reference.path.get(2).map(String::as_str) {
                None | Some("results") if declared || typed => Some(format!(
                    "outputs of step `{}` that hold a secret",
                    target.id
                )),
                Some(output) if target.secret_outputs.covers(output) => {
                    Some("an output the playbook declares secret".to_string())
                }
                Some(output) if meta.sensitive_outputs.iter().any(|o| o == output) => {
                    Some(format!("a secret output of `{}`", meta.name))
                }
                Some(output) => meta
                    .maybe_secret_outputs
                    .iter()
                    .find(|(o, _)| o == output)
                    .map(|(_, when)| format!("a secret {when}")),
                None => None,
            }
        }
        _ => None,
    }
}

/// A warning for each secret param given with `-p`: flow's own command line is as public as
/// any other.
pub fn given_with_p(
    params: &indexmap::IndexMap<String, crate::param::ParamSpec>,
    inputs: &crate::param::ParamInputs,
) -> Vec<Diagnostic> {
    let mut warned = Vec::new();
    for arg in &inputs.cli {
        let Some((name, _)) = arg.split_once('=') else {
            continue;
        };
        let Some(spec) = params.get(name.trim()).filter(|p| p.secret) else {
            continue;
        };
        if warned
            .iter()
            .any(|(n, _): &(String, Diagnostic)| *n == spec.name)
        {
            continue;
        }
        let instead = match &spec.env {
            Some(variable) => format!("set {variable} (its `env`) or put it in a `--params-file` instead"),
            None => "give the param an `env:` variable and set that, or put it in a `--params-file`, instead".to_string(),
        };
        warned.push((
            spec.name.clone(),
            Diagnostic::warning(
                None,
                format!(
                    "secret param `{}` is given with `-p`: every user of this machine can read flow's command line (`ps`) while it runs",
                    spec.name
                ),
            )
            .with_help(instead),
        ));
    }
    warned.into_iter().map(|(_, d)| d).collect()
}
