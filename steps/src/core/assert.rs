//! `assert`: checks conditions; fails the run (severity error) or warns (severity warning).

use flow_engine::prelude::*;

pub struct Assert;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A false condition fails the step.
    #[default]
    Error,
    /// A false condition is reported; the step succeeds with `passed: false`.
    Warning,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertParams {
    /// An expression, or a list of them, that must all be true.
    pub that: OneOrMany<Evaluated>,
    /// What to say when a condition is false.
    pub message: Option<String>,
    /// `error` (default) fails the step; `warning` only reports.
    #[serde(default)]
    pub severity: Severity,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AssertOutputs {
    /// Whether every condition held.
    pub passed: bool,
}

impl StepType for Assert {
    const NAME: &'static str = "assert";
    const SUMMARY: &'static str =
        "Check conditions: fail the run (severity: error) or warn (severity: warning)";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"memory_ok:
  type: assert
  with:
    that: steps.info.used_memory < 0.9 * steps.info.maxmemory
    message: Redis memory is above 90% of maxmemory
    severity: warning"#;
    type Params = AssertParams;
    type Outputs = AssertOutputs;

    async fn describe(&self, params: &AssertParams, _: &PlanContext) -> Description {
        let conditions: Vec<String> = match &params.that {
            OneOrMany::One(e) => vec![e.expression.clone()],
            OneOrMany::Many(list) => list.iter().map(|e| e.expression.clone()).collect(),
        };
        Description::new(
            Action::Read,
            format!(
                "assert: {}",
                flow_engine::three_valued::all_of(conditions.iter().map(String::as_str))
            ),
        )
    }

    async fn apply(
        &self,
        params: AssertParams,
        ctx: &StepContext,
    ) -> Result<AssertOutputs, StepError> {
        let failed: Vec<String> = params
            .that
            .into_vec()
            .into_iter()
            .filter(|c| !c.is_true())
            .map(|c| format!("`{}`", c.expression))
            .collect();
        if failed.is_empty() {
            return Ok(AssertOutputs { passed: true });
        }
        let message = match &params.message {
            Some(m) => format!("{m} (false: {})", failed.join(", ")),
            None => format!("assertion failed: {}", failed.join(", ")),
        };
        match params.severity {
            Severity::Error => Err(StepError::Failed(message)),
            Severity::Warning => {
                ctx.warn(&message);
                Ok(AssertOutputs { passed: false })
            }
        }
    }
}
