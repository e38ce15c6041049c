//! `flow apply`: the steps by the graph (the `Scheduler` says which may start), then the
//! `undo` of completed steps if the run failed or was declined, then `finally`.

use super::outcome::StepOutcome;
use super::scheduler::Scheduler;
use super::{Element, RunOutcome, Runner, Scope, finished_event, never_unknown};
use crate::event::{Event, FailedUndo, RunStatus, Status, timestamp_now};
use crate::kinds::StepError;
use crate::playbook::{Body, Step};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// Why no further steps start.
enum Halt {
    /// A step failed, was declined, or needs an approval nobody can give.
    Step(usize, StepError),
    Interrupted,
    /// The run journal cannot be written (why): nothing more starts without a record.
    Journal(String),
    /// A resume ran again the undos that had failed, and one failed again: nothing goes
    /// forward while a step is half rolled back.
    UndoFailedAgain,
}

/// Why a step, undo or `finally` step did not start once the journal failed.
pub(crate) const NO_JOURNAL: &str = "not run: the run journal cannot be written";

impl Runner {
    /// Applies the playbook: main steps by the graph, then `undo` (if the run failed or was
    /// declined), then `finally`.
    pub async fn apply(self: &Arc<Self>) -> RunOutcome {
        let playbook = &self.checked.playbook;
        self.start_run();
        let mut halt: Option<Halt> = None;
        let mut failed = false;
        let mut completed: Vec<(usize, Vec<Element>)> = Vec::new();
        let mut done = self.keep_steps(&mut completed);
        // A resume of a run whose rollback is incomplete first finishes that rollback.
        let mut failed_undos = self.undo_again().await;
        if !failed_undos.is_empty() {
            halt = Some(Halt::UndoFailedAgain);
            self.keep_still_applied(&mut done);
        }
        let checked = Arc::clone(&self.checked);
        let mut scheduler = Scheduler::new(&checked, &done);
        let mut running: JoinSet<(usize, StepOutcome, Vec<Element>)> = JoinSet::new();
        let mut tasks: std::collections::HashMap<tokio::task::Id, (usize, Instant)> =
            Default::default();
        loop {
            if halt.is_none()
                && let Some(why) = self.journal_fault()
            {
                halt = Some(Halt::Journal(why));
            }
            while halt.is_none() && running.len() < self.settings.concurrency.max(1) {
                let Some(next) = scheduler.start_next() else {
                    break;
                };
                let runner = Arc::clone(self);
                let task = running.spawn(async move {
                    let (outcome, done) = runner.run_step(next).await;
                    (next, outcome, done)
                });
                tasks.insert(task.id(), (next, Instant::now()));
            }
            let joined = tokio::select! {
                joined = running.join_next_with_id() => joined,
                _ = self.interrupted(), if !matches!(halt, Some(Halt::Interrupted)) => {
                    // Dropping a step's task kills its processes (see `exec`).
                    running.abort_all();
                    halt = Some(Halt::Interrupted);
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let (index, outcome, done) = match joined {
                Ok((id, result)) => {
                    tasks.remove(&id);
                    result
                }
                Err(error) => {
                    if let Some((index, began)) = tasks.remove(&error.id()) {
                        let why = if error.is_cancelled() {
                            "interrupted".to_string()
                        } else {
                            format!("the step's task ended abnormally: {error}")
                        };
                        // It was running: at least its first attempt had started.
                        let outcome = StepOutcome {
                            attempts: 1,
                            ..StepOutcome::from_error(StepError::Failed(why))
                        };
                        self.finish(index, None, &outcome, began);
                    }
                    failed |= !error.is_cancelled();
                    continue;
                }
            };
            let step = self.step(index);
            if !done.is_empty() && step.undo.is_some() {
                completed.push((index, done));
            }
            let passes = match outcome.status {
                Status::Succeeded | Status::Skipped => true,
                Status::Failed => step.continue_on_error,
                Status::Declined => false,
            };
            if passes {
                scheduler.passed(index);
            } else if let Some(error) = outcome.error {
                failed |= matches!(error, StepError::Failed(_));
                halt.get_or_insert(Halt::Step(index, error));
            }
        }
        // Cancelled steps' commands got SIGTERM: they finish (or are killed at the end of
        // the grace period) before `undo` and `finally` run.
        crate::children::settle().await;
        if let Some(halt) = &halt {
            let reason = match halt {
                Halt::Step(index, error) => {
                    let cause = match error {
                        StepError::Failed(_) => "failed",
                        StepError::Declined(_) => "was declined",
                        StepError::NeedsApproval(_) => "needs approval",
                    };
                    format!("not run: step `{}` {cause}", self.step(*index).id)
                }
                Halt::Interrupted => "not run: the run was interrupted".to_string(),
                Halt::Journal(_) => NO_JOURNAL.to_string(),
                Halt::UndoFailedAgain => {
                    "not run: the rollback of the run is incomplete (an undo failed again)"
                        .to_string()
                }
            };
            for index in scheduler.unstarted() {
                self.finish(
                    index,
                    None,
                    &StepOutcome::skipped(reason.clone()),
                    Instant::now(),
                );
            }
            for (index, elements) in completed.iter().rev() {
                failed_undos.extend(self.undo(*index, elements).await);
            }
        }
        let finally: Vec<usize> = playbook.finally_steps().map(|s| s.index).collect();
        for index in finally {
            if self.journal_fault().is_some() {
                let outcome = StepOutcome::skipped(NO_JOURNAL.to_string());
                self.finish(index, None, &outcome, Instant::now());
                failed = true;
                continue;
            }
            let (outcome, _) = self.run_step(index).await;
            if outcome.status == Status::Failed && !self.step(index).continue_on_error {
                failed = true;
            }
        }
        if halt.is_none()
            && let Some(why) = self.journal_fault()
        {
            halt = Some(Halt::Journal(why));
        }
        let status = match &halt {
            // Whatever stopped the run, a step still applied that should have been reversed
            // is what an operator must hear first.
            _ if !failed_undos.is_empty() => RunStatus::RollbackIncomplete,
            Some(Halt::Interrupted) => RunStatus::Interrupted,
            Some(Halt::Step(_, StepError::Declined(_))) => RunStatus::Declined,
            Some(Halt::Step(_, StepError::NeedsApproval(_))) if !failed => RunStatus::NeedsApproval,
            Some(Halt::Journal(_)) => RunStatus::Failed,
            _ if failed => RunStatus::Failed,
            _ => RunStatus::Succeeded,
        };
        let error = halt.map(|h| match h {
            Halt::Step(index, e) if !failed_undos.is_empty() => {
                let how = match e {
                    StepError::Failed(_) => "failed",
                    StepError::Declined(_) => "was declined",
                    StepError::NeedsApproval(_) => "needs approval",
                };
                format!("step `{}` {how}: {}", self.step(index).id, e.message())
            }
            Halt::Step(_, e) => e.message().to_string(),
            Halt::Interrupted => "interrupted".to_string(),
            Halt::Journal(why) => format!("{why}: no further step started"),
            Halt::UndoFailedAgain => {
                "the undo that failed before failed again, so nothing else ran".to_string()
            }
        });
        let error = match (error, failed_undos.is_empty()) {
            (error, true) => error,
            (cause, false) => Some(rollback_error(&failed_undos, cause)),
        };
        self.close_resources().await;
        self.finish_run(status, error, failed_undos, &never_unknown)
    }

    /// A resume of a run whose rollback is incomplete: runs the undos that failed again,
    /// first, in the order they ran then (the reverse of completion), each with the token it
    /// had. What they read is there: their own step's recorded outputs, and what the steps
    /// before it kept (a resume refuses an undo that would read a secret read again). Returns
    /// the undos that failed again.
    async fn undo_again(self: &Arc<Self>) -> Vec<FailedUndo> {
        let Some(kept) = self.kept.get().map(Arc::clone) else {
            return Vec::new();
        };
        let mut failed = Vec::new();
        for again in &kept.failed_undos {
            if let Some(outputs) = &again.outputs {
                let outcome = StepOutcome::kept(Status::Succeeded, outputs.clone(), None, false);
                self.table_entry(again.index, &outcome);
            }
            failed.extend(self.undo_one(again.index, &again.element, true).await);
        }
        failed
    }

    /// When an undo failed again: the steps it belongs to are still applied, and are reported
    /// kept as they were (a skip reported now would hide the outputs their undo needs next
    /// time).
    fn keep_still_applied(&self, done: &mut std::collections::BTreeSet<usize>) {
        let Some(kept) = self.kept.get() else { return };
        for again in kept.failed_undos.iter().filter(|f| f.element.is_none()) {
            if let Some(outputs) = &again.outputs
                && done.insert(again.index)
            {
                let outcome = StepOutcome::kept(Status::Succeeded, outputs.clone(), None, false);
                self.finish(again.index, None, &outcome, Instant::now());
            }
        }
    }

    /// On a resume: reports the steps kept from earlier attempts and puts their recorded
    /// outputs where templates read them; those with an `undo` join `completed`, in the order
    /// they completed then. Returns the kept steps, for the scheduler to count as done.
    fn keep_steps(
        &self,
        completed: &mut Vec<(usize, Vec<Element>)>,
    ) -> std::collections::BTreeSet<usize> {
        let Some(kept) = self.kept.get() else {
            return Default::default();
        };
        for index in self.checked.order.iter() {
            if let Some(step) = kept.steps.get(index) {
                let outcome = StepOutcome::kept(
                    step.status,
                    step.outputs.clone(),
                    step.reason.clone(),
                    step.outputs_masked,
                );
                self.finish(*index, None, &outcome, Instant::now());
            }
        }
        for index in &kept.completed {
            if let Some(step) = kept.steps.get(index)
                && self.step(*index).undo.is_some()
            {
                completed.push((*index, step.elements.clone()));
            }
        }
        kept.steps.keys().copied().collect()
    }

    /// Runs the `undo` of a completed step, once per element that succeeded, last first.
    /// Returns those that failed.
    pub(crate) async fn undo(
        self: &Arc<Self>,
        index: usize,
        elements: &[Element],
    ) -> Vec<FailedUndo> {
        let mut failed = Vec::new();
        for item in elements.iter().rev() {
            failed.extend(self.undo_one(index, item, false).await);
        }
        failed
    }

    /// Runs the `undo` of one step (element); what failed, if it did. `earlier`: the undo of
    /// what an earlier attempt of the run made (see `undo_context`).
    async fn undo_one(
        self: &Arc<Self>,
        index: usize,
        item: &Element,
        earlier: bool,
    ) -> Option<FailedUndo> {
        let step = self.step(index);
        let undo = step.undo.as_ref()?;
        let began = Instant::now();
        let id = super::undo_id(&step.id);
        let element = item.as_ref().map(|i| i.1);
        let outcome = if self.journal_fault().is_some() {
            StepOutcome::skipped(NO_JOURNAL.to_string())
        } else {
            let scope = Scope {
                item: item.clone(),
                result: None,
            };
            self.emitter.emit(Event::StepStarted {
                step: id.clone(),
                name: step.name.as_ref().map(|n| format!("{n} (undo)")),
                type_name: undo.type_name.clone(),
                element,
                attempt: 1,
                at: timestamp_now(),
            });
            self.run_body(step, undo, &scope, earlier).await
        };
        self.emitter
            .emit(finished_event(id, element, &outcome, began, false));
        (outcome.status != Status::Succeeded).then(|| FailedUndo {
            step: step.id.clone(),
            element,
            type_name: step.body.type_name.clone(),
            undo_type: undo.type_name.clone(),
            error: outcome
                .error
                .as_ref()
                .map(|e| e.message().to_string())
                .or(outcome.reason)
                .unwrap_or_else(|| "it did not succeed".into()),
        })
    }

    pub(crate) async fn run_body(
        self: &Arc<Self>,
        step: &Step,
        body: &Body,
        scope: &Scope,
        earlier: bool,
    ) -> StepOutcome {
        // It started: one attempt, whatever came of it.
        let failed = |error| StepOutcome {
            attempts: 1,
            ..StepOutcome::from_error(error)
        };
        let params = match self.render_with(body, &self.evaluator(scope, &never_unknown)) {
            Ok(p) => p,
            Err(e) => return failed(StepError::failed(format!("`undo.with`: {e}"))),
        };
        let ctx = self.undo_context(step, scope, earlier);
        match self.invoke(step, body, params, &ctx).await {
            Ok(outputs) => StepOutcome::succeeded(outputs, 1),
            Err(e) => failed(e),
        }
    }
}

/// The run's error when its rollback is incomplete: which steps are still applied, then what
/// stopped the run. The summary names each failed undo with its error.
fn rollback_error(failed_undos: &[FailedUndo], cause: Option<String>) -> String {
    let mut steps: Vec<String> = Vec::new();
    for f in failed_undos {
        let element = f.element.map(|e| format!("[{e}]")).unwrap_or_default();
        let name = format!("`{}{element}`", f.step);
        if !steps.contains(&name) {
            steps.push(name);
        }
    }
    let still = match steps.len() {
        1 => format!("{} is still applied (its undo failed)", steps[0]),
        _ => format!(
            "{} are still applied (their undos failed)",
            steps.join(", ")
        ),
    };
    match cause {
        Some(cause) => format!("{still}; the run stopped on: {cause}"),
        None => still,
    }
}
