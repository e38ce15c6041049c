//! Applying a checked playbook: the scheduler that starts steps as their dependencies finish,
//! bounded by `--concurrency`; retries, timeouts, `for_each`, approvals; then `undo` and
//! `finally`. Everything it does is reported as events.

use crate::analyze::Checked;
use crate::context::{Interaction, StepContext};
use crate::evaluate::{Evaluator, RenderError};
use crate::event::{Emitter, Event, Mode, RunStatus, Status, timestamp_now};
use crate::param::ResolvedParams;
use crate::playbook::{Body, Step};
use crate::step_table::StepTable;
use crate::step_type::StepError;
use crate::template::{Reference, Tmpl};
use crate::template_env::{TemplateSettings, build_environment};
use minijinja::Environment;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub run_id: String,
    pub mode: Mode,
    /// How many steps may run at once.
    pub concurrency: usize,
    /// Plan only: do not run read steps.
    pub offline: bool,
}

/// How a run ended, for the summary and the exit code.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub outputs: Value,
    pub error: Option<String>,
}

/// What one step (or element, or undo) came to.
#[derive(Debug, Clone)]
pub(crate) struct StepOutcome {
    pub status: Status,
    pub attempts: u32,
    pub outputs: Value,
    pub error: Option<StepError>,
    pub reason: Option<String>,
}

impl StepOutcome {
    fn succeeded(outputs: Value, attempts: u32) -> Self {
        Self {
            status: Status::Succeeded,
            attempts,
            outputs,
            error: None,
            reason: None,
        }
    }

    fn skipped(reason: String) -> Self {
        Self {
            status: Status::Skipped,
            attempts: 0,
            outputs: json!({}),
            error: None,
            reason: Some(reason),
        }
    }

    fn from_error(error: StepError) -> Self {
        let status = match error {
            StepError::Declined(_) | StepError::NeedsApproval(_) => Status::Declined,
            StepError::Failed(_) => Status::Failed,
        };
        Self {
            status,
            attempts: 0,
            outputs: json!({}),
            error: Some(error),
            reason: None,
        }
    }
}

/// Everything shared by the steps of one run.
pub struct Runner {
    pub checked: Arc<Checked>,
    pub params: ResolvedParams,
    pub settings: RunSettings,
    pub emitter: Arc<Emitter>,
    pub interaction: Arc<Interaction>,
    pub(crate) env: Environment<'static>,
    pub(crate) table: Arc<StepTable>,
    base: minijinja::Value,
    started: Instant,
    /// Becomes true on Ctrl-C (SIGINT) or SIGTERM.
    pub(crate) interrupt: tokio::sync::watch::Receiver<bool>,
    /// Connections and caches the steps of this run share; closed when it ends.
    pub(crate) resources: Arc<crate::resources::Resources>,
}

/// Why no further steps start.
enum Halt {
    /// A step failed, was declined, or needs an approval nobody can give.
    Step(usize, StepError),
    Interrupted,
}

fn never_unknown(_: &Reference) -> bool {
    false
}

impl Runner {
    pub fn new(
        checked: Arc<Checked>,
        params: ResolvedParams,
        settings: RunSettings,
        emitter: Arc<Emitter>,
        interaction: Arc<Interaction>,
        interrupt: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Self> {
        learn_param_secrets(&params, &emitter.masker);
        let now = jiff::Timestamp::now();
        let env = build_environment(TemplateSettings {
            now,
            playbook_dir: checked.playbook.dir.clone(),
        });
        let table = Arc::new(StepTable::default());
        let process_env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let mode = match settings.mode {
            Mode::Plan => "plan",
            Mode::Apply => "apply",
        };
        let base = minijinja::context! {
            params => crate::evaluate::to_jinja(&params.values),
            steps => minijinja::Value::from_dyn_object(Arc::clone(&table)),
            env => crate::evaluate::to_jinja(&process_env),
            run => minijinja::context! {
                id => settings.run_id.clone(),
                mode => mode,
                started_at => now.to_string(),
                playbook_dir => checked.playbook.dir.display().to_string(),
            },
        };
        Arc::new(Self {
            checked,
            params,
            settings,
            emitter,
            interaction,
            env,
            table,
            base,
            started: Instant::now(),
            interrupt,
            resources: Arc::default(),
        })
    }

    /// Resolves when the run is interrupted (never, if it is not).
    pub(crate) async fn interrupted(&self) {
        let mut interrupt = self.interrupt.clone();
        if interrupt.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub(crate) fn evaluator<'a>(
        &'a self,
        scope: &Scope,
        is_unknown: &'a (dyn Fn(&Reference) -> bool + Sync),
    ) -> Evaluator<'a> {
        let mut extra: std::collections::BTreeMap<String, minijinja::Value> = Default::default();
        if let Some((item, index)) = &scope.item {
            extra.insert("item".into(), crate::evaluate::to_jinja(item));
            extra.insert("item_index".into(), minijinja::Value::from(*index));
        }
        if let Some(result) = &scope.result {
            extra.insert("result".into(), crate::evaluate::to_jinja(result));
        }
        let context = if extra.is_empty() {
            self.base.clone()
        } else {
            minijinja::value::merge_maps([self.base.clone(), minijinja::Value::from_object(extra)])
        };
        Evaluator {
            env: &self.env,
            context,
            is_unknown,
        }
    }

    pub(crate) fn render(&self, tmpl: &Tmpl, scope: &Scope) -> Result<Value, RenderError> {
        self.evaluator(scope, &never_unknown).render(tmpl)
    }

    pub fn step(&self, index: usize) -> &Step {
        &self.checked.playbook.steps[index]
    }

    /// Applies the playbook: main steps by the graph, then `undo` (if the run failed or was
    /// declined), then `finally`.
    pub async fn apply(self: &Arc<Self>) -> RunOutcome {
        let playbook = &self.checked.playbook;
        self.start_run();
        let mut halt: Option<Halt> = None;
        let mut failed = false;
        let mut completed: Vec<(usize, Vec<Element>)> = Vec::new();
        let count = self.checked.main_count();
        let mut remaining: Vec<usize> = self.checked.deps.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<usize> = (0..count).filter(|s| remaining[*s] == 0).collect();
        let mut started = vec![false; count];
        let mut running: JoinSet<(usize, StepOutcome, Vec<Element>)> = JoinSet::new();
        let mut tasks: std::collections::HashMap<tokio::task::Id, (usize, Instant)> =
            Default::default();
        loop {
            while halt.is_none() && running.len() < self.settings.concurrency.max(1) {
                let Some(next) = ready.pop_first() else { break };
                started[next] = true;
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
                for dependent in &self.checked.dependents[index] {
                    remaining[*dependent] -= 1;
                    if remaining[*dependent] == 0 {
                        ready.insert(*dependent);
                    }
                }
            } else if let Some(error) = outcome.error {
                failed |= matches!(error, StepError::Failed(_));
                halt.get_or_insert(Halt::Step(index, error));
            }
        }
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
            };
            for index in self.checked.order.iter().copied().filter(|i| !started[*i]) {
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
            let (outcome, _) = self.run_step(index).await;
            if outcome.status == Status::Failed && !self.step(index).continue_on_error {
                failed = true;
            }
        }
        let status = match &halt {
            Some(Halt::Interrupted) => RunStatus::Interrupted,
            Some(Halt::Step(_, StepError::Declined(_))) => RunStatus::Declined,
            Some(Halt::Step(_, StepError::NeedsApproval(_))) if !failed => RunStatus::NeedsApproval,
            _ if failed => RunStatus::Failed,
            _ => RunStatus::Succeeded,
        };
        let error = halt.map(|h| match h {
            Halt::Step(_, e) => e.message().to_string(),
            Halt::Interrupted => "interrupted".to_string(),
        });
        self.close_resources().await;
        self.finish_run(status, error, &never_unknown)
    }

    /// Emits the start of the run, in the runner's mode.
    pub(crate) fn start_run(&self) {
        let playbook = &self.checked.playbook;
        self.emitter.emit(Event::RunStarted {
            run_id: self.settings.run_id.clone(),
            playbook: playbook.file.display_path(),
            name: playbook.name.clone(),
            mode: self.settings.mode,
            at: timestamp_now(),
        });
    }

    /// Renders the playbook's `outputs` and emits the end of the run.
    pub(crate) fn finish_run(
        &self,
        status: RunStatus,
        error: Option<String>,
        is_unknown: &(dyn Fn(&Reference) -> bool + Sync),
    ) -> RunOutcome {
        let mut outputs = serde_json::Map::new();
        for (name, _, tmpl) in &self.checked.playbook.outputs {
            let value = match self.evaluator(&Scope::default(), is_unknown).render(tmpl) {
                Ok(v) => v,
                Err(e) => {
                    self.emitter.emit(Event::Warning {
                        step: None,
                        message: format!("output `{name}`: {e}"),
                    });
                    Value::Null
                }
            };
            outputs.insert(name.clone(), crate::evaluate::unknowns_as_text(&value));
        }
        let outputs = Value::Object(outputs);
        self.emitter.emit(Event::RunFinished {
            status,
            exit_code: status.exit_code(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            outputs: (!self.checked.playbook.outputs.is_empty()).then(|| outputs.clone()),
            error: error.clone(),
        });
        RunOutcome {
            status,
            outputs,
            error,
        }
    }

    /// Runs one step: `when`, then once or per `for_each` element. Returns its outcome and,
    /// for `undo`, the elements that succeeded with their outputs.
    pub(crate) async fn run_step(self: &Arc<Self>, index: usize) -> (StepOutcome, Vec<Element>) {
        let step = self.step(index);
        let began = Instant::now();
        if let Some(when) = &step.when {
            match self
                .render(&when.expr, &Scope::default())
                .map(|v| crate::evaluate::to_jinja(&v).is_true())
            {
                Ok(true) => {}
                Ok(false) => {
                    let outcome = StepOutcome::skipped(format!("when: {}", when.text));
                    self.finish(index, None, &outcome, began);
                    return (outcome, Vec::new());
                }
                Err(e) => {
                    let outcome =
                        StepOutcome::from_error(StepError::failed(format!("`when`: {e}")));
                    self.finish(index, None, &outcome, began);
                    return (outcome, Vec::new());
                }
            }
        }
        let Some(for_each) = &step.for_each else {
            self.started(index, None, 1);
            let outcome = self.attempts(index, &Scope::default()).await;
            self.finish(index, None, &outcome, began);
            let done = if outcome.status == Status::Succeeded {
                vec![None]
            } else {
                Vec::new()
            };
            return (outcome, done);
        };
        let items = match self.render(for_each, &Scope::default()) {
            Ok(Value::Array(items)) => items,
            Ok(other) => {
                let outcome = StepOutcome::from_error(StepError::failed(format!(
                    "`for_each` must give a list, got {}",
                    crate::evaluate::display_value(&other)
                )));
                self.finish(index, None, &outcome, began);
                return (outcome, Vec::new());
            }
            Err(e) => {
                let outcome =
                    StepOutcome::from_error(StepError::failed(format!("`for_each`: {e}")));
                self.finish(index, None, &outcome, began);
                return (outcome, Vec::new());
            }
        };
        self.started(index, None, 1);
        let (outcome, done) = self.run_elements(index, items).await;
        self.finish(index, None, &outcome, began);
        (outcome, done)
    }

    /// Runs the elements of a `for_each` step, at most `concurrency` at once. After a failure
    /// no new element starts (unless `continue_on_error`); those are reported skipped. Every
    /// result keeps its `item` and `status`, in element order.
    async fn run_elements(
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
        loop {
            let may_start = first_error.is_none() || step.continue_on_error;
            while may_start && next < items.len() && running.len() < step.concurrency {
                let runner = Arc::clone(self);
                let scope = Scope {
                    item: Some((items[next].clone(), next)),
                    result: None,
                };
                let element = next;
                running.spawn(async move {
                    let began = Instant::now();
                    runner.started(index, Some(element), 1);
                    let outcome = runner.attempts(index, &scope).await;
                    runner.finish(index, Some(element), &outcome, began);
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
        let reason = format!("not run: an earlier element of step `{}` failed", step.id);
        for (element, item) in items.iter().enumerate().skip(next) {
            self.finish(
                index,
                Some(element),
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

    /// Renders `with`, asks `confirm:`, then runs the attempts with `retry` and `timeout`.
    async fn attempts(self: &Arc<Self>, index: usize, scope: &Scope) -> StepOutcome {
        let step = self.step(index);
        let ctx = self.step_context(step, scope);
        let params = match self.render_with(&step.body, &self.evaluator(scope, &never_unknown)) {
            Ok(p) => p,
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

    async fn attempt(
        &self,
        step: &Step,
        params: Value,
        ctx: &StepContext,
    ) -> Result<Value, StepError> {
        let future = self.invoke(&step.body, params, ctx);
        let result = match step.timeout {
            None => future.await,
            Some(limit) => tokio::time::timeout(limit, future)
                .await
                .unwrap_or_else(|_| {
                    Err(StepError::failed(format!(
                        "timed out after {}",
                        crate::duration::format_duration(limit)
                    )))
                }),
        };
        result.map_err(|error| match error {
            StepError::NeedsApproval(message) => {
                StepError::NeedsApproval(self.answer_hint(step, message))
            }
            other => other,
        })
    }

    /// Adds to "needs an answer" which `-p` would give one, when the step's `with` reads params.
    fn answer_hint(&self, step: &Step, message: String) -> String {
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
        learn_secrets(
            &params,
            &body.step_type.meta().secret_fields,
            &self.emitter.masker,
        );
        Ok(params)
    }

    /// Runs a body with rendered params; outputs marked secret are masked from here on.
    pub(crate) async fn invoke(
        &self,
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
        Ok(outputs)
    }

    pub(crate) fn plan_context(self: &Arc<Self>, step: &Step) -> crate::context::PlanContext {
        crate::context::PlanContext {
            step_id: step.id.clone(),
            playbook_dir: self.checked.playbook.dir.clone(),
            evaluator: Arc::clone(self) as Arc<dyn crate::context::Evaluate>,
            emitter: Arc::clone(&self.emitter),
            offline: self.settings.offline,
            resources: Arc::clone(&self.resources),
        }
    }

    pub(crate) fn step_context(self: &Arc<Self>, step: &Step, scope: &Scope) -> StepContext {
        let element = scope.item.as_ref().map(|i| i.1);
        StepContext {
            plan: self.plan_context(step),
            run_id: self.settings.run_id.clone(),
            element,
            idempotency_token: idempotency_token(&self.settings.run_id, &step.id, element),
            mode: self.settings.mode,
            interaction: Arc::clone(&self.interaction),
        }
    }

    /// Closes what the run opened (connections), once nothing of it runs any more.
    pub(crate) async fn close_resources(&self) {
        self.resources.close_all().await;
    }

    /// Runs the `undo` of a completed step, once per element that succeeded.
    async fn undo(self: &Arc<Self>, index: usize, elements: &[Element]) {
        let step = self.step(index);
        let Some(undo) = &step.undo else { return };
        for item in elements.iter().rev() {
            let began = Instant::now();
            let scope = Scope {
                item: item.clone(),
                result: None,
            };
            let id = format!("{}.undo", step.id);
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

    async fn run_body(self: &Arc<Self>, step: &Step, body: &Body, scope: &Scope) -> StepOutcome {
        let params = match self.render_with(body, &self.evaluator(scope, &never_unknown)) {
            Ok(p) => p,
            Err(e) => {
                return StepOutcome::from_error(StepError::failed(format!("`undo.with`: {e}")));
            }
        };
        let ctx = self.step_context(step, scope);
        match self.invoke(body, params, &ctx).await {
            Ok(outputs) => StepOutcome::succeeded(outputs, 1),
            Err(e) => StepOutcome::from_error(e),
        }
    }

    fn started(&self, index: usize, element: Option<usize>, attempt: u32) {
        let step = self.step(index);
        self.emitter.emit(Event::StepStarted {
            step: step.id.clone(),
            name: step.name.clone(),
            type_name: step.body.type_name.clone(),
            element,
            attempt,
            at: timestamp_now(),
        });
    }

    /// Records a finished step (or element) in the table templates read, and emits it.
    fn finish(&self, index: usize, element: Option<usize>, outcome: &StepOutcome, began: Instant) {
        let step = self.step(index);
        if element.is_none() {
            let mut entry = match &outcome.outputs {
                Value::Object(map) => map.clone(),
                _ => serde_json::Map::new(),
            };
            entry.insert("status".into(), json!(outcome.status.as_str()));
            // Always present (none unless it failed), so `finally` steps can print it.
            entry.insert(
                "error".into(),
                json!(outcome.error.as_ref().map(StepError::message)),
            );
            if let Some(reason) = &outcome.reason {
                entry.insert("reason".into(), json!(reason));
            }
            self.table.set(&step.id, &Value::Object(entry));
        }
        let continued = outcome.status == Status::Failed && step.continue_on_error;
        self.emitter.emit(finished_event(
            step.id.clone(),
            element,
            outcome,
            began,
            continued,
        ));
    }
}

fn finished_event(
    step: String,
    element: Option<usize>,
    outcome: &StepOutcome,
    began: Instant,
    continued: bool,
) -> Event {
    Event::StepFinished {
        step,
        element,
        status: outcome.status,
        duration_ms: began.elapsed().as_millis() as u64,
        attempts: outcome.attempts,
        outputs: (outcome.status == Status::Succeeded
            && outcome.outputs.as_object().is_some_and(|m| !m.is_empty()))
        .then(|| outcome.outputs.clone()),
        error: outcome.error.as_ref().map(|e| e.message().to_string()),
        reason: outcome.reason.clone(),
        continued,
    }
}

/// A token for APIs that take one: the same for every retry (and resume) of the same step
/// element of the same run.
pub fn idempotency_token(run_id: &str, step: &str, element: Option<usize>) -> String {
    use sha2::Digest as _;
    let source = format!(
        "{run_id}/{step}/{}",
        element.map(|e| e.to_string()).unwrap_or_default()
    );
    let digest = sha2::Sha256::digest(source.as_bytes());
    format!(
        "flow-{}",
        digest
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// A `for_each` element (its item and index) that completed, for `undo`; `None` for a step
/// without `for_each`.
pub(crate) type Element = Option<(Value, usize)>;

/// Extra template names for one render: the `for_each` element and the attempt's `result`.
#[derive(Default, Clone)]
pub(crate) struct Scope {
    pub item: Option<(Value, usize)>,
    pub result: Option<Value>,
}

impl crate::context::Evaluate for Runner {
    fn evaluate(
        &self,
        expression: &str,
        names: &serde_json::Map<String, Value>,
    ) -> Result<Value, String> {
        let extra: std::collections::BTreeMap<String, minijinja::Value> = names
            .iter()
            .map(|(k, v)| (k.clone(), crate::evaluate::to_jinja(v)))
            .collect();
        let context =
            minijinja::value::merge_maps([self.base.clone(), minijinja::Value::from_object(extra)]);
        let text = crate::template::strip_braces(expression);
        let compiled = self
            .env
            .compile_expression(text)
            .map_err(|e| e.to_string())?;
        let value = compiled.eval(context).map_err(|e| match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        })?;
        serde_json::to_value(&value).map_err(|e| e.to_string())
    }
}

/// Registers the values of the fields named `names` (at any depth) and URL passwords.
fn learn_secrets(value: &Value, names: &[String], masker: &crate::secrets::Masker) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if names.contains(key) && value.is_string() {
                    masker.add(value);
                } else {
                    learn_secrets(value, names, masker);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| learn_secrets(v, names, masker)),
        Value::String(text) => {
            if let Some(password) = crate::secrets::url_password(text) {
                masker.add(&Value::String(password.to_string()));
            }
        }
        _ => {}
    }
}

/// Secret params, and passwords written inside URLs in any param, become masked values.
pub fn learn_param_secrets(params: &ResolvedParams, masker: &crate::secrets::Masker) {
    for name in &params.secret {
        if let Some(value) = params.values.get(name) {
            masker.add(value);
        }
    }
    for value in params.values.values() {
        if let Some(password) = value.as_str().and_then(crate::secrets::url_password) {
            masker.add(&Value::String(password.to_string()));
        }
    }
}
