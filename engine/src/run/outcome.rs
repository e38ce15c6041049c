//! What a step, an element or an undo came to.

use crate::event::Status;
use crate::kinds::StepError;
use serde_json::{Value, json};

/// What one step (or element, or undo) came to.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub status: Status,
    pub attempts: u32,
    pub outputs: Value,
    pub error: Option<StepError>,
    pub reason: Option<String>,
    /// Kept by a resume from an earlier attempt of the run, not run now.
    pub kept: bool,
    /// The recorded outputs of a kept step were masked (they held a secret).
    pub outputs_masked: bool,
}

impl StepOutcome {
    pub fn succeeded(outputs: Value, attempts: u32) -> Self {
        Self {
            status: Status::Succeeded,
            attempts,
            outputs,
            error: None,
            reason: None,
            kept: false,
            outputs_masked: false,
        }
    }

    /// What a resume keeps of a step (or element) that finished in an earlier attempt.
    pub fn kept(status: Status, outputs: Value, reason: Option<String>, masked: bool) -> Self {
        Self {
            status,
            attempts: 0,
            outputs,
            error: None,
            reason,
            kept: true,
            outputs_masked: masked,
        }
    }

    pub fn skipped(reason: String) -> Self {
        Self {
            status: Status::Skipped,
            attempts: 0,
            outputs: json!({}),
            error: None,
            reason: Some(reason),
            kept: false,
            outputs_masked: false,
        }
    }

    pub fn from_error(error: StepError) -> Self {
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
            kept: false,
            outputs_masked: false,
        }
    }
}
