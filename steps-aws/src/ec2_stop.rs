//! `ec2.stop`: stops instances and waits until they are stopped.

use crate::ec2_instances::{
    StateChangeOutputs, StateChangeParams, Wanted, change_state, describe_change,
    state_change_permissions,
};
use flow_engine::prelude::*;

pub struct Ec2Stop;

impl StepType for Ec2Stop {
    const NAME: &'static str = "ec2.stop";
    const SUMMARY: &'static str = "Stop EC2 instances and wait until they are stopped";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"stop_old:
  type: ec2.stop
  with:
    instance_ids: "{{ steps.restores.instance_ids }}""#;
    type Params = StateChangeParams;
    type Outputs = StateChangeOutputs;

    async fn describe(&self, params: &StateChangeParams, ctx: &PlanContext) -> Description {
        describe_change("stop", params, ctx).await
    }

    fn permissions(
        &self,
        params: &RenderedParams<StateChangeParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        Ok(state_change_permissions("ec2:StopInstances", params, ctx))
    }

    async fn apply(
        &self,
        params: StateChangeParams,
        ctx: &StepContext,
    ) -> Result<StateChangeOutputs, StepError> {
        change_state(params, ctx, Wanted::Stopped).await
    }
}
