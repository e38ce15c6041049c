//! What a step type gets from the engine while it plans or runs.

use crate::event::{Emitter, Event, Mode, timestamp_now};
use crate::kinds::StepError;
use crate::prompt::Prompter;
use crate::resources::{Resource, Resources};
use std::path::PathBuf;
use std::sync::Arc;

/// The `stream` of a step's progress lines (see [`PlanContext::progress`]).
pub const PROGRESS_STREAM: &str = "progress";

/// Evaluates an expression of the playbook in the run's context (params, steps, env, run),
/// with extra names: what a step needs for its deferred fields (`where` per key).
pub trait Evaluate: Send + Sync {
    fn evaluate(
        &self,
        expression: &str,
        names: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, String>;

    /// Compiles `expression` once and judges each row with it (Jinja truthiness): a row is an
    /// object of the extra names (`key`, `value`, …) of one item. For steps that judge many
    /// items, the keys of a SCAN walk: no parse per item, no JSON round trip of the values.
    /// A row that fails to evaluate stops the judging: `Err((its index, why))`; an expression
    /// that does not compile is `Err((0, why))`.
    fn judge(
        &self,
        expression: &str,
        rows: &[minijinja::Value],
    ) -> Result<Vec<bool>, (usize, String)>;

    /// The names `expression` reads that it does not define itself (`value`, `params`, …):
    /// so a step fetches only what its condition looks at.
    fn names_read(&self, expression: &str) -> Result<std::collections::BTreeSet<String>, String>;
}

/// Handed to `describe` and `effect_for`: enough to look (read-only) at what a step would
/// change. `StepContext` derefs to it, so `apply` has all of it too.
pub struct PlanContext {
    pub step_id: String,
    pub playbook_dir: PathBuf,
    pub evaluator: Arc<dyn Evaluate>,
    pub emitter: Arc<Emitter>,
    /// `flow plan --offline`: describe without reaching any server.
    pub offline: bool,
    /// What the run holds for its steps (connections, caches), closed when it ends.
    pub resources: Arc<Resources>,
}

impl PlanContext {
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        resolve(path)
    }

    /// The run's resource `T` (its connections of one kind, say), created on first use and
    /// closed when the run ends.
    pub fn resource<T: Resource>(&self) -> Arc<T> {
        self.resources.get::<T>()
    }

    /// Evaluates a deferred expression (a field marked `x-flow-deferred`, like
    /// `redis.delete.where`) with the names the step provides.
    pub fn evaluate(
        &self,
        expression: &str,
        names: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        self.evaluator.evaluate(expression, names)
    }

    /// Judges many rows with one compiled expression (see [`Evaluate::judge`]).
    pub fn judge(
        &self,
        expression: &str,
        rows: &[minijinja::Value],
    ) -> Result<Vec<bool>, (usize, String)> {
        self.evaluator.judge(expression, rows)
    }

    /// The names an expression reads (see [`Evaluate::names_read`]).
    pub fn names_read(
        &self,
        expression: &str,
    ) -> Result<std::collections::BTreeSet<String>, String> {
        self.evaluator.names_read(expression)
    }

    /// Says how far a long piece of work got (`scanned 120 000 keys, 2 300 match`): the live
    /// view shows it beside the step's spinner, `-v` and `--output json` print it; the journal
    /// leaves it out. Call it at most about once a second.
    pub fn progress(&self, line: &str) {
        self.emitter.emit(Event::StepOutput {
            step: self.step_id.clone(),
            element: None,
            stream: PROGRESS_STREAM.to_string(),
            line: line.to_string(),
        });
    }

    /// Registers a value found at run time as a secret: masked in everything flow prints.
    pub fn add_secret(&self, value: &serde_json::Value) {
        self.emitter.masker.add(value);
    }

    /// Whether this step's lines of `stream` (`stdout`, `stderr`) are shown: not when they
    /// make up an output the playbook declared secret. Leave them out of messages then too
    /// (the tail of stderr in a failure).
    pub fn shows_stream(&self, stream: &str) -> bool {
        self.emitter.shows(&self.step_id, stream)
    }
}

/// Paths in step params are relative to the working directory flow runs in, like the paths
/// operators type in a shell; `read_file()` in templates is relative to the playbook.
fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}

/// Who may approve what: `--yes` approves everything, `--approve STEP` one step.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    pub yes: bool,
    pub approve: Vec<String>,
}

/// The operator, as the steps of one run see them. Questions are asked one at a time.
pub struct Interaction {
    prompter: Box<dyn Prompter>,
    approvals: Approvals,
    lock: tokio::sync::Mutex<()>,
}

impl Interaction {
    pub fn new(prompter: Box<dyn Prompter>, approvals: Approvals) -> Self {
        Self {
            prompter,
            approvals,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn is_interactive(&self) -> bool {
        self.prompter.is_interactive()
    }
}

/// Handed to `apply`: the plan context (derefs to it) plus what running needs.
pub struct StepContext {
    pub plan: PlanContext,
    pub run_id: String,
    /// The element index of a `for_each` step.
    pub element: Option<usize>,
    /// Stable across retries and resumes of this step (and element): for APIs that take an
    /// idempotency token.
    pub idempotency_token: String,
    /// The run's folder (`None` in a plan): see `derived_bytes`.
    pub run_dir: Option<PathBuf>,
    pub mode: Mode,
    pub interaction: Arc<Interaction>,
}

impl std::ops::Deref for StepContext {
    type Target = PlanContext;

    fn deref(&self) -> &PlanContext {
        &self.plan
    }
}

impl StepContext {
    /// Emits a line of the step's output (masked like everything else).
    pub fn output(&self, stream: &str, line: &str) {
        self.emitter.emit(Event::StepOutput {
            step: self.step_id.clone(),
            element: self.element,
            stream: stream.to_string(),
            line: line.to_string(),
        });
    }

    /// Emits a table (its first row the header) as lines of the step's output, as the
    /// listing step types show what they found.
    pub fn table(&self, rows: &[Vec<String>]) {
        for line in crate::table::render_rows(rows, true).lines() {
            self.output("log", line);
        }
    }

    /// As [`PlanContext::progress`], for this element of a `for_each` step.
    pub fn progress(&self, line: &str) {
        self.emitter.emit(Event::StepOutput {
            step: self.step_id.clone(),
            element: self.element,
            stream: PROGRESS_STREAM.to_string(),
            line: line.to_string(),
        });
    }

    /// Reports a warning about this step (an `assert` with `severity: warning`, say).
    pub fn warn(&self, message: &str) {
        self.emitter.emit(Event::Warning {
            step: Some(self.step_id.clone()),
            message: message.to_string(),
        });
    }

    /// Bytes derived from the run's key (made with the run's folder) for `purpose` and this step and
    /// element: the same ones again when the run is resumed, without the journal holding
    /// anything they make (see `run_key`). For values that must not change on a resume, like
    /// a generated password.
    pub fn derived_bytes(&self, purpose: &str) -> Result<crate::run_key::DerivedBytes, StepError> {
        let Some(dir) = &self.run_dir else {
            return Err(StepError::failed(
                "this run has no folder to keep its key in (values are derived at apply)",
            ));
        };
        let key = crate::run_key::RunKey::load(dir, false).map_err(StepError::Failed)?;
        let element = self.element.map(|e| e.to_string()).unwrap_or_default();
        Ok(key.stream(&format!("{}\0{element}\0{purpose}", self.step_id)))
    }

    /// Asks for approval: `--yes` or `--approve STEP` answer without asking; otherwise the
    /// terminal is asked, and without one the step needs a flag (exit 3) — its error then
    /// carries the question and the table, which nobody was shown. Returns how it was given:
    /// `terminal`, `--yes` or `--approve`.
    pub async fn approve(
        &self,
        message: &str,
        table: Option<String>,
    ) -> Result<&'static str, StepError> {
        let approvals = &self.interaction.approvals;
        let how = if approvals.yes {
            Some("--yes")
        } else if approvals.approve.iter().any(|s| s == &self.step_id) {
            Some("--approve")
        } else {
            None
        };
        if let Some(how) = how {
            self.record_approval(true, how);
            return Ok(how);
        }
        if !self.interaction.is_interactive() {
            let mut error = format!(
                "step `{id}` needs approval and there is no terminal to ask: pass `--approve {id}` (or `--yes` to approve every step)\nThe question: {message}",
                id = self.step_id
            );
            if let Some(table) = &table {
                error.push('\n');
                error.push_str(table.trim_end());
            }
            return Err(StepError::NeedsApproval(error));
        }
        let _turn = self.interaction.lock.lock().await;
        let _prompt = PromptGuard::new(self);
        let interaction = Arc::clone(&self.interaction);
        let message = self.emitter.masker.mask(message);
        let table = table.map(|t| self.emitter.masker.mask(&t));
        let answer = tokio::task::spawn_blocking(move || {
            interaction.prompter.confirm(&message, table.as_deref())
        })
        .await
        .map_err(|e| StepError::failed(format!("prompt failed: {e}")))?
        .map_err(prompt_error)?;
        self.record_approval(answer, "terminal");
        if answer {
            Ok("terminal")
        } else {
            Err(StepError::Declined(format!(
                "step `{}` was declined",
                self.step_id
            )))
        }
    }

    /// Asks the operator to pick one option; without a terminal the default is taken.
    pub async fn choose(
        &self,
        prompt: &str,
        options: &[String],
        default: Option<usize>,
    ) -> Result<usize, StepError> {
        if !self.interaction.is_interactive() {
            return default.ok_or_else(|| {
                StepError::NeedsApproval(format!(
                    "step `{}` asks \"{prompt}\", has no default and there is no terminal to answer",
                    self.step_id
                ))
            });
        }
        let _turn = self.interaction.lock.lock().await;
        let _prompt = PromptGuard::new(self);
        let interaction = Arc::clone(&self.interaction);
        let prompt = self.emitter.masker.mask(prompt);
        let options: Vec<String> = options
            .iter()
            .map(|o| self.emitter.masker.mask(o))
            .collect();
        tokio::task::spawn_blocking(move || interaction.prompter.choose(&prompt, &options, default))
            .await
            .map_err(|e| StepError::failed(format!("prompt failed: {e}")))?
            .map_err(prompt_error)
    }

    fn record_approval(&self, approved: bool, how: &str) {
        self.emitter.emit(Event::Approval {
            step: self.step_id.clone(),
            approved,
            how: how.to_string(),
            user: current_user(),
            host: current_host(),
            at: timestamp_now(),
        });
    }
}

pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| user_from_passwd().unwrap_or_else(|| "unknown".into()))
}

/// The login name of this process's uid, from /etc/passwd (USER is unset under cron and CI).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_string())
    })
}

pub fn current_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Announces a question on the terminal, and its end when dropped (also when the step is
/// cancelled while the question is open), so a live view can step aside meanwhile.
struct PromptGuard<'a> {
    ctx: &'a StepContext,
}

impl<'a> PromptGuard<'a> {
    fn new(ctx: &'a StepContext) -> Self {
        ctx.emitter.emit(Event::PromptStarted {
            step: ctx.step_id.clone(),
        });
        Self { ctx }
    }
}

impl Drop for PromptGuard<'_> {
    fn drop(&mut self) {
        self.ctx.emitter.emit(Event::PromptFinished {
            step: self.ctx.step_id.clone(),
        });
    }
}

/// A prompt that could not be answered. Ctrl-C at a prompt arrives as input (the terminal is in
/// raw mode), not as a signal: it is turned into one, so the run stops the way Ctrl-C stops
/// it anywhere else (undo, finally, exit 130).
fn prompt_error(error: std::io::Error) -> StepError {
    if error.kind() == std::io::ErrorKind::Interrupted {
        // The prompt hid the cursor and never got to show it again.
        eprint!("\x1b[?25h");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT);
        return StepError::Declined("interrupted at the prompt".into());
    }
    StepError::failed(format!("could not ask on the terminal: {error}"))
}
