//! The event stream of a run: everything flow shows, streams as JSON or records is one of
//! these, in order.

use crate::secret_outputs::HiddenLines;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Plan,
    Apply,
}

/// The status of a finished step, as `steps.<id>.status` exposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    Skipped,
    Declined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Declined => "declined",
        }
    }
}

/// How a run ended; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Not finished yet — or never: a run whose journal still says so was killed.
    Running,
    Succeeded,
    Failed,
    Declined,
    NeedsApproval,
    Interrupted,
    /// A step failed, was declined or the run was interrupted, and an `undo` that should have
    /// reversed a completed step failed (or could not run): that step is still applied.
    RollbackIncomplete,
}

impl RunStatus {
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Succeeded => 0,
            RunStatus::Failed | RunStatus::Running => 1,
            RunStatus::Declined | RunStatus::NeedsApproval => 3,
            RunStatus::Interrupted => 130,
            RunStatus::RollbackIncomplete => 4,
        }
    }

    /// For people: `needs approval`, `failed — rollback incomplete`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::NeedsApproval => "needs approval",
            RunStatus::RollbackIncomplete => "failed — rollback incomplete",
            other => other.key(),
        }
    }

    /// As events and `run.json` spell it: `needs_approval`.
    pub fn key(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Declined => "declined",
            RunStatus::NeedsApproval => "needs_approval",
            RunStatus::Interrupted => "interrupted",
            RunStatus::RollbackIncomplete => "rollback_incomplete",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        playbook: String,
        name: String,
        mode: Mode,
        at: String,
        /// Set when this is `flow apply --resume` of the run: which resume, by whom, and the
        /// steps kept from before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumed: Option<Resumed>,
    },
    /// One line of a plan.
    PlanStep(crate::kinds::PlanLine),
    StepStarted {
        step: String,
        /// The step's `name:`, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(rename = "type")]
        type_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<usize>,
        attempt: u32,
        at: String,
    },
    /// A line a step printed (a command's stdout or stderr) or logged.
    StepOutput {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<usize>,
        stream: String,
        line: String,
    },
    StepRetrying {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<usize>,
        attempt: u32,
        error: String,
        delay_ms: u64,
    },
    StepFinished {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<usize>,
        status: Status,
        duration_ms: u64,
        /// How many attempts ran (0 for a step that never started).
        #[serde(default)]
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// A failure that `continue_on_error` let through.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        continued: bool,
        /// A resume kept this step (or element) from an earlier attempt of the run: it did not
        /// run again, and `outputs` are the recorded ones.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        kept: bool,
        /// The outputs held a secret, so the journal keeps them masked: a resume does not
        /// feed these `***` to a later step.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        outputs_masked: bool,
        /// A `for_each` element's item, so a resume can tell that it is the same element.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<Value>,
    },
    /// A question is on the terminal: live views step aside until `PromptFinished`.
    PromptStarted {
        step: String,
    },
    PromptFinished {
        step: String,
    },
    Approval {
        step: String,
        approved: bool,
        how: String,
        user: String,
        host: String,
        at: String,
    },
    Warning {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        message: String,
    },
    /// The order a plan's `undo` bodies would run in if a step failed: the steps with an
    /// `undo`, last completed first (in plan order: the order they complete when they run one
    /// after the other).
    PlanRollback {
        steps: Vec<String>,
    },
    RunFinished {
        status: RunStatus,
        exit_code: i32,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Each `undo` that failed (or could not run): the step it should have reversed is
        /// still applied. Set with status `rollback_incomplete`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed_undos: Vec<FailedUndo>,
    },
}

/// An `undo` that failed: what it should have reversed, and why it did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedUndo {
    /// The step it belongs to (still applied).
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    /// The step's type: what is still applied.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The undo's type.
    pub undo_type: String,
    pub error: String,
}

impl FailedUndo {
    /// `` `rotate_secret` (secrets.put) is still applied: its undo (secrets.put) failed: … ``
    pub fn sentence(&self, label: &str) -> String {
        let element = self.element.map(|e| format!("[{e}]")).unwrap_or_default();
        format!(
            "`{label}{element}` ({}) is still applied: its undo ({}) failed: {}",
            self.type_name, self.undo_type, self.error
        )
    }
}

/// What the `run_started` of `flow apply --resume` adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    /// 1 for the first resume of the run, 2 for the next…
    pub number: u32,
    pub user: String,
    pub host: String,
    /// Steps that succeeded (or were skipped by their `when`) before and do not run again.
    pub kept: Vec<String>,
    /// Steps whose `undo` failed before: the resume runs those undos again first (with their
    /// own tokens), and goes on only if they all succeed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo_first: Vec<String>,
}

/// Receives the events of a run, already masked. The terminal view, the JSON stream and
/// (next) the journal are reporters.
pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event);
}

/// Sends each event, masked, to every reporter in order.
pub struct Emitter {
    pub masker: std::sync::Arc<crate::secrets::Masker>,
    reporters: Vec<Box<dyn Reporter>>,
    /// The lines each step does not show (its declared secret outputs are made of them).
    hidden: std::sync::RwLock<std::collections::HashMap<String, HiddenLines>>,
    /// The (step, element, stream) whose first hidden line was replaced by a note.
    noted: std::sync::Mutex<std::collections::HashSet<(String, Option<usize>, String)>>,
}

impl Emitter {
    pub fn new(
        masker: std::sync::Arc<crate::secrets::Masker>,
        reporters: Vec<Box<dyn Reporter>>,
    ) -> Self {
        Self {
            masker,
            reporters,
            hidden: Default::default(),
            noted: Default::default(),
        }
    }

    /// From now on, the lines `lines` of step `step` are not shown: the first of each
    /// stream becomes a note saying so, the others are dropped.
    pub fn hide_lines(&self, step: &str, lines: HiddenLines) {
        self.hidden
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(step.to_string(), lines);
    }

    /// Whether the lines of `stream` of step `step` are shown.
    pub fn shows(&self, step: &str, stream: &str) -> bool {
        let hidden = self.hidden.read().unwrap_or_else(|e| e.into_inner());
        hidden.is_empty() || !hidden.get(step).is_some_and(|h| h.hides(stream))
    }

    pub fn emit(&self, event: Event) {
        let event = match event {
            Event::StepOutput {
                step,
                element,
                stream,
                ..
            } if !self.shows(&step, &stream) => {
                let first = self
                    .noted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((step.clone(), element, stream.clone()));
                if !first {
                    return;
                }
                Event::StepOutput {
                    step,
                    element,
                    line: crate::secret_outputs::hidden_note(&stream),
                    stream,
                }
            }
            event => event,
        };
        let event = if self.masker.is_empty() {
            event
        } else {
            event.masked(&self.masker)
        };
        for reporter in &self.reporters {
            reporter.event(&event);
        }
    }
}

impl Event {
    /// The event with every value that can hold a secret masked: text, details, errors,
    /// outputs. What gives the event its shape — its kind, statuses, modes, step ids, step
    /// types, streams, counts — stays as it is, so masking never fails and never needs a
    /// fallback: `-p pin=status` masks the word `status` in what steps print, not the field
    /// of that name.
    pub fn masked(&self, masker: &crate::secrets::Masker) -> Event {
        let text = |s: &String| masker.mask(s);
        let opt = |s: &Option<String>| s.as_ref().map(|s| masker.mask(s));
        let value = |v: &Option<Value>| v.as_ref().map(|v| masker.mask_outputs(v));
        match self {
            Event::RunStarted {
                run_id,
                playbook,
                name,
                mode,
                at,
                resumed,
            } => Event::RunStarted {
                run_id: run_id.clone(),
                playbook: text(playbook),
                name: text(name),
                mode: *mode,
                at: at.clone(),
                resumed: resumed.clone(),
            },
            Event::PlanStep(line) => Event::PlanStep(line.masked(masker)),
            Event::StepStarted {
                step,
                name,
                type_name,
                element,
                attempt,
                at,
            } => Event::StepStarted {
                step: step.clone(),
                name: opt(name),
                type_name: type_name.clone(),
                element: *element,
                attempt: *attempt,
                at: at.clone(),
            },
            Event::StepOutput {
                step,
                element,
                stream,
                line,
            } => Event::StepOutput {
                step: step.clone(),
                element: *element,
                stream: stream.clone(),
                line: text(line),
            },
            Event::StepRetrying {
                step,
                element,
                attempt,
                error,
                delay_ms,
            } => Event::StepRetrying {
                step: step.clone(),
                element: *element,
                attempt: *attempt,
                error: text(error),
                delay_ms: *delay_ms,
            },
            Event::StepFinished {
                step,
                element,
                status,
                duration_ms,
                attempts,
                outputs,
                error,
                reason,
                continued,
                kept,
                outputs_masked,
                item,
            } => {
                let masked = value(outputs);
                Event::StepFinished {
                    step: step.clone(),
                    element: *element,
                    status: *status,
                    duration_ms: *duration_ms,
                    attempts: *attempts,
                    outputs_masked: *outputs_masked || masked != *outputs,
                    outputs: masked,
                    error: opt(error),
                    reason: opt(reason),
                    continued: *continued,
                    kept: *kept,
                    item: item.as_ref().map(|i| masker.mask_json(i)),
                }
            }
            Event::PromptStarted { step } => Event::PromptStarted { step: step.clone() },
            Event::PromptFinished { step } => Event::PromptFinished { step: step.clone() },
            Event::Approval {
                step,
                approved,
                how,
                user,
                host,
                at,
            } => Event::Approval {
                step: step.clone(),
                approved: *approved,
                how: how.clone(),
                user: user.clone(),
                host: host.clone(),
                at: at.clone(),
            },
            Event::Warning { step, message } => Event::Warning {
                step: step.clone(),
                message: text(message),
            },
            Event::PlanRollback { steps } => Event::PlanRollback {
                steps: steps.clone(),
            },
            Event::RunFinished {
                status,
                exit_code,
                duration_ms,
                outputs,
                error,
                failed_undos,
            } => Event::RunFinished {
                status: *status,
                exit_code: *exit_code,
                duration_ms: *duration_ms,
                outputs: value(outputs),
                error: opt(error),
                failed_undos: failed_undos
                    .iter()
                    .map(|f| FailedUndo {
                        error: masker.mask(&f.error),
                        ..f.clone()
                    })
                    .collect(),
            },
        }
    }
}

impl crate::kinds::PlanLine {
    /// The line with every text that can hold a secret masked (its step, type and action
    /// keep their shape).
    pub fn masked(&self, masker: &crate::secrets::Masker) -> Self {
        Self {
            step: self.step.clone(),
            name: self.name.as_ref().map(|n| masker.mask(n)),
            type_name: self.type_name.clone(),
            finally: self.finally,
            action: self.action,
            summary: masker.mask(&self.summary),
            details: self.details.iter().map(|d| masker.mask(d)).collect(),
            condition: self.condition.as_ref().map(|c| masker.mask(c)),
            reason: self.reason.as_ref().map(|r| masker.mask(r)),
            undo: self.undo.as_ref().map(|u| crate::kinds::UndoPlan {
                type_name: u.type_name.clone(),
                action: u.action,
                summary: masker.mask(&u.summary),
                details: u.details.iter().map(|d| masker.mask(d)).collect(),
            }),
        }
    }
}

/// UTC with exactly three fraction digits, so that timestamps sort as text.
pub fn timestamp_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
