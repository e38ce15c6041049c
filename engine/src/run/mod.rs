//! Applying a checked playbook: the scheduler that starts steps as their dependencies finish,
//! bounded by `--concurrency`; retries, timeouts, `for_each`, approvals; then `undo` and
//! `finally`. Everything it does is reported as events.

mod apply;
mod attempts;
pub mod kept;
pub mod outcome;
pub mod scheduler;
mod step;

use crate::analyze::Checked;
use crate::context::{Interaction, StepContext};
use crate::evaluate::{Evaluator, RenderError};
use crate::event::{Emitter, Event, Mode, RunStatus, Status, timestamp_now};
use crate::param::ResolvedParams;
use crate::playbook::Step;
use crate::step_table::StepTable;
use crate::step_type::StepError;
use crate::template::{Reference, Tmpl};
use crate::template_env::{TemplateSettings, build_environment};
use minijinja::Environment;
use outcome::StepOutcome;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub run_id: String,
    pub mode: Mode,
    /// How many steps may run at once.
    pub concurrency: usize,
    /// Plan only: do not run read steps.
    pub offline: bool,
    /// Plan only: show all a read returned (`-v`), not a brief of it.
    pub whole_reads: bool,
    /// The run's folder in the state dir (an apply's), where its key is kept.
    pub run_dir: Option<std::path::PathBuf>,
}

/// How a run ended, for the summary and the exit code.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub outputs: Value,
    pub error: Option<String>,
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
    /// The run journal's health: once it cannot be written, no further step starts.
    journal: std::sync::OnceLock<Arc<crate::journal::JournalFault>>,
    /// Set for `flow apply --resume`: what earlier attempts of the run completed.
    pub(crate) kept: std::sync::OnceLock<Arc<kept::Kept>>,
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
        let now = jiff::Timestamp::now();
        Self::new_at(
            checked,
            params,
            settings,
            emitter,
            interaction,
            interrupt,
            now,
        )
    }

    /// A runner whose `now()` is `now` (`flow policy` renders at two moments to find what
    /// depends on the clock).
    pub fn new_at(
        checked: Arc<Checked>,
        params: ResolvedParams,
        settings: RunSettings,
        emitter: Arc<Emitter>,
        interaction: Arc<Interaction>,
        interrupt: tokio::sync::watch::Receiver<bool>,
        now: jiff::Timestamp,
    ) -> Arc<Self> {
        learn_param_secrets(&params, &emitter.masker);
        for step in &checked.playbook.steps {
            if let Some(hidden) = step.secret_outputs.hidden_lines(step.body.step_type.meta()) {
                emitter.hide_lines(&step.id, hidden);
            }
        }
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
            journal: std::sync::OnceLock::new(),
            kept: std::sync::OnceLock::new(),
        })
    }

    /// From the moment `fault` is set (the journal could not take an event), no further step,
    /// element, retry, undo or `finally` step starts and the run fails saying why: flow does
    /// nothing it cannot record.
    pub fn halt_when_journal_fails(&self, fault: Arc<crate::journal::JournalFault>) {
        let _ = self.journal.set(fault);
    }

    /// Why the journal cannot be written, once it cannot.
    pub(crate) fn journal_fault(&self) -> Option<String> {
        self.journal
            .get()
            .and_then(|fault| fault.message())
            .map(str::to_string)
    }

    /// Makes this apply a resume: the steps and elements in `kept` do not run again.
    pub fn resume_from(&self, kept: kept::Kept) {
        let _ = self.kept.set(Arc::new(kept));
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
            deferred_params: &self.params.deferred,
            item_unknown: scope
                .item
                .as_ref()
                .is_some_and(|(item, _)| crate::evaluate::find_unknown(item).is_some()),
            masker: Some(&*self.emitter.masker),
        }
    }

    pub(crate) fn render(&self, tmpl: &Tmpl, scope: &Scope) -> Result<Value, RenderError> {
        self.evaluator(scope, &never_unknown).render(tmpl)
    }

    pub(crate) fn when(
        &self,
        when: &crate::playbook::Condition,
        scope: &Scope,
    ) -> Result<crate::evaluate::When, RenderError> {
        self.evaluator(scope, &never_unknown).when(when)
    }

    /// Runs a render on a thread of its own, so that a long template (bounded by its fuel)
    /// neither blocks the runtime — other steps, timeouts, Ctrl-C — nor holds up its step:
    /// a step that times out or is interrupted stops waiting for it, and the thread ends
    /// when the template's fuel does.
    pub(crate) async fn off_thread<T: Send + 'static>(
        self: &Arc<Self>,
        render: impl FnOnce(&Runner) -> T + Send + 'static,
    ) -> T {
        let job = Arc::new(std::sync::Mutex::new(Some(render)));
        let take = |job: &std::sync::Mutex<Option<_>>| {
            job.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let runner = Arc::clone(self);
        let on_thread = Arc::clone(&job);
        let thread = std::thread::Builder::new()
            .name("flow-render".into())
            // As much stack as the thread that validated the template had (a long filter
            // chain recurses once per filter); only what is used is ever committed.
            .stack_size(8 * 1024 * 1024)
            .spawn(move || {
                if let Some(render) = take(&on_thread) {
                    let _ = sender.send(render(&runner));
                }
            });
        match thread {
            Ok(thread) => match receiver.await {
                Ok(value) => value,
                // The render panicked: so does its step, as it would have on this thread.
                Err(_) => match thread.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the render thread ended without an answer"),
                },
            },
            // No thread to be had: render here.
            Err(_) => match take(&job) {
                Some(render) => render(self),
                None => unreachable!("a thread that was not spawned took the render"),
            },
        }
    }

    pub fn step(&self, index: usize) -> &Step {
        &self.checked.playbook.steps[index]
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
            resumed: self.kept.get().map(|k| k.resumed.clone()),
        });
    }

    /// Renders the playbook's `outputs` and emits the end of the run.
    pub(crate) fn finish_run(
        &self,
        status: RunStatus,
        error: Option<String>,
        failed_undos: Vec<crate::event::FailedUndo>,
        is_unknown: &(dyn Fn(&Reference) -> bool + Sync),
    ) -> RunOutcome {
        let mut outputs = serde_json::Map::new();
        for (name, _, tmpl) in &self.checked.playbook.outputs {
            let value = match self.evaluator(&Scope::default(), is_unknown).render(tmpl) {
                Ok(v) => v,
                Err(e) => {
                    // A run that did not finish has outputs whose steps never ran: their
                    // `null` is expected there, and a warning per output would bury the
                    // failure that matters.
                    if status == RunStatus::Succeeded {
                        self.emitter.emit(Event::Warning {
                            step: None,
                            message: format!("output `{name}`: {e}"),
                        });
                    }
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
            failed_undos,
        });
        RunOutcome {
            status,
            outputs,
            error,
        }
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
            idempotency_token: self.token(&step.id, element),
            run_dir: self.settings.run_dir.clone(),
            mode: self.settings.mode,
            interaction: Arc::clone(&self.interaction),
        }
    }

    /// The context of a step's `undo`: it reports as `<step>.undo` (its output lines, and
    /// `FLOW_STEP_ID` for `exec`) and has a token of its own. `earlier`: the undo of what an
    /// earlier attempt of the run made, whose undo failed then (a resume runs it again first).
    pub(crate) fn undo_context(
        self: &Arc<Self>,
        step: &Step,
        scope: &Scope,
        earlier: bool,
    ) -> StepContext {
        let mut ctx = self.step_context(step, scope);
        let mut incarnation = self.incarnation(&step.id, ctx.element);
        if earlier {
            incarnation = incarnation.saturating_sub(1);
        }
        ctx.plan.step_id = undo_id(&step.id);
        ctx.idempotency_token = undo_token(
            &incarnation_run_id(&self.settings.run_id, incarnation),
            &step.id,
            ctx.element,
        );
        ctx
    }

    /// How many times what this step (element) made was reversed before, counting the undo a
    /// resume runs again first: 0 for its first making, 1 after one undo… Each making gets
    /// tokens of its own, as what an earlier one made is gone (an API would answer with it).
    fn incarnation(&self, step: &str, element: Option<usize>) -> u32 {
        let Some(kept) = self.kept.get() else {
            return 0;
        };
        let key = (step.to_string(), element);
        let undone = kept.undos.get(&key).copied().unwrap_or(0);
        let undoes_first = kept
            .failed_undos
            .iter()
            .any(|f| self.step(f.index).id == step && f.element.as_ref().map(|e| e.1) == element);
        undone + u32::from(undoes_first)
    }

    /// The idempotency token of a step (element): the same across retries and resumes, and a
    /// new one only after its `undo` reversed what the earlier one made.
    fn token(&self, step: &str, element: Option<usize>) -> String {
        let incarnation = self.incarnation(step, element);
        idempotency_token(
            &incarnation_run_id(&self.settings.run_id, incarnation),
            step,
            element,
        )
    }

    /// Closes what the run opened (connections), once nothing of it runs any more.
    pub(crate) async fn close_resources(&self) {
        self.resources.close_all().await;
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
            self.table_entry(index, outcome);
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

    /// Puts what a step came to where templates read it (`steps.<id>`).
    fn table_entry(&self, index: usize, outcome: &StepOutcome) {
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
        // Always present too (none unless skipped): a verdict can say why.
        entry.insert("reason".into(), json!(outcome.reason));
        self.table.set(&self.step(index).id, &Value::Object(entry));
    }

    /// Like `finish`, for a `for_each` element: its item goes into the record too, so that a
    /// resume can tell it is the same element.
    fn finish_element(
        &self,
        index: usize,
        element: usize,
        item: &Value,
        outcome: &StepOutcome,
        began: Instant,
    ) {
        let step = self.step(index);
        let continued = outcome.status == Status::Failed && step.continue_on_error;
        let mut event = finished_event(step.id.clone(), Some(element), outcome, began, continued);
        if let Event::StepFinished { item: slot, .. } = &mut event {
            *slot = Some(item.clone());
        }
        self.emitter.emit(event);
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
        kept: outcome.kept,
        outputs_masked: outcome.outputs_masked,
        item: None,
    }
}

/// A token for APIs that take one: the same for every retry (and resume) of the same step
/// element of the same run.
pub fn idempotency_token(run_id: &str, step: &str, element: Option<usize>) -> String {
    token_of(&format!(
        "{run_id}/{step}/{}",
        element.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// The token of a step element's `undo`: its own, never the forward step's — an API that saw
/// the forward call's token with another request (Secrets Manager: the old value put back)
/// refuses it. The same for every retry and resume of that undo.
pub fn undo_token(run_id: &str, step: &str, element: Option<usize>) -> String {
    token_of(&format!(
        "{run_id}/{step}/{}/undo",
        element.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// The run id the tokens of a step's `incarnation` are derived from: the run's own for the
/// first, `RUN~1` after one undo, and so on.
fn incarnation_run_id(run_id: &str, incarnation: u32) -> String {
    match incarnation {
        0 => run_id.to_string(),
        n => format!("{run_id}~{n}"),
    }
}

/// The id an `undo` reports under: `<step>.undo`.
pub fn undo_id(step: &str) -> String {
    format!("{step}.undo")
}

/// `flow-` and 32 hex digits of a sha256: what every AWS API that takes a token accepts.
fn token_of(source: &str) -> String {
    use sha2::Digest as _;
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
        let value = compiled.eval(context).map_err(|e| evaluation_error(&e))?;
        serde_json::to_value(&value).map_err(|e| e.to_string())
    }

    fn judge(
        &self,
        expression: &str,
        rows: &[minijinja::Value],
    ) -> Result<Vec<bool>, (usize, String)> {
        let text = crate::template::strip_braces(expression);
        let compiled = self
            .env
            .compile_expression(text)
            .map_err(|e| (0, e.to_string()))?;
        rows.iter()
            .enumerate()
            .map(|(index, row)| {
                let context = minijinja::value::merge_maps([row.clone(), self.base.clone()]);
                compiled
                    .eval(context)
                    .map(|verdict| verdict.is_true())
                    .map_err(|e| (index, evaluation_error(&e)))
            })
            .collect()
    }

    fn names_read(&self, expression: &str) -> Result<std::collections::BTreeSet<String>, String> {
        let text = crate::template::strip_braces(expression);
        let compiled = self
            .env
            .compile_expression(text)
            .map_err(|e| e.to_string())?;
        Ok(compiled.undeclared_variables(false).into_iter().collect())
    }
}

/// A failed evaluation as one line: its kind and, when MiniJinja has one, the detail.
fn evaluation_error(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// Secret params (and the `default` a playbook writes for one, even when `-p` overrode it),
/// and passwords written inside URLs in any param, become masked values.
pub fn learn_param_secrets(params: &ResolvedParams, masker: &crate::secrets::Masker) {
    for name in &params.secret {
        if let Some(value) = params.values.get(name) {
            masker.add(value);
        }
    }
    params.secret_defaults.iter().for_each(|d| masker.add(d));
    for value in params.values.values() {
        for password in crate::secrets::url_passwords(value) {
            masker.add(&Value::String(password.to_string()));
        }
    }
}
