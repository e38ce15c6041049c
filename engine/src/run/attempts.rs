//! A step's attempts: its `with` rendered (secrets learned on the way), its `confirm:` asked,
//! then tries under `retry` and `timeout`.

use super::outcome::StepOutcome;
use super::{Runner, Scope, never_unknown};
use crate::context::StepContext;
use crate::evaluate::{Evaluator, RenderError};
use crate::event::Event;
use crate::kinds::StepError;
use crate::playbook::{Body, Step};
use serde_json::Value;
use std::sync::Arc;

impl Runner {
    /// Renders `with`, asks `confirm:`, then runs the attempts with `retry` and `timeout`.
    pub(crate) async fn attempts(self: &Arc<Self>, index: usize, scope: &Scope) -> StepOutcome {
        let step = self.step(index);
        let ctx = self.step_context(step, scope);
        let rendered = {
            let scope = scope.clone();
            self.off_thread(move |runner| {
                runner.render_with(
                    &runner.step(index).body,
                    &runner.evaluator(&scope, &never_unknown),
                )
            })
        };
        // The step's `timeout` covers its templates too.
        let rendered = match step.timeout {
            None => rendered.await,
            Some(limit) => match tokio::time::timeout(limit, rendered).await {
                Ok(rendered) => rendered,
                Err(_) => {
                    return StepOutcome::from_error(StepError::failed(format!(
                        "timed out after {} rendering `with`",
                        crate::duration::format_duration(limit)
                    )));
                }
            },
        };
        let params = match rendered {
            Ok(p) => p,
            Err(RenderError {
                skip: Some(reason), ..
            }) => return StepOutcome::skipped(reason),
            Err(e) => return StepOutcome::from_error(StepError::failed(format!("`with`: {e}"))),
        };
        if let Some(confirm) = &step.confirm {
            let message = match self.render(confirm, scope) {
                Ok(m) => crate::evaluate::display_value(&m),
                Err(e) => {
                    return StepOutcome::from_error(StepError::failed(format!("`confirm`: {e}")));
                }
            };
            if let Err(error) = ctx.approve(&message, None).await {
                return StepOutcome::from_error(error);
            }
        }
        let attempts = step.retry.as_ref().map_or(1, |r| r.attempts);
        let mut attempt = 1;
        loop {
            if attempt > 1 {
                self.started(index, scope.item.as_ref().map(|i| i.1), attempt);
                if let Some(outcome) = self.unrecorded() {
                    return StepOutcome {
                        attempts: attempt - 1,
                        ..outcome
                    };
                }
            }
            let result = self.attempt(step, params.clone(), &ctx).await;
            let result = match result {
                Ok(outputs) => match step.retry.as_ref().and_then(|r| r.until.as_ref()) {
                    None => Ok(outputs),
                    Some(until) => {
                        let until_scope = Scope {
                            item: scope.item.clone(),
                            result: Some(outputs.clone()),
                        };
                        match self
                            .render(&until.expr, &until_scope)
                            .map(|v| crate::evaluate::to_jinja(&v).is_true())
                        {
                            Ok(true) => Ok(outputs),
                            Ok(false) => Err(StepError::failed(format!(
                                "retry.until `{}` is still false after {attempt} attempt{}",
                                until.text,
                                if attempt == 1 { "" } else { "s" }
                            ))),
                            Err(e) => {
                                return StepOutcome::from_error(StepError::failed(format!(
                                    "`retry.until`: {e}"
                                )));
                            }
                        }
                    }
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(outputs) => return StepOutcome::succeeded(outputs, attempt),
                Err(StepError::Failed(message)) if attempt < attempts => {
                    let delay = step
                        .retry
                        .as_ref()
                        .map(|r| r.delay_after(attempt))
                        .unwrap_or_default();
                    self.emitter.emit(Event::StepRetrying {
                        step: step.id.clone(),
                        element: scope.item.as_ref().map(|i| i.1),
                        attempt,
                        error: message,
                        delay_ms: delay.as_millis() as u64,
                    });
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => {
                    return StepOutcome {
                        attempts: attempt,
                        ..StepOutcome::from_error(error)
                    };
                }
            }
        }
    }

    pub(crate) async fn attempt(
        &self,
        step: &Step,
        params: Value,
        ctx: &StepContext,
    ) -> Result<Value, StepError> {
        let future = self.invoke(step, &step.body, params, ctx);
        let result = match step.timeout {
            None => future.await,
            Some(limit) => match tokio::time::timeout(limit, future).await {
                Ok(result) => result,
                Err(_) => {
                    // The attempt's commands got SIGTERM: let them finish (or be killed at
                    // the end of the grace period) before a retry, `undo` or `finally` runs.
                    crate::children::settle().await;
                    Err(StepError::failed(format!(
                        "timed out after {}",
                        crate::duration::format_duration(limit)
                    )))
                }
            },
        };
        result.map_err(|error| match error {
            StepError::NeedsApproval(message) => {
                StepError::NeedsApproval(self.answer_hint(step, message))
            }
            other => other,
        })
    }

    /// Adds to "needs an answer" which `-p` would give one, when the step's `with` reads params.
    pub(crate) fn answer_hint(&self, step: &Step, message: String) -> String {
        let params: Vec<String> = step
            .body
            .with
            .references()
            .filter(|r| r.root() == "params")
            .filter_map(|r| r.path.get(1).cloned())
            .collect();
        match params.first() {
            Some(name) if !message.contains("--approve") => {
                format!("{message}: pass `-p {name}=VALUE`")
            }
            _ if !message.contains("--approve") => {
                format!("{message}: give it a `default`, or run it on a terminal")
            }
            _ => message,
        }
    }

    /// Renders a body's `with` — of a step, an `undo`, a `finally` step or a `for_each`
    /// element: every path goes through here — and registers the secrets it carries: the values
    /// of fields marked secret (`password`, at any depth), and a password inside any URL
    /// (`redis://:pw@host`).
    pub(crate) fn render_with(
        &self,
        body: &Body,
        evaluator: &Evaluator,
    ) -> Result<Value, RenderError> {
        let params = evaluator.render(&body.with)?;
        crate::secrets::learn_fields(
            &params,
            &body.step_type.meta().secret_fields,
            &self.emitter.masker,
        );
        Ok(params)
    }

    /// Runs a body (of `step`: its own, or its `undo`) with rendered params; outputs its type
    /// marks secret, and those the playbook declares secret on the step, are masked from
    /// here on.
    pub(crate) async fn invoke(
        &self,
        step: &Step,
        body: &Body,
        params: Value,
        ctx: &StepContext,
    ) -> Result<Value, StepError> {
        let outputs = body.step_type.apply_json(params, ctx).await?;
        for name in &body.step_type.meta().sensitive_outputs {
            if let Some(value) = outputs.get(name) {
                self.emitter.masker.add(value);
            }
        }
        step.secret_outputs.learn(&outputs, &self.emitter.masker);
        Ok(outputs)
    }
}
