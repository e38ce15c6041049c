//! `flow plan`: walks the steps in execution order without changing anything. Reads run (unless
//! offline) so the plan shows real values; writes describe the call they would make; values
//! that depend on a write are "known after apply".

use crate::evaluate::{display_value, find_unknown, unknown};
use crate::event::{Event, RunStatus, Status};
pub use crate::kinds::PlanLine;
use crate::kinds::UndoPlan;
use crate::run::{Runner, Scope};
use crate::step_type::{Action, Description, Effect};
use crate::template::Reference;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// Counts per action, for the plan's last line.
#[derive(Debug, Default, Clone)]
pub struct PlanCounts {
    pub read: usize,
    pub create: usize,
    pub change: usize,
    pub delete: usize,
    pub ask: usize,
    pub skip: usize,
}

impl PlanCounts {
    /// Counts a line; a line that could not be planned is not counted (the plan fails).
    pub fn add(&mut self, action: Action) {
        match action {
            Action::Failed => {}
            Action::Read => self.read += 1,
            Action::Create => self.create += 1,
            Action::Change => self.change += 1,
            Action::Delete => self.delete += 1,
            Action::Ask => self.ask += 1,
            Action::Skip => self.skip += 1,
        }
    }
}

impl std::fmt::Display for PlanCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to read, {} to create, {} to change, {} to delete, {} to ask, {} skipped",
            self.read, self.create, self.change, self.delete, self.ask, self.skip
        )
    }
}

/// A plan: its lines in execution order, what the reads returned, and how planning went. The
/// views render its lines (as `plan_step` events, live), and a saved plan stores them.
pub struct Plan {
    pub status: RunStatus,
    pub lines: Vec<PlanLine>,
    pub counts: PlanCounts,
    /// What each read step returned (unmasked), in plan order: saved plans fingerprint it.
    pub reads: indexmap::IndexMap<String, Value>,
    /// The steps whose `undo` runs if a step fails, in the order it would run.
    pub rollback: Vec<String>,
}

impl Runner {
    /// Plans the playbook; every plan line is emitted as an `Event::PlanStep`.
    pub async fn plan(self: &Arc<Self>) -> Plan {
        self.start_run();
        let unknown_steps: Arc<RwLock<HashSet<String>>> = Arc::default();
        // Steps shown `[only if: …]`: what needs them runs only if they do.
        let conditional: RwLock<HashSet<String>> = RwLock::default();
        let mut reads = indexmap::IndexMap::new();
        let mut counts = PlanCounts::default();
        let mut lines = Vec::new();
        let mut failed = false;
        let order: Vec<usize> = self.checked.walk_order().collect();
        for index in order {
            if *self.interrupt.borrow() {
                failed = true;
                break;
            }
            let mut undo = None;
            let (description, condition, reason, known) = self
                .plan_step(index, &unknown_steps, &conditional, &mut undo)
                .await;
            let step = self.step(index);
            // Known outputs come only from reads that ran.
            if known && let Some(entry) = self.table.get(&step.id) {
                reads.insert(
                    step.id.clone(),
                    serde_json::to_value(&entry).unwrap_or(Value::Null),
                );
            }
            if !known {
                unknown_steps
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(step.id.clone());
            }
            let mut description = description;
            if description.action == Action::Failed && step.continue_on_error {
                // Apply goes on past this failure, and so does the plan.
                description
                    .details
                    .push("continue_on_error: apply goes on past this failure".into());
            } else {
                failed |= description.action == Action::Failed;
            }
            counts.add(description.action);
            let line = PlanLine {
                step: step.id.clone(),
                name: step.name.clone(),
                type_name: step.body.type_name.clone(),
                finally: step.finally,
                action: description.action,
                summary: description.summary,
                details: description.details,
                condition,
                reason,
                undo,
            };
            self.emitter.emit(Event::PlanStep(line.clone()));
            lines.push(line);
        }
        // Undo runs in reverse order of completion; planned one after the other, steps
        // complete in plan order.
        let rollback: Vec<String> = lines
            .iter()
            .rev()
            .filter(|l| l.undo.is_some())
            .map(|l| l.step.clone())
            .collect();
        if !rollback.is_empty() {
            self.emitter.emit(Event::PlanRollback {
                steps: rollback.clone(),
            });
        }
        let status = if *self.interrupt.borrow() {
            RunStatus::Interrupted
        } else if failed {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        self.close_resources().await;
        let is_unknown = |r: &Reference| {
            r.step().is_some_and(|id| {
                unknown_steps
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(id)
            })
        };
        self.finish_run(
            status,
            failed.then(|| "a step could not be planned".to_string()),
            Vec::new(),
            &is_unknown,
        );
        Plan {
            status,
            lines,
            counts,
            reads,
            rollback,
        }
    }

    /// One plan line; the last value says whether the step's outputs are known afterwards.
    /// `undo` gets the plan of the step's `undo`, when it has one and is not skipped.
    async fn plan_step(
        self: &Arc<Self>,
        index: usize,
        unknown_steps: &Arc<RwLock<HashSet<String>>>,
        conditional: &RwLock<HashSet<String>>,
        undo: &mut Option<UndoPlan>,
    ) -> (Description, Option<String>, Option<String>, bool) {
        let step = self.step(index);
        let is_unknown = {
            let unknown_steps = Arc::clone(unknown_steps);
            move |r: &Reference| {
                r.step().is_some_and(|id| {
                    unknown_steps
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains(id)
                })
            }
        };
        let plain = Scope::default();
        let mut condition = None;
        let playbook = &self.checked.playbook;
        if let Some(reason) = crate::skip_propagation::skipped_need(
            playbook,
            &self.checked.needed[index],
            &self.table,
        ) {
            return self.planned_skip(step, reason);
        }
        if let Some(when) = &step.when {
            match self.evaluator(&plain, &is_unknown).when(when) {
                Ok(crate::evaluate::When::Unknown(text)) => condition = Some(text),
                Ok(crate::evaluate::When::Run) => {}
                Ok(crate::evaluate::When::Skip(reason)) => return self.planned_skip(step, reason),
                Err(crate::evaluate::RenderError {
                    skip: Some(reason), ..
                }) => return self.planned_skip(step, reason),
                Err(e) => return (error_line(format!("`when`: {e}")), None, None, false),
            }
        }
        if condition.is_none() {
            condition = self.waits_on_conditional(step, conditional);
        }
        if condition.is_some() {
            conditional
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(step.id.clone());
        }
        let mut elements: Vec<Scope> = vec![plain.clone()];
        let mut elements_unknown = None;
        if let Some(for_each) = &step.for_each {
            match self.evaluator(&plain, &is_unknown).render(for_each) {
                Ok(Value::Array(items)) => {
                    elements = items
                        .into_iter()
                        .enumerate()
                        .map(|(i, item)| Scope {
                            item: Some((item, i)),
                            result: None,
                        })
                        .collect()
                }
                Ok(other) if find_unknown(&other).is_some() => {
                    elements_unknown = Some(display_value(&other));
                    elements = vec![Scope {
                        item: Some((unknown("item"), 0)),
                        result: None,
                    }];
                }
                Ok(other) => {
                    return (
                        error_line(format!(
                            "`for_each` must give a list, got {}",
                            display_value(&other)
                        )),
                        condition,
                        None,
                        false,
                    );
                }
                Err(crate::evaluate::RenderError {
                    skip: Some(reason), ..
                }) => return self.planned_skip(step, reason),
                Err(e) => {
                    return (
                        error_line(format!("`for_each`: {e}")),
                        condition,
                        None,
                        false,
                    );
                }
            }
        }
        let mut descriptions = Vec::new();
        let mut results = Vec::new();
        let mut all_known = condition.is_none() && elements_unknown.is_none();
        let mut effect = step.body.effect;
        for scope in &elements {
            let params = match self.render_with(&step.body, &self.evaluator(scope, &is_unknown)) {
                Ok(p) => p,
                Err(crate::evaluate::RenderError {
                    skip: Some(reason), ..
                }) => return self.planned_skip(step, reason),
                Err(e) => return (error_line(format!("`with`: {e}")), condition, None, false),
            };
            let params_known = find_unknown(&params).is_none();
            effect = self.effect_of(step, &params, params_known).await;
            // A read behind `confirm:` waits for its approval, so not during plan either.
            let runs_now = effect == Effect::Read
                && step.confirm.is_none()
                && step.body.step_type.meta().runs_in_plan
                && params_known
                && !self.settings.offline
                && condition.is_none();
            if runs_now {
                let ctx = self.step_context(step, scope);
                let read = tokio::select! {
                    read = self.invoke(step, &step.body, params.clone(), &ctx) => read,
                    _ = self.interrupted() => Err(crate::step_type::StepError::failed("interrupted")),
                };
                match read {
                    Ok(outputs) => results.push((scope.item.clone(), outputs)),
                    // What it reads may not exist until an earlier write has run (the stack
                    // `deploy` creates): the read is left to apply, not a failed plan.
                    Err(e) if let Some(write) = self.pending_write_before(index, unknown_steps) => {
                        let mut description = self
                            .describe(
                                step,
                                &step.body,
                                params.clone(),
                                params_known,
                                effect,
                                false,
                            )
                            .await;
                        description.details.push(format!(
                            "read during apply, after `{write}` has changed things (read now: {})",
                            e.message()
                        ));
                        return (description, condition, None, false);
                    }
                    Err(e) => {
                        // As apply would: a step that goes on past its failure is `failed`
                        // with its `error` for what follows (known, unless it is one element).
                        let known = step.continue_on_error && step.for_each.is_none();
                        if known {
                            self.record(step, Status::Failed, json!({ "error": e.message() }));
                        }
                        return (
                            error_line(format!("read failed: {e}")),
                            condition,
                            None,
                            known,
                        );
                    }
                }
            } else {
                all_known = false;
            }
            let mut description = self
                .describe(step, &step.body, params, params_known, effect, false)
                .await;
            // A read shows what it returned (an element of a `for_each` is one line of many:
            // its result stays in the journal of the apply).
            if runs_now
                && step.for_each.is_none()
                && let Some((_, outputs)) = results.last()
            {
                // Masked before it is cut: a secret cut in half would no longer be found.
                let outputs = self.emitter.masker.mask_outputs(outputs);
                description.details.extend(if self.settings.whole_reads {
                    crate::read_result::whole(&outputs)
                } else {
                    crate::read_result::brief(&outputs)
                });
            }
            // What it read may change under the write before it: apply reads again.
            if runs_now
                && scope.item.as_ref().is_none_or(|(_, i)| *i == 0)
                && let Some(write) = self.pending_write_before(index, unknown_steps)
            {
                description.details.push(format!(
                    "read now, before `{write}` runs; apply reads it again after"
                ));
            }
            descriptions.push(description);
        }
        // A `for_each` over an empty list is known too: it has no results.
        let no_elements = step.for_each.is_some() && elements.is_empty();
        if all_known && (!results.is_empty() || no_elements) {
            let entry = match &step.for_each {
                None => results.pop().map(|(_, o)| o).unwrap_or(json!({})),
                Some(_) => json!({ "results": results.iter().map(|(item, outputs)| {
                    let mut e = json!({ "item": item.as_ref().map(|i| i.0.clone()) });
                    if let (Some(m), Value::Object(o)) = (e.as_object_mut(), outputs) { m.extend(o.clone()); }
                    e
                }).collect::<Vec<_>>() }),
            };
            self.record(step, Status::Succeeded, entry);
        }
        let mut description = merge_descriptions(descriptions, &elements, elements_unknown.clone());
        if let Some(confirm) = &step.confirm {
            let message = self
                .evaluator(&plain, &is_unknown)
                .render(confirm)
                .map(|m| display_value(&m))
                .unwrap_or_else(|e| e.to_string());
            description.details.push(format!("asks first: {message}"));
        }
        // A `finally` step is never undone.
        if let Some(body) = step.undo.as_ref().filter(|_| !step.finally) {
            *undo = Some(
                self.plan_undo(
                    step,
                    body,
                    &elements,
                    elements_unknown,
                    all_known,
                    &is_unknown,
                )
                .await,
            );
        }
        if self.settings.offline && effect == Effect::Read && description.action == Action::Read {
            description.details.push("not read: --offline".into());
        }
        (description, condition, None, all_known)
    }

    /// The effect of this step with these params: `effect:` if written, else what the step
    /// type says for the params (a Redis command asks the server), else the declared one.
    async fn effect_of(
        self: &Arc<Self>,
        step: &crate::playbook::Step,
        params: &Value,
        known: bool,
    ) -> Effect {
        if step.body.effect_overridden {
            return step.body.effect;
        }
        let mut ctx = self.plan_context(step);
        // With unknowns the type judges by what is known, without reaching any server (the
        // command of a Redis step on an instance not launched yet).
        let params = if known {
            params.clone()
        } else {
            ctx.offline = true;
            crate::evaluate::unknowns_as_text(params)
        };
        step.body
            .step_type
            .effect_json(params, &ctx)
            .await
            .unwrap_or(step.body.effect)
    }

    /// What the step's `undo` would do, described like a step: what the step returns is
    /// unknown until it has run (`known after apply`), like the outputs of writes before it.
    async fn plan_undo(
        self: &Arc<Self>,
        step: &crate::playbook::Step,
        undo: &crate::playbook::Body,
        elements: &[Scope],
        elements_unknown: Option<String>,
        outputs_known: bool,
        is_unknown: &(dyn Fn(&Reference) -> bool + Sync),
    ) -> UndoPlan {
        let own =
            |r: &Reference| is_unknown(r) || (!outputs_known && r.step() == Some(step.id.as_str()));
        let mut descriptions = Vec::new();
        for scope in elements {
            let description = match self.render_with(undo, &self.evaluator(scope, &own)) {
                Ok(params) => {
                    let known = find_unknown(&params).is_none();
                    // Described without looking at the world: what is there now is not what
                    // the undo will find once the step has changed it.
                    self.describe(step, undo, params, known, undo.effect, true)
                        .await
                }
                Err(e) => error_line(format!("`undo.with`: {e}")),
            };
            descriptions.push(description);
        }
        let description = merge_descriptions(descriptions, elements, elements_unknown);
        UndoPlan {
            type_name: undo.type_name.clone(),
            action: description.action,
            summary: match description.action {
                Action::Failed => format!("error: {}", description.summary),
                _ => description.summary,
            },
            details: description.details,
        }
    }

    /// The plan line of a body (the step's own, or its `undo`) with these params.
    async fn describe(
        self: &Arc<Self>,
        step: &crate::playbook::Step,
        body: &crate::playbook::Body,
        params: Value,
        known: bool,
        effect: Effect,
        offline: bool,
    ) -> Description {
        let meta = body.step_type.meta();
        let mut ctx = self.plan_context(step);
        ctx.offline |= offline;
        let fallback_action = match effect {
            Effect::Read => Action::Read,
            Effect::Write => Action::Change,
            Effect::Interactive => Action::Ask,
        };
        let typed = if known {
            Some(
                body.step_type
                    .describe_json(params.clone(), &ctx)
                    .await
                    .unwrap_or_else(error_line),
            )
        } else {
            // Unknown values read as `(known after apply: …)` text; when the params still fit
            // the type, its own description (create vs change, the command) is the best line.
            body.step_type
                .describe_json(crate::evaluate::unknowns_as_text(&params), &ctx)
                .await
                .ok()
        };
        let mut description = if let Some(description) = typed {
            description
        } else {
            let mut d = Description::new(fallback_action, meta.name);
            if let Value::Object(map) = &params {
                for (k, v) in map {
                    d.details.push(format!("{k}: {}", display_value(v)));
                }
            }
            d
        };
        // An `effect: read` override turns a generic step's line into a read.
        if effect == Effect::Read && meta.effect != Effect::Read {
            description.action = Action::Read;
        }
        description
    }

    /// `` `x` runs `` when this step needs a step shown `[only if: …]` (in `needs`, or by
    /// reading its outputs): apply skips it with that step.
    fn waits_on_conditional(
        &self,
        step: &crate::playbook::Step,
        conditional: &RwLock<HashSet<String>>,
    ) -> Option<String> {
        let conditional = conditional.read().unwrap_or_else(|e| e.into_inner());
        let needed = self.checked.needed[step.index]
            .iter()
            .map(|&i| self.step(i).id.as_str());
        let read = step
            .body
            .with
            .references()
            .filter_map(crate::skip_propagation::reads_outputs);
        needed
            .chain(read)
            .find(|id| conditional.contains(*id))
            .map(|id| format!("`{id}` runs"))
    }

    /// The nearest write this step waits for (directly or not) that the plan did not run.
    fn pending_write_before(
        &self,
        index: usize,
        unknown_steps: &RwLock<HashSet<String>>,
    ) -> Option<String> {
        if index >= self.checked.main_count() {
            return None;
        }
        let unknown = unknown_steps.read().unwrap_or_else(|e| e.into_inner());
        crate::analyze::ancestors(&self.checked.deps, index)
            .into_iter()
            .filter(|&i| {
                let step = self.step(i);
                step.body.effect == Effect::Write && unknown.contains(&step.id)
            })
            .max()
            .map(|i| self.step(i).id.clone())
    }

    /// A step the plan knows is skipped: its status and reason are known to what follows.
    fn planned_skip(
        &self,
        step: &crate::playbook::Step,
        reason: String,
    ) -> (Description, Option<String>, Option<String>, bool) {
        self.record(step, Status::Skipped, json!({ "reason": reason }));
        (
            Description::new(Action::Skip, "skipped"),
            None,
            Some(reason),
            true,
        )
    }

    fn record(&self, step: &crate::playbook::Step, status: Status, entry: Value) {
        let mut entry = entry;
        if let Some(map) = entry.as_object_mut() {
            map.insert("status".into(), json!(status.as_str()));
            map.entry("reason").or_insert(Value::Null);
        }
        self.table.set(&step.id, &entry);
    }
}

fn error_line(message: String) -> Description {
    Description::new(Action::Failed, message)
}

/// One description for a step, with a detail line per `for_each` element.
fn merge_descriptions(
    mut descriptions: Vec<Description>,
    elements: &[Scope],
    elements_unknown: Option<String>,
) -> Description {
    if descriptions.len() == 1 && elements.first().is_none_or(|s| s.item.is_none()) {
        return descriptions.remove(0);
    }
    if let Some(list) = elements_unknown {
        let mut d = descriptions.remove(0);
        d.summary = format!("for each of {list}: {}", d.summary);
        return d;
    }
    let action = descriptions
        .first()
        .map(|d| d.action)
        .unwrap_or(Action::Skip);
    let mut merged = Description::new(
        action,
        format!(
            "{} element{}",
            descriptions.len(),
            if descriptions.len() == 1 { "" } else { "s" }
        ),
    );
    for (scope, d) in elements.iter().zip(descriptions) {
        let item = scope
            .item
            .as_ref()
            .map(|i| display_value(&i.0))
            .unwrap_or_default();
        merged.details.push(format!("[{item}] {}", d.summary));
        merged
            .details
            .extend(d.details.into_iter().map(|l| format!("  {l}")));
    }
    merged
}
