//! The event stream of a run: everything flow shows, streams as JSON or records is one of
//! these, in order.

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
}

impl RunStatus {
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Succeeded => 0,
            RunStatus::Failed | RunStatus::Running => 1,
            RunStatus::Declined | RunStatus::NeedsApproval => 3,
            RunStatus::Interrupted => 130,
        }
    }

    /// For people: `needs approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::NeedsApproval => "needs approval",
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
    RunFinished {
        status: RunStatus,
        exit_code: i32,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
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
}

impl Emitter {
    pub fn new(
        masker: std::sync::Arc<crate::secrets::Masker>,
        reporters: Vec<Box<dyn Reporter>>,
    ) -> Self {
        Self { masker, reporters }
    }

    pub fn emit(&self, event: Event) {
        let event = if self.masker.is_empty() {
            event
        } else {
            let json = serde_json::to_value(&event).unwrap_or(Value::Null);
            serde_json::from_value(self.masker.mask_json(&json)).unwrap_or(event)
        };
        for reporter in &self.reporters {
            reporter.event(&event);
        }
    }
}

/// UTC with exactly three fraction digits, so that timestamps sort as text.
pub fn timestamp_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
