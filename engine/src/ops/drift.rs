//! The check before `flow apply PLAN.json`: nothing may have moved since the plan was made —
//! the playbook, the params, what the reads return.

use super::exit;
use super::run_setup::plan_runner;
use crate::analyze::Checked;
use crate::event::Emitter;
use crate::param::ResolvedParams;
use crate::saved_plan::{Drift, SavedPlan, compare_params, compare_reads, fingerprint};
use crate::secrets::Masker;
use std::sync::Arc;

/// Refuses (exit 2) when the playbook, the params or what the reads return moved since the
/// plan was saved; prints what moved.
pub(crate) async fn check_drift(
    saved: &SavedPlan,
    checked: &Arc<Checked>,
    params: &ResolvedParams,
) -> Result<(), i32> {
    let mut drifts = Vec::new();
    if checked.playbook.hash != saved.playbook_hash {
        drifts.push(Drift {
            what: format!(
                "the playbook {} changed",
                checked.playbook.file.display_path()
            ),
            diff: crate::saved_plan::diff_lines(&saved.playbook_text, &checked.playbook.file.text),
        });
    }
    drifts.extend(compare_params(&saved.params, &params.public()));
    if drifts.is_empty() && !saved.offline {
        // Plan again, silently, to see what the reads return now — from the very playbook
        // that will be applied, not from a second read of the file.
        let quiet = Arc::new(Emitter::new(Arc::new(Masker::new()), Vec::new()));
        let runner = plan_runner(Arc::clone(checked), params.clone(), false, quiet);
        let fresh = runner.plan().await;
        let now = fresh
            .reads
            .iter()
            .map(|(step, outputs)| {
                (
                    step.clone(),
                    fingerprint(&saved.plan_id, outputs, &runner.emitter.masker),
                )
            })
            .collect();
        drifts.extend(compare_reads(saved, &now));
    }
    if drifts.is_empty() {
        return Ok(());
    }
    let masker = Masker::new();
    for name in &params.secret {
        if let Some(value) = params.values.get(name) {
            masker.add(value);
        }
    }
    eprintln!(
        "error: the world moved since the plan was made ({}); nothing was applied",
        saved.created_at
    );
    for drift in &drifts {
        eprintln!("  - {}", masker.mask(&drift.what));
        for line in drift.diff.iter().take(40) {
            eprintln!("      {}", masker.mask(line));
        }
    }
    eprintln!("  = help: run `flow plan` again to see what apply would do now");
    Err(exit::INVALID)
}
