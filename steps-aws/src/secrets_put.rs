//! `secrets.put`: creates a Secrets Manager secret, or gives it a new value — only when the
//! value differs (`changed`). A map is stored as JSON. Retries reuse one request token.

use crate::iam::{Arns, wider_because, with_reason};
use crate::target::{AwsTarget, aws_error, clients};
use flow_engine::prelude::*;

pub struct SecretsPut;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SecretsPutParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub name: String,
    /// The value: text, or a mapping stored as JSON (a secret: masked everywhere).
    #[schemars(extend("x-flow-secret" = true))]
    pub value: serde_json::Value,
    pub description: Option<String>,
    /// The KMS key to encrypt with (default: the account's).
    pub kms_key_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretsPutOutputs {
    pub arn: String,
    pub version_id: String,
    /// Whether the secret was created or its value changed.
    pub changed: bool,
}

impl SecretsPutParams {
    fn text(&self) -> String {
        match &self.value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl StepType for SecretsPut {
    const NAME: &'static str = "secrets.put";
    const SUMMARY: &'static str =
        "Create or update a Secrets Manager secret (a map is stored as JSON)";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"store:
  type: secrets.put
  with:
    name: blot/production
    value: { DB_PASSWORD: "{{ params.db_password }}" }"#;
    type Params = SecretsPutParams;
    type Outputs = SecretsPutOutputs;

    async fn describe(&self, params: &SecretsPutParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Change,
            format!("create or update secret {}", params.name),
        )
    }

    fn permissions(
        &self,
        params: &RenderedParams<SecretsPutParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        // The value now, to write only when it differs; then a new value, or the secret.
        let mut statements = vec![with_reason(
            Permission::new(
                [
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:CreateSecret",
                ],
                [arns.secret(&params.name)],
            ),
            wider_because(&[("name", Some(&params.name))]),
        )];
        if let Some(key) = &params.kms_key_id {
            // Secrets Manager encrypts and decrypts with the caller's rights on the key.
            let via = format!("secretsmanager.{}.amazonaws.com", arns.region());
            statements.push(with_reason(
                Permission::new(["kms:GenerateDataKey", "kms:Decrypt"], [arns.kms_key(key)])
                    .condition(
                        if via.contains('*') {
                            "StringLike"
                        } else {
                            "StringEquals"
                        },
                        "kms:ViaService",
                        via,
                    ),
                wider_because(&[("kms_key_id", Some(key))]),
            ));
        }
        Ok(Permissions::new(statements))
    }

    async fn apply(
        &self,
        params: SecretsPutParams,
        ctx: &StepContext,
    ) -> Result<SecretsPutOutputs, StepError> {
        let client = clients(ctx).secrets(&params.aws).await;
        let text = params.text();
        let current = client
            .get_secret_value()
            .secret_id(&params.name)
            .send()
            .await;
        match current {
            Ok(current) => {
                if current.secret_string() == Some(text.as_str()) {
                    return Ok(SecretsPutOutputs {
                        arn: current.arn().unwrap_or_default().to_string(),
                        version_id: current.version_id().unwrap_or_default().to_string(),
                        changed: false,
                    });
                }
                let put = client
                    .put_secret_value()
                    .secret_id(&params.name)
                    .secret_string(&text)
                    .client_request_token(&ctx.idempotency_token)
                    .send()
                    .await
                    .map_err(|e| aws_error("secretsmanager", "PutSecretValue", e))?;
                Ok(SecretsPutOutputs {
                    arn: put.arn().unwrap_or_default().to_string(),
                    version_id: put.version_id().unwrap_or_default().to_string(),
                    changed: true,
                })
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                let created = client
                    .create_secret()
                    .name(&params.name)
                    .secret_string(&text)
                    .set_description(params.description.clone())
                    .set_kms_key_id(params.kms_key_id.clone())
                    .client_request_token(&ctx.idempotency_token)
                    .send()
                    .await
                    .map_err(|e| aws_error("secretsmanager", "CreateSecret", e))?;
                Ok(SecretsPutOutputs {
                    arn: created.arn().unwrap_or_default().to_string(),
                    version_id: created.version_id().unwrap_or_default().to_string(),
                    changed: true,
                })
            }
            Err(error) => Err(aws_error("secretsmanager", "GetSecretValue", error)),
        }
    }
}
