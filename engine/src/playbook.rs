//! The checked model of a playbook: what the loader produces and the analyzer, planner and
//! executor work from. Every piece keeps the span it was written at.

use crate::param::ParamSpec;
use crate::secret_outputs::SecretOutputs;
use crate::source::{SourceFile, Span};
use crate::step_type::{DynStepType, Effect};
use crate::template::Tmpl;
use indexmap::IndexMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Playbook {
    pub file: Arc<SourceFile>,
    /// The folder relative paths in the playbook are resolved against.
    pub dir: PathBuf,
    /// sha256 of the playbook text, for saved plans and journals.
    pub hash: String,
    pub name: String,
    pub description: Option<String>,
    pub params: IndexMap<String, ParamSpec>,
    /// `steps:` then `finally:`, in written order; `Step::finally` tells them apart.
    pub steps: Vec<Step>,
    /// Step id → index in `steps`.
    pub ids: std::collections::HashMap<String, usize>,
    pub outputs: Vec<(String, Span, Tmpl)>,
}

impl Playbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.ids.get(id).map(|i| &self.steps[*i])
    }

    pub fn main_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| !s.finally)
    }

    pub fn finally_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.finally)
    }
}

/// A `type` + `with` pair: a step's own body, or its `undo`.
pub struct Body {
    pub type_name: String,
    pub step_type: Arc<dyn DynStepType>,
    pub span: Span,
    /// `with` after `defaults` were merged under it.
    pub with: Tmpl,
    /// The effect after `effect:` overrides.
    pub effect: Effect,
    /// Whether `effect:` was written (then the step type is not asked).
    pub effect_overridden: bool,
    /// Expressions the step evaluates itself (`where`), with the extra names it provides:
    /// checked here, handed over as text.
    pub deferred: Vec<(crate::template::Source, Vec<String>)>,
}

pub struct Step {
    pub id: String,
    pub span: Span,
    pub index: usize,
    pub finally: bool,
    pub name: Option<String>,
    pub body: Body,
    pub needs: Option<Vec<(String, Span)>>,
    pub when: Option<Condition>,
    pub for_each: Option<Tmpl>,
    pub concurrency: usize,
    pub retry: Option<Retry>,
    pub timeout: Option<Duration>,
    pub continue_on_error: bool,
    pub confirm: Option<Tmpl>,
    pub undo: Option<Body>,
    /// The outputs declared secret (`secret: true`, `secret_outputs: [...]`).
    pub secret_outputs: SecretOutputs,
}

impl Step {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A bare expression with the text it was written as (for skip reasons).
pub struct Condition {
    pub text: String,
    pub expr: Tmpl,
    /// `when` written as a list (or one `{ if, reason }`): each check in order, with the
    /// reason an operator reads when it skips the step. Empty for a plain expression.
    pub checks: Vec<Check>,
}

/// One check of a `when` list: its expression and the reason given when it is false.
pub struct Check {
    pub text: String,
    pub expr: Tmpl,
    pub reason: Option<Tmpl>,
}

/// Whether a skip reason was given by a `when` (not by a failed or skipped step before).
pub fn is_when_reason(reason: &str) -> bool {
    reason.starts_with("when: ") || reason.contains(" (when: ")
}

pub struct Retry {
    pub attempts: u32,
    pub delay: Duration,
    pub backoff: f64,
    pub max_delay: Option<Duration>,
    pub until: Option<Condition>,
}

impl Retry {
    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = self.backoff.powi(attempt.saturating_sub(1) as i32);
        let delay = self.delay.mul_f64(factor.clamp(0.0, 1e6));
        match self.max_delay {
            Some(max) => delay.min(max),
            None => delay,
        }
    }
}
