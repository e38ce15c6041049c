//! `flow apply`: the steps by the graph (the `Scheduler` says which may start), then the
//! `undo` of completed steps if the run failed or was declined, then `finally`.

use super::outcome::StepOutcome;
use super::scheduler::Scheduler;
use super::{Element, RunOutcome, Runner, Scope, finished_event, never_unknown};
use crate::event::{Event, RunStatus, Status, timestamp_now};
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
        let checked = Arc::clone(&self.checked);
        let done = self.keep_steps(&mut completed);
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
                self.undo(*index, elements).await;
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
            Some(Halt::Interrupted) => RunStatus::Interrupted,
            Some(Halt::Step(_, StepError::Declined(_))) => RunStatus::Declined,
            Some(Halt::Step(_, StepError::NeedsApproval(_))) if !failed => RunStatus::NeedsApproval,
            Some(Halt::Journal(_)) => RunStatus::Failed,
            _ if failed => RunStatus::Failed,
            _ => RunStatus::Succeeded,
        };
        let error = halt.map(|h| match h {
            Halt::Step(_, e) => e.message().to_string(),
            Halt::Interrupted => "interrupted".to_string(),
            Halt::Journal(why) => format!("{why}: no further step started"),
        });
        self.close_resources().await;
        self.finish_run(status, error, &never_unknown)
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

    /// Runs the `undo` of a completed step, once per element that succeeded.
    pub(crate) async fn undo(self: &Arc<Self>, index: usize, elements: &[Element]) {
        let step = self.step(index);
        let Some(undo) = &step.undo else { return };
        for item in elements.iter().rev() {
            let began = Instant::now();
            let id = format!("{}.undo", step.id);
            if self.journal_fault().is_some() {
                let outcome = StepOutcome::skipped(NO_JOURNAL.to_string());
                let element = item.as_ref().map(|i| i.1);
                self.emitter
                    .emit(finished_event(id, element, &outcome, began, false));
                continue;
            }
            let scope = Scope {
                item: item.clone(),
                result: None,
            };
            self.emitter.emit(Event::StepStarted {
                step: id.clone(),
                name: step.name.as_ref().map(|n| format!("{n} (undo)")),
                type_name: undo.type_name.clone(),
                element: item.as_ref().map(|i| i.1),
                attempt: 1,
                at: timestamp_now(),
            });
            let outcome = self.run_body(step, undo, &scope).await;
            self.emitter.emit(finished_event(
                id,
                item.as_ref().map(|i| i.1),
                &outcome,
                began,
                false,
            ));
        }
    }

    pub(crate) async fn run_body(
        self: &Arc<Self>,
        step: &Step,
        body: &Body,
        scope: &Scope,
    ) -> StepOutcome {
        let params = match self.render_with(body, &self.evaluator(scope, &never_unknown)) {
            Ok(p) => p,
            Err(e) => {
                return StepOutcome::from_error(StepError::failed(format!("`undo.with`: {e}")));
            }
        };
        let ctx = self.step_context(step, scope);
        match self.invoke(step, body, params, &ctx).await {
            Ok(outputs) => StepOutcome::succeeded(outputs, 1),
            Err(e) => StepOutcome::from_error(e),
        }
    }
}
