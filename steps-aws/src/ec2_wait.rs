//! `ec2.wait`: waits until instances are running, stopped or terminated.

use crate::ec2_instances::{Wanted, describe_instances, states, wait_for};
use crate::target::{AwsTarget, clients};
use flow_engine::prelude::*;
use serde_json::{Map, Value};
use std::time::Duration;

pub struct Ec2Wait;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Ec2WaitParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub instance_ids: OneOrMany<String>,
    /// `running` (default), `stopped` or `terminated`.
    #[serde(default)]
    pub state: Wanted,
    /// How long to wait (default 10m).
    pub timeout: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Ec2WaitOutputs {
    /// `{ instance id: state }`.
    pub states: Map<String, Value>,
}

impl StepType for Ec2Wait {
    const NAME: &'static str = "ec2.wait";
    const SUMMARY: &'static str = "Wait until EC2 instances are running, stopped or terminated";
    const EFFECT: Effect = Effect::Read;
    // Waiting is not looking: a plan does not wait.
    const RUNS_IN_PLAN: bool = false;
    const EXAMPLE: &'static str = r#"up:
  type: ec2.wait
  with:
    instance_ids: "{{ steps.launch.instance_ids }}"
    state: running
    timeout: 5m"#;
    type Params = Ec2WaitParams;
    type Outputs = Ec2WaitOutputs;

    async fn describe(&self, params: &Ec2WaitParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Read,
            format!(
                "wait until {} {}",
                params.instance_ids.clone().into_vec().join(", "),
                params.state.as_str()
            ),
        )
    }

    fn permissions(
        &self,
        _: &RenderedParams<Ec2WaitParams>,
        _: &PermissionContext,
    ) -> Result<Permissions, String> {
        Ok(Permissions::new(vec![describe_instances()]))
    }

    async fn apply(
        &self,
        params: Ec2WaitParams,
        ctx: &StepContext,
    ) -> Result<Ec2WaitOutputs, StepError> {
        let ids = params.instance_ids.into_vec();
        if ids.is_empty() {
            return Ok(Ec2WaitOutputs { states: Map::new() });
        }
        let client = clients(ctx).ec2(&params.aws).await;
        let timeout = params
            .timeout
            .map(|t| t.0)
            .unwrap_or(Duration::from_secs(600));
        let instances = wait_for(ctx, &client, &ids, params.state, timeout).await?;
        Ok(Ec2WaitOutputs {
            states: states(&instances),
        })
    }
}
