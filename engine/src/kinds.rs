//! The words a step type and the engine speak: what a step does to the world (`Effect`), what a
//! plan line shows (`Action`, `Description`) and why a step did not succeed (`StepError`).
//! This module imports nothing from the crate, so every other module may use it.

use serde::{Deserialize, Serialize};

/// What a step does to the world, which decides what `flow plan` does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// No side effects: runs during plan.
    Read,
    /// Changes the world: plan only describes it.
    Write,
    /// Asks the operator: plan shows the question.
    Interactive,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Interactive => "interactive",
        }
    }
}

/// What a plan line shows about a step: `=` read, `+` create, `~` change, `-` delete or
/// stop, `?` asks, `…` skipped, `✘` could not be planned (the plan fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Change,
    Delete,
    Ask,
    Skip,
    /// The step could not be planned (a read failed, a template did not render): the line's
    /// summary says why, and the plan fails.
    Failed,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Read => "=",
            Action::Create => "+",
            Action::Change => "~",
            Action::Delete => "-",
            Action::Ask => "?",
            Action::Skip => "…",
            Action::Failed => "✘",
        }
    }
}

/// A step's plan line: its action, a one-line summary, and detail lines under it.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub action: Action,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Description {
    pub fn new(action: Action, summary: impl Into<String>) -> Self {
        Self {
            action,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The step ran and failed; the message says why.
    Failed(String),
    /// The operator said no.
    Declined(String),
    /// An approval or answer is needed and there is no one to give it (exit 3).
    NeedsApproval(String),
}

impl StepError {
    pub fn failed(message: impl Into<String>) -> Self {
        StepError::Failed(message.into())
    }

    pub fn message(&self) -> &str {
        match self {
            StepError::Failed(m) | StepError::Declined(m) | StepError::NeedsApproval(m) => m,
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// One line of a plan: a step, what applying would do to it, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLine {
    pub step: String,
    /// The step's `name:`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_name: String,
    pub finally: bool,
    pub action: Action,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// Set when the step may or may not run: its `when` depends on an unknown value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the step's `undo` would do if a later step fails: an approver sees the rollback
    /// before approving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoPlan>,
}

/// The plan of a step's `undo`: its type and its rendered description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoPlan {
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: Action,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}
