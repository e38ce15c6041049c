//! `flow plan`: the plan of a playbook, shown and optionally saved for `flow apply PLAN.json`.

use super::run_setup::{emitter, plan_runner};
use super::{Global, OutputFormat, exit, prepare, print_diagnostics};
use crate::diagnostic::Diagnostic;
use crate::param::ParamInputs;
use crate::registry::Registry;
use crate::run::Runner;
use crate::saved_plan::{PlanKey, SavedPlan, fingerprint, holds_secret, masked_playbook_text};
use crate::secrets::Masker;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct PlanOptions {
    pub playbook: PathBuf,
    pub params: ParamInputs,
    pub offline: bool,
    /// Save the plan here, for `flow apply PLAN.json`.
    pub out: Option<PathBuf>,
}

/// `flow plan`.
pub async fn plan(mut options: PlanOptions, registry: &Registry, global: &Global) -> i32 {
    // A plan needs no secret values: one not given shows as `(given at apply)`.
    options.params.defer_secrets = true;
    let (checked, params) = match prepare(&options.playbook, &options.params, registry) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let runner = plan_runner(
        Arc::new(checked),
        params,
        options.offline,
        global.verbosity == crate::output::Verbosity::Verbose,
        emitter(global, Vec::new(), Arc::new(Masker::new())),
    );
    let plan = runner.plan().await;
    let code = plan.status.exit_code();
    match &options.out {
        Some(out) if code == exit::OK => {
            match save_plan(&runner, &plan, options.offline, out, &global.state_dir) {
                Ok(()) => {
                    if global.output == OutputFormat::Human {
                        eprintln!(
                            "Saved the plan to {}: apply it with `flow apply {}`.",
                            out.display(),
                            out.display()
                        );
                    }
                    code
                }
                Err(e) => {
                    print_diagnostics(&[Diagnostic::error(
                        None,
                        format!("cannot save the plan to {}: {e}", out.display()),
                    )]);
                    exit::INVALID
                }
            }
        }
        _ => code,
    }
}

fn save_plan(
    runner: &Runner,
    plan: &crate::plan::Plan,
    offline: bool,
    out: &Path,
    state_dir: &Path,
) -> std::io::Result<()> {
    let masker = &runner.emitter.masker;
    let playbook = &runner.checked.playbook;
    let plan_id = runner.settings.run_id.clone();
    // Reads that saw a secret are fingerprinted under the state dir's key (made now if need
    // be), never with a hash anyone holding the plan could test guesses against.
    let key = if plan.reads.values().any(|o| holds_secret(o, masker)) {
        let key = PlanKey::load(state_dir, true)?.ok_or_else(|| {
            std::io::Error::other(format!("no plan key in {}", state_dir.display()))
        })?;
        Some(key)
    } else {
        None
    };
    let saved = SavedPlan {
        flow_plan: crate::saved_plan::FORMAT,
        created_at: crate::event::timestamp_now(),
        reads: plan
            .reads
            .iter()
            .map(|(step, outputs)| {
                (
                    step.clone(),
                    fingerprint(&plan_id, outputs, masker, key.as_ref()),
                )
            })
            .collect(),
        key_id: key.as_ref().map(PlanKey::id),
        plan_id,
        playbook: playbook.file.path.display().to_string(),
        playbook_hash: playbook.hash.clone(),
        // Masked: a password written in the playbook must not land in the plan file — nor
        // the `default` of a secret param that `-p` overrode (the masker knows those too).
        playbook_text: masked_playbook_text(playbook, masker),
        params: runner.params.public(),
        // The secrets that had a value: apply must be given them again.
        secret_params: runner
            .params
            .secret
            .iter()
            .filter(|n| runner.params.values.get(*n).is_some_and(|v| !v.is_null()))
            .cloned()
            .collect(),
        offline,
        lines: plan.lines.iter().map(|line| line.masked(masker)).collect(),
        rollback: plan.rollback.clone(),
    };
    let text = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
    std::fs::write(out, format!("{text}\n"))
}
