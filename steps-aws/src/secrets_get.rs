//! `secrets.get`: reads a Secrets Manager secret (or one key of a JSON secret). The value is
//! a secret: masked in everything flow writes from then on, each leaf of a JSON one too.

use crate::iam::Arns;
use crate::target::{AwsTarget, aws_error, clients};
use flow_engine::prelude::*;

pub struct SecretsGet;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SecretsGetParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    /// The secret's name or ARN.
    pub name: String,
    /// For a JSON secret: the one key to read.
    pub json_key: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretsGetOutputs {
    /// The value (masked everywhere).
    pub value: Secret,
    pub arn: String,
}

impl StepType for SecretsGet {
    const NAME: &'static str = "secrets.get";
    const SUMMARY: &'static str = "Read a Secrets Manager secret (masked everywhere from then on)";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"db_password:
  type: secrets.get
  with:
    name: blot/production
    json_key: DB_PASSWORD"#;
    type Params = SecretsGetParams;
    type Outputs = SecretsGetOutputs;

    async fn describe(&self, params: &SecretsGetParams, _: &PlanContext) -> Description {
        let key = params
            .json_key
            .as_ref()
            .map(|k| format!(" [{k}]"))
            .unwrap_or_default();
        Description::new(Action::Read, format!("read secret {}{key}", params.name))
    }

    fn permissions(
        &self,
        params: &RenderedParams<SecretsGetParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        Ok(Arns::new(&params.aws, ctx).one(
            &["secretsmanager:GetSecretValue"],
            Arns::secret,
            "name",
            &params.name,
        ))
    }

    async fn apply(
        &self,
        params: SecretsGetParams,
        ctx: &StepContext,
    ) -> Result<SecretsGetOutputs, StepError> {
        let client = clients(ctx).secrets(&params.aws).await;
        let secret = client
            .get_secret_value()
            .secret_id(&params.name)
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager", "GetSecretValue", e))?;
        let Some(text) = secret.secret_string().map(str::to_string) else {
            return Err(StepError::failed(format!(
                "secret {} holds binary data (SecretBinary): secrets.get reads text secrets only",
                params.name
            )));
        };
        // The whole value is a secret before any of it is looked at.
        ctx.add_secret(&serde_json::Value::String(text.clone()));
        let value = match &params.json_key {
            None => text,
            Some(key) => {
                let document: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
                    StepError::failed(format!(
                        "secret {} is not JSON, so it has no `{key}`",
                        params.name
                    ))
                })?;
                match document.get(key) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => {
                        return Err(StepError::failed(format!(
                            "secret {} has no key `{key}`",
                            params.name
                        )));
                    }
                }
            }
        };
        Ok(SecretsGetOutputs {
            value: Secret(value),
            arn: secret.arn().unwrap_or_default().to_string(),
        })
    }
}
