//! A step whose needed step was skipped is skipped too, with the reason
//! (`needs `restore`, which was skipped: no backup found`), in plan and apply alike: it
//! would otherwise fail on outputs that were never made, or act on work never done.
//!
//! A step needs another when it names it in `needs` (it is skipped before it starts), or when
//! its templates read that step's outputs and the read fails because the step was skipped (a
//! `default`, an `is defined`, or an `or` that never gets there all keep it running). A step
//! that looks at the other's `status` (in its `when` or elsewhere) decides for itself.

use crate::analyze::COMMON_OUTPUTS;
use crate::diagnostic::Diagnostic;
use crate::playbook::{Playbook, Step};
use crate::step_table::StepTable;
use crate::template::{Reference, Source};
use regex::Regex;

/// For each step (by index), the steps in its `needs` whose skip skips it.
pub fn needed_steps(playbook: &Playbook) -> Vec<Vec<usize>> {
    playbook
        .steps
        .iter()
        .map(|step| {
            let mut needed: Vec<usize> = Vec::new();
            let mut add = |index: usize| {
                if index != step.index
                    && !needed.contains(&index)
                    && !decides_itself(step, &playbook.steps[index].id)
                {
                    needed.push(index);
                }
            };
            for (id, _) in step.needs.iter().flatten() {
                if let Some(other) = playbook.step(id) {
                    add(other.index);
                }
            }
            needed
        })
        .collect()
}

/// Why a step is skipped before it starts: a step it needs was skipped.
pub fn skipped_need(playbook: &Playbook, needed: &[usize], table: &StepTable) -> Option<String> {
    needed.iter().find_map(|&index| {
        let id = &playbook.steps[index].id;
        table.skip_reason(id).map(|why| because_skipped(id, &why))
    })
}

/// The reason a step is skipped with, when a step it needs was skipped for `reason`.
pub fn because_skipped(step: &str, reason: &str) -> String {
    format!("needs `{step}`, which was skipped: {}", root_cause(reason))
}

/// A chain of skips names the first cause once, not every link.
fn root_cause(reason: &str) -> &str {
    let mut reason = reason;
    while reason.starts_with("needs `")
        && let Some(at) = reason.find(", which was skipped: ")
    {
        reason = &reason[at + ", which was skipped: ".len()..];
    }
    reason
}

/// Warnings for steps that read outputs of a step that may be skipped and do not handle it:
/// they will be skipped with it, which may not be what the author meant. `order` is every
/// step in execution order.
pub fn warnings(playbook: &Playbook, needed: &[Vec<usize>], order: &[usize]) -> Vec<Diagnostic> {
    let mut may_skip = vec![false; playbook.steps.len()];
    for &index in order {
        let step = &playbook.steps[index];
        may_skip[index] = step.when.is_some() || needed[index].iter().any(|&n| may_skip[n]);
    }
    let mut out = Vec::new();
    for &index in order {
        let step = &playbook.steps[index];
        let mut warned: Vec<usize> = Vec::new();
        for (other, reference) in unguarded_reads(playbook, step) {
            let decided = decides_itself(step, &playbook.steps[other].id)
                || same_conditions(step, &playbook.steps[other]);
            if !may_skip[other] || warned.contains(&other) || decided {
                continue;
            }
            warned.push(other);
            let id = &playbook.steps[other].id;
            let why = if playbook.steps[other].when.is_some() {
                "it has a `when`".to_string()
            } else {
                "a step it needs may be".to_string()
            };
            let path = reference.dotted();
            out.push(
                Diagnostic::warning(
                    Some(&reference.span),
                    format!(
                        "step `{}` reads `{path}`, but `{id}` may be skipped ({why}): then `{}` is skipped too",
                        step.id, step.id
                    ),
                )
                .with_help(format!(
                    "if that is meant, say so with `when: steps.{id}.status != 'skipped'`; to run `{}` anyway, write `{path} | default(…)`",
                    step.id
                )),
            );
        }
    }
    out
}

/// The steps whose outputs a step reads without handling their absence, with the reference.
fn unguarded_reads<'a>(playbook: &Playbook, step: &'a Step) -> Vec<(usize, &'a Reference)> {
    let mut out = Vec::new();
    for source in sources(step) {
        for reference in &source.references {
            let Some(id) = reads_outputs(reference) else {
                continue;
            };
            let Some(other) = playbook.step(id) else {
                continue;
            };
            if other.index == step.index
                || source.text.contains(&format!("steps.{id}.status"))
                || guarded(&source.text, id)
            {
                continue;
            }
            out.push((other.index, reference));
        }
    }
    out
}

/// The step whose outputs a reference reads (`steps.x.stdout`, `steps.x`), not what every
/// step has (`status`, `reason`, `error`, which a skipped step has too).
pub fn reads_outputs(reference: &Reference) -> Option<&str> {
    let field = reference.path.get(2).map(String::as_str);
    reference
        .step()
        .filter(|_| !field.is_some_and(|f| COMMON_OUTPUTS.contains(&f)))
}

/// Every template of a step read before it starts (not `retry.until`, read after an attempt,
/// nor its `undo`, which only runs if it did).
fn sources(step: &Step) -> Vec<&Source> {
    let mut out = step.body.with.sources();
    if let Some(when) = &step.when {
        out.extend(when.expr.sources());
    }
    for tmpl in [&step.for_each, &step.confirm].into_iter().flatten() {
        out.extend(tmpl.sources());
    }
    out.extend(step.body.deferred.iter().map(|(source, _)| source));
    out
}

/// Whether a step's `when` holds every check of the other's: it is skipped whenever the
/// other is, by its own `when`.
fn same_conditions(step: &Step, other: &Step) -> bool {
    let checks = |step: &Step| -> Vec<String> {
        match &step.when {
            None => Vec::new(),
            Some(when) if when.checks.is_empty() => vec![when.text.clone()],
            Some(when) => when.checks.iter().map(|c| c.text.clone()).collect(),
        }
    };
    let (mine, theirs) = (checks(step), checks(other));
    !theirs.is_empty() && theirs.iter().all(|c| mine.contains(c))
}

/// Whether a step looks at another step's `status` or `reason` (in its `when`, or in what
/// it says): then it decides for itself what a skip of that step means.
fn decides_itself(step: &Step, other: &str) -> bool {
    let status = format!("steps.{other}.status");
    let reason = format!("steps.{other}.reason");
    sources(step)
        .iter()
        .any(|s| s.text.contains(&status) || s.text.contains(&reason))
}

/// Whether a template handles the absence of `steps.<id>.…`: every read of it has
/// `| default`, `| d(…)`, `is defined` or `is undefined`, or the template chooses with `or`
/// or `if` (`params.archive or steps.fetch.path`), which flow takes on trust.
fn guarded(text: &str, id: &str) -> bool {
    static CHOOSES: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let chooses = CHOOSES.get_or_init(|| Regex::new(r"\b(or|if)\s").expect("a valid pattern"));
    if chooses.is_match(text) {
        return true;
    }
    static HANDLED: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let handled = HANDLED.get_or_init(|| {
        Regex::new(r"^\s*(?:\|\s*(?:default|d)\b|is\s+(?:not\s+)?(?:defined|undefined)\b)")
            .expect("a valid pattern")
    });
    let mut reads = read_ends(text, id).peekable();
    reads.peek().is_some() && reads.all(|end| handled.is_match(&text[end..]))
}

/// Where each read of step `id` in `text` ends: `steps.<id>` followed by any `.field` and
/// `[index]`. A scan rather than a regex built per step and text: validate checks every
/// reference of every step, and compiling a regex each time was half of its time.
fn read_ends<'t>(text: &'t str, id: &str) -> impl Iterator<Item = usize> + 't {
    let needle = format!("steps.{id}");
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let starts: Vec<usize> = text
        .match_indices(needle.as_str())
        .map(|(i, _)| i)
        .collect();
    let len = needle.len();
    starts.into_iter().filter_map(move |start| {
        let mut end = start + len;
        if text[end..].starts_with(is_word) {
            return None; // `steps.<id>x`: another step
        }
        loop {
            let rest = &text[end..];
            if let Some(field) = rest.strip_prefix('.') {
                let word = field.find(|c: char| !is_word(c)).unwrap_or(field.len());
                if word == 0 {
                    break;
                }
                end += 1 + word;
            } else if let Some(index) = rest.strip_prefix('[') {
                match index.find(']') {
                    Some(close) => end += close + 2,
                    None => break,
                }
            } else {
                break;
            }
        }
        Some(end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_or_a_defined_test_handles_a_missing_output() {
        assert!(guarded("{{ steps.b.stdout | default('') }}", "b"));
        assert!(guarded("steps.b.results[0].x is defined and x", "b"));
        assert!(!guarded(
            "{{ steps.b.stdout }} {{ steps.b.x | d('') }}",
            "b"
        ));
        assert!(!guarded("{{ steps.b.stdout | upper }}", "b"));
        assert!(guarded("{{ (params.a or steps.b.path) | quote }}", "b"));
        assert!(guarded("{{ steps.b['x'].y | d('') }}", "b"));
        assert!(!guarded(
            "{{ steps.bb.x | default('') }} {{ steps.b.x }}",
            "b"
        ));
    }

    #[test]
    fn a_chain_of_skips_names_its_first_cause() {
        assert_eq!(
            root_cause("needs `a`, which was skipped: needs `b`, which was skipped: no backup"),
            "no backup"
        );
        assert_eq!(root_cause("when: params.x"), "when: params.x");
    }
}
