//! The check before `flow apply PLAN.json`: nothing may have moved since the plan was made —
//! the playbook, the params, what the reads return.

use super::run_setup::plan_runner;
use super::{exit, print_diagnostics};
use crate::analyze::Checked;
use crate::diagnostic::Diagnostic;
use crate::event::Emitter;
use crate::param::ResolvedParams;
use crate::printable;
use crate::saved_plan::{
    Drift, PlanKey, SavedPlan, compare_params, compare_reads, fingerprint, masked_playbook_text,
};
use crate::secrets::Masker;
use std::path::Path;
use std::sync::Arc;

/// Refuses (exit 2) when the playbook, the params or what the reads return moved since the
/// plan was saved; prints what moved.
pub(crate) async fn check_drift(
    saved: &SavedPlan,
    checked: &Arc<Checked>,
    params: &ResolvedParams,
    state_dir: &Path,
) -> Result<(), i32> {
    // The reads that saw a secret were fingerprinted under the plan key of the state dir the
    // plan was made with: without that key they cannot be compared.
    let key = if saved.reads.values().any(|r| r.keyed) {
        let key = PlanKey::load(state_dir, false);
        match key {
            Ok(Some(key)) if saved.key_id.as_deref() == Some(key.id().as_str()) => Some(key),
            other => {
                let why = match other {
                    Err(e) => format!("cannot read it: {e}"),
                    Ok(None) => "there is none".to_string(),
                    Ok(Some(_)) => "it is another key".to_string(),
                };
                print_diagnostics(&[Diagnostic::error(
                    None,
                    format!(
                        "the plan's reads that saw a secret were fingerprinted with the plan key of the state dir it was made with, and {} does not hold that key ({why}); nothing was applied",
                        state_dir.join(crate::saved_plan::PLAN_KEY_FILE).display()
                    ),
                )
                .with_help(
                    "apply with the `--state-dir` (FLOW_STATE_DIR) the plan was made with, or run `flow plan` again",
                )]);
                return Err(exit::INVALID);
            }
        }
    } else {
        None
    };
    // What the diffs show is masked: the secrets of the params (their defaults too) and those
    // written in the playbook, as in the saved plan's text, so the two sides compare.
    let masker = Masker::new();
    crate::run::learn_param_secrets(params, &masker);
    let mut drifts = Vec::new();
    if checked.playbook.hash != saved.playbook_hash {
        drifts.push(Drift {
            what: format!(
                "the playbook {} changed",
                checked.playbook.file.display_path()
            ),
            diff: crate::saved_plan::diff_lines(
                &saved.playbook_text,
                &masked_playbook_text(&checked.playbook, &masker),
            ),
        });
    }
    drifts.extend(compare_params(&saved.params, &params.public()));
    if drifts.is_empty() && !saved.offline {
        // Plan again, silently, to see what the reads return now — from the very playbook
        // that will be applied, not from a second read of the file.
        let quiet = Arc::new(Emitter::new(Arc::new(Masker::new()), Vec::new()));
        let runner = plan_runner(Arc::clone(checked), params.clone(), false, false, quiet);
        let fresh = runner.plan().await;
        let now = fresh
            .reads
            .iter()
            .map(|(step, outputs)| {
                (
                    step.clone(),
                    fingerprint(
                        &saved.plan_id,
                        outputs,
                        &runner.emitter.masker,
                        key.as_ref(),
                    ),
                )
            })
            .collect();
        drifts.extend(compare_reads(saved, &now));
        drifts.extend(compare_binding_lines(
            saved,
            checked,
            &fresh.lines,
            &runner.emitter.masker,
        ));
    }
    if drifts.is_empty() {
        return Ok(());
    }
    eprintln!(
        "error: the world moved since the plan was made ({}); nothing was applied",
        saved.created_at
    );
    for drift in &drifts {
        eprintln!("  - {}", printable::line(&masker.mask(&drift.what)));
        for line in drift.diff.iter().take(40) {
            eprintln!("      {}", printable::line(&masker.mask(line)));
        }
    }
    eprintln!("  = help: run `flow plan` again to see what apply would do now");
    Err(exit::INVALID)
}

/// The plan lines of steps whose line names exactly what apply acts on (`s3.delete`'s keys):
/// what moved between the saved plan and now.
fn compare_binding_lines(
    saved: &SavedPlan,
    checked: &Checked,
    fresh: &[crate::kinds::PlanLine],
    masker: &Masker,
) -> Vec<Drift> {
    let binding = |step: &str| {
        checked
            .playbook
            .ids
            .get(step)
            .and_then(|i| checked.playbook.steps.get(*i))
            .is_some_and(|s| s.body.step_type.meta().plan_is_binding)
    };
    // A request id in an error differs on every call: it is no part of what the line binds.
    let text = |line: &crate::kinds::PlanLine| {
        std::iter::once(line.summary.as_str())
            .chain(line.details.iter().map(String::as_str))
            .map(crate::saved_plan::strip_request_ids)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut drifts = Vec::new();
    for before in saved.lines.iter().filter(|l| binding(&l.step)) {
        let now = fresh
            .iter()
            .find(|l| l.step == before.step)
            .map(|l| text(&l.masked(masker)))
            .unwrap_or_default();
        let then = text(before);
        if now != then {
            drifts.push(Drift {
                what: format!(
                    "what step `{}` would act on changed since the plan",
                    before.step
                ),
                diff: crate::saved_plan::diff_lines(&then, &now),
            });
        }
    }
    drifts
}
