//! `cfn.outputs`: a stack's outputs and status — the endpoint another stack created.

use crate::cfn_stack::{find_stack, outputs_of, status_of};
use crate::iam::Arns;
use crate::target::{AwsTarget, clients};
use flow_engine::prelude::*;
use serde_json::{Map, Value};

pub struct CfnOutputs;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CfnOutputsParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub stack_name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CfnOutputsOutputs {
    /// `{ OutputKey: OutputValue }`.
    pub outputs: Map<String, Value>,
    pub status: String,
    pub stack_id: String,
}

impl StepType for CfnOutputs {
    const NAME: &'static str = "cfn.outputs";
    const SUMMARY: &'static str = "Read a CloudFormation stack's outputs and status";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"network:
  type: cfn.outputs
  with:
    stack_name: blot-network"#;
    type Params = CfnOutputsParams;
    type Outputs = CfnOutputsOutputs;

    async fn describe(&self, params: &CfnOutputsParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Read,
            format!("read the outputs of stack {}", params.stack_name),
        )
    }

    fn permissions(
        &self,
        params: &RenderedParams<CfnOutputsParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        Ok(Arns::new(&params.aws, ctx).one(
            &["cloudformation:DescribeStacks"],
            Arns::stack,
            "stack_name",
            &params.stack_name,
        ))
    }

    async fn apply(
        &self,
        params: CfnOutputsParams,
        ctx: &StepContext,
    ) -> Result<CfnOutputsOutputs, StepError> {
        let client = clients(ctx).cloudformation(&params.aws).await;
        let stack = find_stack(&client, &params.stack_name)
            .await?
            .ok_or_else(|| {
                StepError::failed(format!(
                    "stack {} does not exist (in this region and account)",
                    params.stack_name
                ))
            })?;
        let outputs = outputs_of(&stack);
        let mut rows = vec![vec!["output".to_string(), "value".to_string()]];
        rows.extend(
            outputs
                .iter()
                .map(|(k, v)| vec![k.clone(), v.as_str().unwrap_or_default().to_string()]),
        );
        ctx.table(&rows);
        Ok(CfnOutputsOutputs {
            outputs,
            status: status_of(&stack),
            stack_id: stack.stack_id().unwrap_or_default().to_string(),
        })
    }
}
