//! `ec2.terminate`: terminates instances and waits until they are gone.

use crate::ec2_instances::{
    StateChangeOutputs, StateChangeParams, Wanted, change_state, describe_change,
    state_change_permissions,
};
use flow_engine::prelude::*;

pub struct Ec2Terminate;

impl StepType for Ec2Terminate {
    const NAME: &'static str = "ec2.terminate";
    const SUMMARY: &'static str = "Terminate EC2 instances and wait until they are terminated";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"cleanup:
  type: ec2.stop
  with:
    instance_ids: "{{ steps.restores.instance_ids }}""#;
    type Params = StateChangeParams;
    type Outputs = StateChangeOutputs;

    async fn describe(&self, params: &StateChangeParams, ctx: &PlanContext) -> Description {
        describe_change("terminate", params, ctx).await
    }

    fn permissions(
        &self,
        params: &RenderedParams<StateChangeParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        Ok(state_change_permissions(
            "ec2:TerminateInstances",
            params,
            ctx,
        ))
    }

    async fn apply(
        &self,
        params: StateChangeParams,
        ctx: &StepContext,
    ) -> Result<StateChangeOutputs, StepError> {
        change_state(params, ctx, Wanted::Terminated).await
    }
}
