//! `ssm.put`: writes an SSM parameter — only when the value differs (`changed`).

use crate::iam::Arns;
use crate::target::{AwsTarget, aws_error, clients};
use flow_engine::prelude::*;

pub struct SsmPut;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
pub enum ParameterType {
    #[default]
    String,
    SecureString,
    StringList,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SsmPutParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub name: String,
    pub value: Text,
    /// `String` (default), `SecureString` (its value is masked everywhere) or `StringList`.
    #[serde(default)]
    pub r#type: ParameterType,
    /// Replace an existing parameter (default: true).
    pub overwrite: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SsmPutOutputs {
    pub version: i64,
    /// Whether the parameter was created or its value changed.
    pub changed: bool,
}

/// A warning when a write would turn a SecureString into a plain parameter: readable then
/// without decryption, and no longer masked when read.
fn downgrade(
    now: Option<&aws_sdk_ssm::types::ParameterType>,
    new: ParameterType,
) -> Option<String> {
    (now == Some(&aws_sdk_ssm::types::ParameterType::SecureString)
        && new != ParameterType::SecureString)
        .then(|| {
            format!(
                "replaces a SecureString with a plain {new:?}: its value will be readable without decryption"
            )
        })
}

impl StepType for SsmPut {
    const NAME: &'static str = "ssm.put";
    const SUMMARY: &'static str = "Write an SSM parameter (String, SecureString or StringList)";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"endpoint:
  type: ssm.put
  with:
    name: /blot/redis/endpoint
    value: "{{ steps.launch.private_ip }}""#;
    type Params = SsmPutParams;
    type Outputs = SsmPutOutputs;

    async fn describe(&self, params: &SsmPutParams, ctx: &PlanContext) -> Description {
        let mut description = Description::new(
            Action::Change,
            format!("write parameter {} ({:?})", params.name, params.r#type),
        );
        if ctx.offline {
            return description;
        }
        let client = clients(ctx).ssm(&params.aws).await;
        match client.get_parameter().name(&params.name).send().await {
            Ok(found) => {
                let now = found.parameter().and_then(|p| p.r#type()).cloned();
                if let Some(warning) = downgrade(now.as_ref(), params.r#type) {
                    description = description.detail(warning);
                }
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                description.action = Action::Create;
                description.summary =
                    format!("create parameter {} ({:?})", params.name, params.r#type);
            }
            Err(error) => {
                let error = aws_error("ssm", "GetParameter", error);
                description = description.detail(format!(
                    "cannot tell create from change: {}",
                    error.message()
                ));
            }
        }
        description
    }

    fn permissions(
        &self,
        params: &RenderedParams<SsmPutParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        // The parameter now (the plan's create-or-change, and to write only when it differs),
        // then the write.
        Ok(Arns::new(&params.aws, ctx).one(
            &["ssm:GetParameter", "ssm:PutParameter"],
            Arns::parameter,
            "name",
            &params.name,
        ))
    }

    async fn apply(
        &self,
        params: SsmPutParams,
        ctx: &StepContext,
    ) -> Result<SsmPutOutputs, StepError> {
        if params.r#type == ParameterType::SecureString {
            ctx.add_secret(&serde_json::Value::String(params.value.0.clone()));
        }
        let client = clients(ctx).ssm(&params.aws).await;
        let current = client
            .get_parameter()
            .name(&params.name)
            .with_decryption(true)
            .send()
            .await;
        // Only a parameter that does not exist yet is no answer: without the value now,
        // `changed` and the SecureString warning would be guesses.
        let current = match current {
            Err(error)
                if !error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                return Err(aws_error("ssm", "GetParameter", error));
            }
            current => current,
        };
        if let Ok(current) = &current
            && let Some(warning) =
                downgrade(current.parameter().and_then(|p| p.r#type()), params.r#type)
        {
            ctx.warn(&warning);
        }
        if let Ok(current) = current
            && let Some(parameter) = current.parameter()
            && parameter.value() == Some(params.value.0.as_str())
        {
            return Ok(SsmPutOutputs {
                version: parameter.version(),
                changed: false,
            });
        }
        let kind = match params.r#type {
            ParameterType::String => aws_sdk_ssm::types::ParameterType::String,
            ParameterType::SecureString => aws_sdk_ssm::types::ParameterType::SecureString,
            ParameterType::StringList => aws_sdk_ssm::types::ParameterType::StringList,
        };
        let put = client
            .put_parameter()
            .name(&params.name)
            .value(&params.value.0)
            .r#type(kind)
            .overwrite(params.overwrite.unwrap_or(true))
            .send()
            .await
            .map_err(|e| aws_error("ssm", "PutParameter", e))?;
        Ok(SsmPutOutputs {
            version: put.version(),
            changed: true,
        })
    }
}
