//! `confirm`: asks the operator to approve before the run goes on.

use flow_engine::prelude::*;

pub struct Confirm;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmParams {
    /// The question, e.g. "Switch production to the restored Redis?".
    pub message: String,
    /// A value shown as a table before the question (a comparison, a list of keys).
    pub show: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ConfirmOutputs {
    /// Always true: a decline stops the run.
    pub approved: bool,
    /// How it was approved: `terminal` (a person answered the question), `--yes` or
    /// `--approve` (given beforehand, without seeing it) — a playbook can hold an approval
    /// nobody read to a stricter check.
    pub how: String,
}

impl StepType for Confirm {
    const NAME: &'static str = "confirm";
    const SUMMARY: &'static str =
        "Ask the operator to approve; without a terminal it needs --yes or --approve STEP";
    const EFFECT: Effect = Effect::Interactive;
    const EXAMPLE: &'static str = r#"go_ahead:
  type: confirm
  with:
    message: Restore {{ params.snapshot }} over production?
    show: "{{ steps.compare.rows }}""#;
    type Params = ConfirmParams;
    type Outputs = ConfirmOutputs;

    async fn describe(&self, params: &ConfirmParams, _: &PlanContext) -> Description {
        Description::new(Action::Ask, format!("confirm: {}", params.message))
    }

    async fn apply(
        &self,
        params: ConfirmParams,
        ctx: &StepContext,
    ) -> Result<ConfirmOutputs, StepError> {
        let table = params.show.as_ref().map(flow_engine::table::render_value);
        let how = ctx.approve(&params.message, table).await?;
        Ok(ConfirmOutputs {
            approved: true,
            how: how.to_string(),
        })
    }
}
