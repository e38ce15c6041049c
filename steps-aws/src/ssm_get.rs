//! `ssm.get`: reads an SSM parameter; a SecureString's value is a secret (masked everywhere).

use crate::iam::Arns;
use crate::target::{AwsTarget, aws_error, clients};
use flow_engine::prelude::*;

pub struct SsmGet;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SsmGetParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub name: String,
    /// Decrypt a SecureString (default: true).
    pub decrypt: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SsmGetOutputs {
    /// The value (a secret, masked everywhere, when the parameter is a SecureString).
    #[schemars(extend("x-flow-maybe-secret" = "when the parameter is a SecureString"))]
    pub value: String,
    /// `String`, `SecureString` or `StringList`.
    pub r#type: String,
    pub version: i64,
}

impl StepType for SsmGet {
    const NAME: &'static str = "ssm.get";
    const SUMMARY: &'static str = "Read an SSM parameter (a SecureString is masked everywhere)";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"endpoint:
  type: ssm.get
  with:
    name: /blot/redis/endpoint"#;
    type Params = SsmGetParams;
    type Outputs = SsmGetOutputs;

    async fn describe(&self, params: &SsmGetParams, _: &PlanContext) -> Description {
        Description::new(Action::Read, format!("read parameter {}", params.name))
    }

    fn permissions(
        &self,
        params: &RenderedParams<SsmGetParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        Ok(Arns::new(&params.aws, ctx).one(
            &["ssm:GetParameter"],
            Arns::parameter,
            "name",
            &params.name,
        ))
    }

    async fn apply(
        &self,
        params: SsmGetParams,
        ctx: &StepContext,
    ) -> Result<SsmGetOutputs, StepError> {
        let client = clients(ctx).ssm(&params.aws).await;
        let got = client
            .get_parameter()
            .name(&params.name)
            .with_decryption(params.decrypt.unwrap_or(true))
            .send()
            .await
            .map_err(|e| aws_error("ssm", "GetParameter", e))?;
        let parameter = got.parameter().ok_or_else(|| {
            StepError::failed(format!(
                "ssm GetParameter: no parameter {} in the answer",
                params.name
            ))
        })?;
        let kind = parameter
            .r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        let value = parameter.value().unwrap_or_default().to_string();
        if kind == "SecureString" {
            ctx.add_secret(&serde_json::Value::String(value.clone()));
        }
        Ok(SsmGetOutputs {
            value,
            r#type: kind,
            version: parameter.version(),
        })
    }
}
