//! `sleep`: waits.

use flow_engine::duration::format_duration;
use flow_engine::prelude::*;

pub struct Sleep;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// How long: `500ms`, `30s`, `5m`.
    pub duration: FlowDuration,
}

impl StepType for Sleep {
    const NAME: &'static str = "sleep";
    const SUMMARY: &'static str = "Wait for a duration";
    const EFFECT: Effect = Effect::Read;
    const RUNS_IN_PLAN: bool = false;
    const EXAMPLE: &'static str = r#"settle:
  type: sleep
  with: { duration: 10s }"#;
    type Params = SleepParams;
    type Outputs = NoOutputs;

    async fn describe(&self, params: &SleepParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Read,
            format!("sleep {}", format_duration(params.duration.0)),
        )
    }

    async fn apply(&self, params: SleepParams, _: &StepContext) -> Result<NoOutputs, StepError> {
        tokio::time::sleep(params.duration.0).await;
        Ok(NoOutputs {})
    }
}
