//! `flow apply --resume RUN`: goes on with a run that failed, was declined, needs an approval,
//! was interrupted or did not finish (flow was killed), from its journal. Steps that finished
//! keep their recorded outputs and do not run again; the others run, from the playbook as it
//! is now, with the same run id — so the same idempotency tokens.
//!
//! Refused (exit 2, nothing run): an unknown run, one that succeeded, one another flow is
//! applying or resuming now (the run's lock), a change to a step that finished (or to what it
//! depended on, or to the params it read), and a recorded output that was masked because it
//! held a secret when a step still to run needs it.

use super::apply::{
    ReadyRun, SecretSource, check_approvals, explain_missing_secrets, given_secrets,
    require_secrets, step_fingerprints,
};
use super::{Global, check, exit, print_diagnostics, resolve_params};
use crate::analyze::Checked;
use crate::diagnostic::Diagnostic;
use crate::event::Status;
use crate::event::{Resumed, RunStatus};
use crate::journal::{JournalReporter, ResumeRecord, RunRecord, events_path, find_run, runs_dir};
use crate::param::{ParamInputs, ResolvedParams};
use crate::playbook::Step;
use crate::printable;
use crate::recorded::Recorded;
use crate::registry::Registry;
use crate::run::kept::{Kept, KeptElement, KeptStep, UndoAgain};
use crate::run_lock::{LockError, RunLock};
use crate::saved_plan::{Drift, diff_lines};
use crate::secrets::Masker;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub struct ResumeOptions {
    /// The run id, or a unique prefix of it.
    pub run: String,
    /// More params: ones the run did not have yet, and its secret ones again.
    pub params: ParamInputs,
    pub approvals: crate::context::Approvals,
    pub concurrency: usize,
}

/// Outputs every step has; reading them from a kept step needs none of its recorded outputs.
const STATUS_FIELDS: &[&str] = &["status", "error", "reason"];

fn refuse(message: String, help: Option<String>) -> i32 {
    let diagnostic = Diagnostic::error(None, message);
    print_diagnostics(&[match help {
        Some(help) => diagnostic.with_help(help),
        None => diagnostic,
    }]);
    exit::INVALID
}

/// What the run's journal says each step came to, read one event at a time. A journal that
/// cannot be read, has lines that are not events, or lost the end of a step is refused: what
/// it lost may be a write that finished, which a resume would run again.
fn read_journal(state_dir: &Path, record: &RunRecord) -> Result<Recorded, i32> {
    let path = events_path(state_dir, record);
    let mut recorded = Recorded::default();
    let damage = crate::journal_read::read_events(&path, |event| recorded.observe(&event))
        .map_err(|e| {
            refuse(
                format!(
                    "cannot resume run {}: its journal {} cannot be read: {e}",
                    record.run_id,
                    path.display()
                ),
                None,
            )
        })?;
    if let Some(why) = damage.blocks_resume() {
        return Err(refuse(
            format!(
                "cannot resume run {}: its journal {} is damaged: {why}",
                record.run_id,
                path.display()
            ),
            Some(format!(
                "`flow show {}` shows what it could read; check what the run did, then start a new run",
                record.run_id
            )),
        ));
    }
    Ok(recorded)
}

/// `flow apply --resume RUN`.
pub async fn resume(options: ResumeOptions, registry: &Registry, global: &Global) -> i32 {
    let state_dir = &global.state_dir;
    let record = match find_run(state_dir, &options.run) {
        Ok(found) => found,
        Err(message) => return refuse(message, None),
    };
    let id = record.run_id.clone();
    // The lock first, then the journal read again under it: what another flow wrote up to
    // the moment it let go counts.
    let lock = match RunLock::acquire(&runs_dir(state_dir).join(&id)) {
        Ok(lock) => lock,
        Err(LockError::Held(pid)) => {
            let by = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            return refuse(
                format!("run {id} is being applied or resumed by another flow{by} right now"),
                Some("wait for it to end; `flow show` shows how far it got".into()),
            );
        }
        Err(LockError::Io(e)) => {
            return refuse(format!("cannot lock run {id} to resume it: {e}"), None);
        }
    };
    let record = match find_run(state_dir, &id) {
        Ok(found) => found,
        Err(message) => return refuse(message, None),
    };
    if let Err(code) = resumable(&record) {
        return code;
    }
    let recorded = match read_journal(state_dir, &record) {
        Ok(recorded) => recorded,
        Err(code) => return code,
    };
    let checked = match check(Path::new(&record.playbook), registry) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    let secrets = SecretSource {
        not_stored: "the run's journal does not store it",
        had_value: "had a value in the run, and its journal never stores secrets",
    };
    let mut inputs = options.params;
    // The run's params, as weak as a saved plan's: `-p` may give the ones it lacked (and
    // change others, which is refused below for steps that read them and finished).
    inputs.values = record
        .params
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let params = match resolve_params(&checked, &inputs) {
        Ok(params) => params,
        Err(mut diagnostics) => {
            explain_missing_secrets(&mut diagnostics, &record.secret_params, secrets);
            print_diagnostics(&diagnostics);
            return exit::INVALID;
        }
    };
    if let Err(code) = require_secrets(&checked, &params, &record.secret_params, secrets) {
        return code;
    }
    if let Err(code) = check_approvals(&checked, &options.approvals) {
        return code;
    }
    let fingerprints = match step_fingerprints(&checked, &params, &id, state_dir) {
        Ok(fingerprints) => fingerprints,
        Err(e) => {
            return refuse(
                format!("cannot compare the playbook with run {id}: {e}"),
                None,
            );
        }
    };
    let drifts = drifts(&checked, &record, &recorded, &fingerprints);
    if !drifts.is_empty() {
        print_drifts(&id, &checked, &params, &drifts);
        return exit::INVALID;
    }
    let kept = match keep(&checked, &recorded, &id) {
        Ok(kept) => kept,
        Err(message) => {
            return refuse(
                message,
                Some(format!(
                    "start a new run instead: `flow apply {}`",
                    checked.playbook.file.display_path()
                )),
            );
        }
    };
    if let Err(message) = undo_reads_kept(&checked, &recorded, &kept, &id) {
        return refuse(
            message,
            Some(
                "an `undo` may change on a resume: let it take the value from a param instead (and give it with `-p`), then resume again".into(),
            ),
        );
    }
    let kept_ids: Vec<String> = kept_ids(&checked, &kept);
    let resumed = Resumed {
        number: record.resumes.len() as u32 + 1,
        user: crate::context::current_user(),
        host: crate::context::current_host(),
        kept: kept_ids.clone(),
        undo_first: undo_first_ids(&checked, &kept),
    };
    let masker = Arc::new(Masker::new());
    crate::run::learn_param_secrets(&params, &masker);
    let mut resumes = record.resumes.clone();
    resumes.push(ResumeRecord {
        at: crate::event::timestamp_now(),
        user: resumed.user.clone(),
        host: resumed.host.clone(),
        kept: kept_ids,
    });
    let record = RunRecord {
        playbook: checked.playbook.file.path.display().to_string(),
        playbook_hash: checked.playbook.hash.clone(),
        params: params.public(),
        secret_params: given_secrets(&params),
        finished_at: None,
        duration_ms: None,
        status: RunStatus::Running,
        exit_code: None,
        error: None,
        flow_version: env!("CARGO_PKG_VERSION").to_string(),
        // What the next resume compares with: the steps as this one runs them.
        fingerprints,
        resumes,
        graph: crate::run_graph::graph(&checked, &masker),
        ..record
    };
    let journal = match JournalReporter::reopen(state_dir, record, lock) {
        Ok(journal) => journal,
        Err(e) => {
            return refuse(
                format!("cannot write the journal of run {id}: {e}"),
                Some(
                    "pass the writable `--state-dir` (or FLOW_STATE_DIR) the run was recorded in"
                        .into(),
                ),
            );
        }
    };
    let run = ReadyRun {
        checked: Arc::new(checked),
        params,
        run_id: id,
        journal,
        masker,
        approvals: options.approvals,
        concurrency: options.concurrency,
    };
    let kept = Kept { resumed, ..kept };
    run.apply(global, Some(kept)).await
}

/// Refuses a run there is nothing to resume of, or that cannot be resumed.
fn resumable(record: &RunRecord) -> Result<(), i32> {
    let id = &record.run_id;
    if record.status == RunStatus::Succeeded {
        return Err(refuse(
            format!("run {id} succeeded: there is nothing to resume"),
            Some("start a new run with `flow apply PLAYBOOK`".into()),
        ));
    }
    if let Some(why) = &record.rebuilt {
        return Err(refuse(
            format!(
                "run {id} cannot be resumed: {why}, and the params and playbook hash of a run are only there"
            ),
            None,
        ));
    }
    if record.fingerprints.is_empty() {
        return Err(refuse(
            format!(
                "run {id} cannot be resumed: its run.json has no fingerprints of its steps (it was recorded by an older flow, or the state dir's plan key could not be made)"
            ),
            Some("start a new run with `flow apply PLAYBOOK`".into()),
        ));
    }
    Ok(())
}

/// The steps that finished before and changed since — in their own definition, what they
/// depend on, or the params they read — and those that are gone from the playbook.
fn drifts(
    checked: &Checked,
    record: &RunRecord,
    recorded: &Recorded,
    now: &indexmap::IndexMap<String, crate::saved_plan::ReadFingerprint>,
) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for (id, before) in &record.fingerprints {
        if recorded.finished(id).is_none() {
            continue;
        }
        match (checked.playbook.step(id), now.get(id)) {
            (Some(step), Some(after)) if !step.finally => {
                if after.sha256 != before.sha256 || after.sha256 == "unkeyed" {
                    let diff = diff_lines(&before.preview.join("\n"), &after.preview.join("\n"));
                    let what = if diff.is_empty() {
                        format!(
                            "step `{id}` finished in the run and changed since, in a secret value"
                        )
                    } else {
                        format!("step `{id}` finished in the run and changed since")
                    };
                    drifts.push(Drift { what, diff });
                }
            }
            _ => drifts.push(Drift {
                what: format!(
                    "step `{id}` finished in the run and is no longer a step of the playbook"
                ),
                diff: Vec::new(),
            }),
        }
    }
    drifts
}

fn print_drifts(id: &str, checked: &Checked, params: &ResolvedParams, drifts: &[Drift]) {
    let masker = Masker::new();
    crate::run::learn_param_secrets(params, &masker);
    eprintln!(
        "error: the playbook changed under steps that already finished in run {id}; nothing was run"
    );
    for drift in drifts {
        eprintln!("  - {}", printable::line(&masker.mask(&drift.what)));
        for line in drift.diff.iter().take(40) {
            eprintln!("      {}", printable::line(&masker.mask(line)));
        }
    }
    eprintln!(
        "  = help: a resume may change only steps that have not finished: undo the change to those, or start a new run with `flow apply {}`",
        checked.playbook.file.display_path()
    );
}

/// What the resume keeps: each main step that finished (not undone since), whole, and the
/// succeeded elements of a `for_each` step that did not. A read whose recorded outputs were
/// masked (they held a secret) runs again instead — reads have no side effects; a write or a
/// question whose masked outputs a step still to run reads is refused.
fn keep(checked: &Checked, recorded: &Recorded, id: &str) -> Result<Kept, String> {
    let undo_first = undo_first(checked, recorded);
    let again = |index: usize, element: Option<usize>| {
        undo_first
            .iter()
            .any(|u| u.index == index && u.element.as_ref().map(|e| e.1) == element)
    };
    let mut steps = BTreeMap::new();
    let mut elements = std::collections::HashMap::new();
    for step in checked.playbook.main_steps() {
        let read = step.body.effect == crate::kinds::Effect::Read;
        let done: BTreeMap<usize, &crate::recorded::Outcome> = recorded
            .finished_elements(&step.id)
            .into_iter()
            .filter(|(i, _)| !again(step.index, Some(*i)))
            .collect();
        // A step (element) whose undo failed is undone first, then runs again: not kept.
        let whole = !undo_first.iter().any(|u| u.index == step.index);
        if let Some(outcome) = recorded.finished(&step.id).filter(|_| whole) {
            if outcome.outputs_masked && read {
                continue;
            }
            steps.insert(
                step.index,
                KeptStep {
                    status: outcome.status,
                    outputs: outcome.outputs.clone(),
                    reason: outcome.reason.clone(),
                    outputs_masked: outcome.outputs_masked
                        || done.values().any(|e| e.outputs_masked),
                    elements: match step.for_each {
                        None => vec![None],
                        Some(_) => done
                            .iter()
                            .map(|(i, e)| Some((e.item.clone().unwrap_or_default(), *i)))
                            .collect(),
                    },
                },
            );
        } else if step.for_each.is_some() && !done.is_empty() {
            let kept: BTreeMap<usize, KeptElement> = done
                .into_iter()
                .filter(|(_, e)| !(e.outputs_masked && read))
                .map(|(i, e)| {
                    (
                        i,
                        KeptElement {
                            item: e.item.clone(),
                            outputs: e.outputs.clone(),
                            outputs_masked: e.outputs_masked,
                        },
                    )
                })
                .collect();
            if !kept.is_empty() {
                elements.insert(step.index, kept);
            }
        }
    }
    // Whether what a step finished with is known only as `***`: kept, or read by an undo that
    // runs again first.
    let masked = |target: &Step| {
        steps
            .get(&target.index)
            .is_some_and(|k: &KeptStep| k.outputs_masked)
            || elements
                .get(&target.index)
                .is_some_and(|e: &BTreeMap<usize, KeptElement>| {
                    e.values().any(|e| e.outputs_masked)
                })
            || (undo_first.iter().any(|u| u.index == target.index)
                && recorded
                    .steps
                    .get(&target.id)
                    .is_some_and(|o| o.outputs_masked))
    };
    // What a masked output would be fed to: the steps still to run, `finally` steps, and
    // every `undo`.
    for step in &checked.playbook.steps {
        let runs = step.finally || !steps.contains_key(&step.index);
        for reference in crate::step_fingerprint::references(step, false)
            .filter(|_| runs)
            .chain(step.undo.iter().flat_map(|u| u.with.references()))
        {
            let Some(target) = reference.step().and_then(|s| checked.playbook.step(s)) else {
                continue;
            };
            let field = reference.path.get(2).map(String::as_str);
            if field.is_some_and(|f| STATUS_FIELDS.contains(&f)) {
                continue;
            }
            if masked(target) {
                return Err(masked_output(id, target, step, &reference.dotted()));
            }
        }
    }
    let completed = recorded
        .completion_order
        .iter()
        .filter_map(|s| checked.playbook.step(s))
        .filter(|s| steps.contains_key(&s.index))
        .map(|s| s.index)
        .collect();
    Ok(Kept {
        resumed: Resumed {
            number: 0,
            user: String::new(),
            host: String::new(),
            kept: Vec::new(),
            undo_first: Vec::new(),
        },
        steps,
        elements,
        completed,
        undos: recorded.undos.clone(),
        failed_undos: undo_first,
    })
}

/// Refuses an `undo` that may run in this resume — one that failed and runs again first, or
/// that of a kept step — when it reads what a read returned and the journal kept only as
/// `***` (it held a secret): that read would run again and answer with what is there now (the
/// new password the step wrote), not what the step was made against, and the undo would
/// "restore" the wrong value.
fn undo_reads_kept(
    checked: &Checked,
    recorded: &Recorded,
    kept: &Kept,
    id: &str,
) -> Result<(), String> {
    let undoable = checked.playbook.main_steps().filter(|step| {
        step.undo.is_some()
            && (kept.steps.contains_key(&step.index)
                || kept.failed_undos.iter().any(|u| u.index == step.index))
    });
    for step in undoable {
        let Some(undo) = &step.undo else { continue };
        for reference in undo.with.references() {
            let Some(target) = reference.step().and_then(|s| checked.playbook.step(s)) else {
                continue;
            };
            let field = reference.path.get(2).map(String::as_str);
            let read_again = target.index != step.index
                && target.body.effect == crate::kinds::Effect::Read
                && !kept.steps.contains_key(&target.index)
                && recorded
                    .finished(&target.id)
                    .is_some_and(|o| o.outputs_masked);
            if read_again && !field.is_some_and(|f| STATUS_FIELDS.contains(&f)) {
                return Err(format!(
                    "the `undo` of step `{}` reads `{}`, which held a secret in run {id}, so the journal keeps it only as `***`; reading `{}` again now would give what it is now, not what it was when `{}` ran, and the undo would put back the wrong value",
                    step.id,
                    reference.dotted(),
                    target.id,
                    step.id
                ));
            }
        }
    }
    Ok(())
}

/// The undos that failed in the run and have not succeeded since, in the order they ran: a
/// resume runs them again before anything else. One whose step has no `undo` in the playbook
/// any more is left out: the operator took it away, and the step stays applied (kept).
fn undo_first(checked: &Checked, recorded: &Recorded) -> Vec<UndoAgain> {
    recorded
        .failed_undos
        .iter()
        .filter_map(|(id, element)| {
            let step = checked.playbook.step(id).filter(|s| !s.finally)?;
            step.undo.as_ref()?;
            let finished = recorded
                .steps
                .get(id)
                .filter(|o| o.status == Status::Succeeded);
            let element = match element {
                None => {
                    finished?;
                    None
                }
                Some(e) => {
                    let outcome = recorded.elements.get(id)?.get(e)?;
                    Some((outcome.item.clone().unwrap_or_default(), *e))
                }
            };
            Some(UndoAgain {
                index: step.index,
                element,
                outputs: finished.map(|o| o.outputs.clone()),
            })
        })
        .collect()
}

/// `rotate_secret`, `each[2]`: the steps (elements) whose undo a resume runs first.
fn undo_first_ids(checked: &Checked, kept: &Kept) -> Vec<String> {
    kept.failed_undos
        .iter()
        .map(|u| {
            let id = &checked.playbook.steps[u.index].id;
            match &u.element {
                Some((_, e)) => format!("{id}[{e}]"),
                None => id.clone(),
            }
        })
        .collect()
}

fn masked_output(id: &str, target: &Step, user: &Step, reference: &str) -> String {
    format!(
        "step `{}` finished in run {id}, but its outputs held a secret, so the journal keeps them only as `***`, and step `{}` reads `{reference}`: a resume does not run a {} again to get them back",
        target.id,
        user.id,
        match target.body.effect {
            crate::kinds::Effect::Interactive => "question",
            _ => "write",
        }
    )
}

/// The kept steps' ids, in execution order.
fn kept_ids(checked: &Checked, kept: &Kept) -> Vec<String> {
    checked
        .order
        .iter()
        .filter(|i| kept.steps.contains_key(i))
        .map(|i| checked.playbook.steps[*i].id.clone())
        .collect()
}
