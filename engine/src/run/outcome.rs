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
}

impl StepOutcome {
    pub fn succeeded(outputs: Value, attempts: u32) -> Self {
        Self {
            status: Status::Succeeded,
            attempts,
            outputs,
            error: None,
            reason: None,
        }
    }

    pub fn skipped(reason: String) -> Self {
        Self {
            status: Status::Skipped,
            attempts: 0,
            outputs: json!({}),
            error: None,
            reason: Some(reason),
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
        }
    }
}
