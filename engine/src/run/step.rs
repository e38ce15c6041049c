//! One step: its `when`, then its body once, or once per `for_each` element (at most
//! `concurrency` at a time).

use super::outcome::StepOutcome;
use super::{Element, Runner, Scope};
use crate::event::Status;
use crate::kinds::StepError;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

impl Runner {
    /// Runs one step: `when`, then once or per `for_each` element. Returns its outcome and,
    /// for `undo`, the elements that succeeded with their outputs.
    pub(crate) async fn run_step(self: &Arc<Self>, index: usize) -> (StepOutcome, Vec<Element>) {
        let step = self.step(index);
        let began = Instant::now();
        // The step ends before it starts: skipped, or its `when`/`for_each` failed.
        let ended = |outcome: StepOutcome| {
            self.finish(index, None, &outcome, began);
            (outcome, Vec::new())
        };
        let playbook = &self.checked.playbook;
        if let Some(reason) = crate::skip_propagation::skipped_need(
            playbook,
            &self.checked.needed[index],
            &self.table,
        ) {
            return ended(StepOutcome::skipped(reason));
        }
        if step.when.is_some() {
            let decided = self
                .off_thread(move |runner| match &runner.step(index).when {
                    Some(when) => runner.when(when, &Scope::default()),
                    None => Ok(crate::evaluate::When::Run),
                })
                .await;
            match decided {
                Ok(crate::evaluate::When::Run | crate::evaluate::When::Unknown(_)) => {}
                Ok(crate::evaluate::When::Skip(reason)) => {
                    return ended(StepOutcome::skipped(reason));
                }
                Err(e) => return ended(render_failed("when", e)),
            }
        }
        if step.for_each.is_none() {
            if let Some(reason) = self.skipped_by_its_reads(index, Scope::default()).await {
                return ended(StepOutcome::skipped(reason));
            }
            self.started(index, None, 1);
            let outcome = match self.unrecorded() {
                Some(outcome) => outcome,
                None => self.attempts(index, &Scope::default()).await,
            };
            self.finish(index, None, &outcome, began);
            let done = if outcome.status == Status::Succeeded {
                vec![None]
            } else {
                Vec::new()
            };
            return (outcome, done);
        }
        let rendered = self
            .off_thread(move |runner| match &runner.step(index).for_each {
                Some(for_each) => runner.render(for_each, &Scope::default()),
                None => Ok(Value::Array(Vec::new())),
            })
            .await;
        let items = match rendered {
            Ok(Value::Array(items)) => items,
            Ok(other) => {
                return ended(StepOutcome::from_error(StepError::failed(format!(
                    "`for_each` must give a list, got {}",
                    crate::evaluate::display_value(&other)
                ))));
            }
            Err(e) => return ended(render_failed("for_each", e)),
        };
        if let Some(first) = items.first() {
            let scope = Scope {
                item: Some((first.clone(), 0)),
                result: None,
            };
            if let Some(reason) = self.skipped_by_its_reads(index, scope).await {
                return ended(StepOutcome::skipped(reason));
            }
        }
        self.started(index, None, 1);
        if let Some(outcome) = self.unrecorded() {
            self.finish(index, None, &outcome, began);
            return (outcome, Vec::new());
        }
        let (outcome, done) = self.run_elements(index, items).await;
        self.finish(index, None, &outcome, began);
        (outcome, done)
    }

    /// A step whose `with` reads outputs of a step that was skipped, without handling their
    /// absence, is skipped before it starts (its attempts would say the same, after a start).
    /// `scope` is the first element's, for a `for_each` step.
    async fn skipped_by_its_reads(self: &Arc<Self>, index: usize, scope: Scope) -> Option<String> {
        let step = self.step(index);
        let reads_a_skipped_step = step
            .body
            .with
            .references()
            .filter_map(crate::skip_propagation::reads_outputs)
            .any(|id| self.table.skip_reason(id).is_some());
        if !reads_a_skipped_step {
            return None;
        }
        self.off_thread(move |runner| {
            runner
                .render_with(
                    &runner.step(index).body,
                    &runner.evaluator(&scope, &super::never_unknown),
                )
                .err()
                .and_then(|e| e.skip)
        })
        .await
    }

    /// What a resume makes of an element that succeeded before: kept, when it is the same
    /// item; a failure when the `for_each` list changed under it (running it again could do
    /// twice what it did, or skip an item).
    fn kept_element(
        &self,
        index: usize,
        element: usize,
        item: &Value,
        kept: &super::kept::KeptElement,
    ) -> StepOutcome {
        let now = self.emitter.masker.mask_json(item);
        match &kept.item {
            Some(before) if *before != now => StepOutcome::from_error(StepError::failed(format!(
                "element {element} of step `{}` succeeded before with item {} and is {} now: the `for_each` list changed under elements that already ran; restore it, or start a new run",
                self.step(index).id,
                crate::evaluate::display_value(before),
                crate::evaluate::display_value(&now),
            ))),
            _ => StepOutcome::kept(
                Status::Succeeded,
                kept.outputs.clone(),
                None,
                kept.outputs_masked,
            ),
        }
    }

    /// A failure for a step (or element) whose start the journal could not record: it does not
    /// run. `None` while the journal is fine.
    pub(crate) fn unrecorded(&self) -> Option<StepOutcome> {
        self.journal_fault()
            .map(|why| StepOutcome::from_error(StepError::failed(format!("not run: {why}"))))
    }

    /// Runs the elements of a `for_each` step, at most `concurrency` at once. After a failure
    /// no new element starts (unless `continue_on_error`); those are reported skipped. Every
    /// result keeps its `item` and `status`, in element order.
    pub(crate) async fn run_elements(
        self: &Arc<Self>,
        index: usize,
        items: Vec<Value>,
    ) -> (StepOutcome, Vec<Element>) {
        let step = self.step(index);
        let mut results: Vec<Option<Value>> = vec![None; items.len()];
        let mut done: Vec<Element> = Vec::new();
        let mut first_error: Option<StepError> = None;
        let mut running = JoinSet::new();
        let mut next = 0;
        let kept = self
            .kept
            .get()
            .and_then(|k| k.elements.get(&index))
            .cloned();
        loop {
            let may_start =
                (first_error.is_none() || step.continue_on_error) && self.journal_fault().is_none();
            while may_start && next < items.len() && running.len() < step.concurrency {
                if let Some(outcome) = kept
                    .as_ref()
                    .and_then(|k| k.get(&next))
                    .map(|k| self.kept_element(index, next, &items[next], k))
                {
                    self.finish_element(index, next, &items[next], &outcome, Instant::now());
                    running.spawn(std::future::ready((next, outcome)));
                    next += 1;
                    continue;
                }
                let runner = Arc::clone(self);
                let scope = Scope {
                    item: Some((items[next].clone(), next)),
                    result: None,
                };
                let element = next;
                let item = items[next].clone();
                running.spawn(async move {
                    let began = Instant::now();
                    runner.started(index, Some(element), 1);
                    let outcome = match runner.unrecorded() {
                        Some(outcome) => outcome,
                        None => runner.attempts(index, &scope).await,
                    };
                    runner.finish_element(index, element, &item, &outcome, began);
                    (element, outcome)
                });
                next += 1;
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let Ok((element, outcome)) = joined else {
                continue;
            };
            let mut entry = json!({ "item": items[element], "status": outcome.status.as_str() });
            if let Some(map) = entry.as_object_mut() {
                if let Value::Object(outputs) = outcome.outputs {
                    map.extend(outputs);
                }
                if let Some(error) = &outcome.error {
                    map.insert("error".into(), json!(error.message()));
                }
            }
            results[element] = Some(entry);
            if outcome.status == Status::Succeeded {
                done.push(Some((items[element].clone(), element)));
                continue;
            }
            if first_error.is_none() {
                let error = outcome
                    .error
                    .unwrap_or_else(|| StepError::failed("element failed"));
                let message = format!(
                    "element {element} ({}): {}",
                    crate::evaluate::display_value(&items[element]),
                    error.message()
                );
                first_error = Some(match error {
                    StepError::Failed(_) => StepError::Failed(message),
                    StepError::Declined(_) => StepError::Declined(message),
                    StepError::NeedsApproval(_) => StepError::NeedsApproval(message),
                });
            }
        }
        let reason = match self.journal_fault() {
            Some(_) => super::apply::NO_JOURNAL.to_string(),
            None => format!("not run: an earlier element of step `{}` failed", step.id),
        };
        if next < items.len()
            && first_error.is_none()
            && let Some(outcome) = self.unrecorded()
        {
            first_error = outcome.error;
        }
        for (element, item) in items.iter().enumerate().skip(next) {
            self.finish_element(
                index,
                element,
                item,
                &StepOutcome::skipped(reason.clone()),
                Instant::now(),
            );
            results[element] = Some(json!({ "item": item, "status": "skipped", "reason": reason }));
        }
        done.sort_by_key(|e| e.as_ref().map(|(_, i)| *i));
        let results: Vec<Value> = results
            .into_iter()
            .map(|r| r.unwrap_or(Value::Null))
            .collect();
        let outcome = match first_error {
            Some(error) => StepOutcome {
                outputs: json!({ "results": results }),
                ..StepOutcome::from_error(error)
            },
            None => StepOutcome::succeeded(json!({ "results": results }), 1),
        };
        (outcome, done)
    }
}

/// A step's `when` or `for_each` that could not be rendered: it failed, or it read the
/// outputs of a step that was skipped, and is skipped with it.
fn render_failed(field: &str, error: crate::evaluate::RenderError) -> StepOutcome {
    match error.skip {
        Some(reason) => StepOutcome::skipped(reason),
        None => StepOutcome::from_error(StepError::failed(format!("`{field}`: {error}"))),
    }
}
