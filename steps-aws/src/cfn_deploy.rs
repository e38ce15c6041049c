//! `cfn.deploy`: creates or updates a CloudFormation stack through a change set, and waits
//! until it settles. A change set without changes is success with `changed: false`; a
//! failed deploy names the resources that failed and why. The plan says create or update,
//! with the parameters and the template lines that would change.

use crate::cfn_permissions;
use crate::cfn_stack::{failure_reasons, find_stack, outputs_of, settle, status_of};
use crate::iam::{Arns, wider_because, with_reason};
use crate::target::{AwsTarget, aws_error, clients};
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Parameter, Stack, Tag,
};
use flow_engine::permission::is_partly_unknown;
use flow_engine::prelude::*;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

pub struct CfnDeploy;

/// CloudFormation takes at most this many bytes of template inline.
const INLINE_TEMPLATE_LIMIT: u64 = 51_200;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CfnDeployParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub stack_name: String,
    /// The template file (YAML or JSON), relative to where flow runs.
    pub template: String,
    /// Parameter values. A parameter not given takes the template's default.
    #[serde(default)]
    pub parameters: IndexMap<String, Scalar>,
    /// Parameter values passed only when the template declares them (CloudFormation refuses
    /// one it does not): for a playbook that serves templates of different shapes — a team's
    /// own template, and a sample with extra knobs.
    #[serde(default)]
    pub optional_parameters: IndexMap<String, Scalar>,
    /// e.g. `[CAPABILITY_IAM]`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Tags of the stack (CloudFormation passes them to its resources).
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// How long to wait for the stack to settle (default 30m).
    pub timeout: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CfnDeployOutputs {
    pub stack_id: String,
    pub status: String,
    /// `{ OutputKey: OutputValue }`, read after the stack settled.
    pub outputs: Map<String, Value>,
    /// False when the change set found nothing to change.
    pub changed: bool,
}

/// A list to send, or nothing when it is empty.
fn given<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn text(value: &Scalar) -> String {
    match &value.0 {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A template read for a deploy, and the parameters it gets.
struct Template {
    body: String,
    /// `parameters`, and the `optional_parameters` the template declares.
    parameters: IndexMap<String, Scalar>,
    /// The `optional_parameters` left out: the template does not declare them.
    left_out: Vec<String>,
}

impl CfnDeployParams {
    fn read_template(&self, ctx: &PlanContext) -> Result<Template, StepError> {
        let path = ctx.resolve_path(&self.template);
        // Never more than CloudFormation takes, and never a FIFO or a device (a blocking read
        // there would hold the plan past any timeout).
        let body = flow_engine::regular_file::read_text(&path, INLINE_TEMPLATE_LIMIT).map_err(
            |e| match e {
                flow_engine::regular_file::ReadError::TooLarge { .. } => StepError::failed(format!(
                    "template {} is {} bytes: CloudFormation takes at most {INLINE_TEMPLATE_LIMIT} inline (split it into nested stacks, or shorten it)",
                    path.display(),
                    std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default()
                )),
                e => StepError::failed(format!("cannot read template {}: {e}", path.display())),
            },
        )?;
        let declared = declared_parameters(&path, &body);
        let mut parameters = self.parameters.clone();
        let mut left_out = Vec::new();
        for (key, value) in &self.optional_parameters {
            if parameters.contains_key(key) {
                continue;
            }
            // A template flow cannot read gets none of them (CloudFormation then says why).
            if declared.as_ref().is_some_and(|d| d.contains_key(key)) {
                parameters.insert(key.clone(), value.clone());
            } else {
                left_out.push(key.clone());
            }
        }
        if let Some(declared) = &declared {
            self.check_parameters(&parameters, declared)?;
        }
        Ok(Template {
            body,
            parameters,
            left_out,
        })
    }

    /// CloudFormation refuses a parameter the template does not declare, and one it needs
    /// that is not given: said before anything is sent, in the plan too.
    fn check_parameters(
        &self,
        parameters: &IndexMap<String, Scalar>,
        declared: &IndexMap<String, bool>,
    ) -> Result<(), StepError> {
        for key in parameters.keys() {
            if !declared.contains_key(key) {
                let hint =
                    flow_engine::diagnostic::did_you_mean(key, declared.keys().map(String::as_str))
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default();
                let names: Vec<&str> = declared.keys().map(String::as_str).collect();
                return Err(StepError::failed(format!(
                    "parameter `{key}` is not declared in template {} (it declares: {}){hint}",
                    self.template,
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )));
            }
        }
        let missing: Vec<&str> = declared
            .iter()
            .filter(|(key, has_default)| !**has_default && !parameters.contains_key(*key))
            .map(|(key, _)| key.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(StepError::failed(format!(
                "template {} needs parameter{} {} (no Default): give {} under `parameters`",
                self.template,
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            )));
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        self.timeout
            .map(|t| t.0)
            .unwrap_or(Duration::from_secs(30 * 60))
    }
}

/// The parameters a template declares, each with whether it has a `Default`; `None` when
/// the template cannot be read as YAML or JSON (CloudFormation then says what is wrong).
fn declared_parameters(path: &std::path::Path, body: &str) -> Option<IndexMap<String, bool>> {
    let file = flow_engine::source::SourceFile::new(path, body);
    let template = flow_engine::yaml::parse(&file).ok()?.to_json();
    let declared = match template.get("Parameters") {
        None | Some(Value::Null) => return Some(IndexMap::new()),
        Some(Value::Object(declared)) => declared,
        Some(_) => return None,
    };
    Some(
        declared
            .iter()
            .map(|(key, spec)| (key.clone(), spec.get("Default").is_some()))
            .collect(),
    )
}

/// Parameter lines of a plan: each given value, and what it was before on an update.
fn parameter_lines(template: &Template, stack: Option<&Stack>) -> Vec<String> {
    let before: IndexMap<String, String> = stack
        .map(|s| {
            s.parameters()
                .iter()
                .map(|p| {
                    (
                        p.parameter_key().unwrap_or_default().to_string(),
                        p.parameter_value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut lines = Vec::new();
    for (key, value) in &template.parameters {
        let value = text(value);
        match before.get(key) {
            Some(old) if *old == value => lines.push(format!("parameter {key} = {value}")),
            Some(old) => lines.push(format!("parameter {key}: {old} → {value}")),
            None => lines.push(format!("parameter {key} = {value}")),
        }
    }
    for (key, old) in &before {
        if !template.parameters.contains_key(key) {
            lines.push(format!("parameter {key}: {old} → (the template's default)"));
        }
    }
    if !template.left_out.is_empty() {
        lines.push(format!(
            "not passed (the template does not declare them): {}",
            template.left_out.join(", ")
        ));
    }
    lines
}

/// The template lines that would change (at most 20 shown), or that it is unchanged.
fn template_lines(old: &str, new: &str) -> Vec<String> {
    if old.trim_end() == new.trim_end() {
        return vec!["template unchanged".into()];
    }
    let diff = similar::TextDiff::from_lines(old, new);
    let changed: Vec<String> = diff
        .iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .map(|c| format!("{}{}", c.tag(), c.value().trim_end()))
        .collect();
    let mut lines = vec![format!("template: {} lines differ", changed.len())];
    lines.extend(changed.iter().take(20).map(|l| format!("  {l}")));
    if changed.len() > 20 {
        lines.push(format!("  … and {} more", changed.len() - 20));
    }
    lines
}

/// Whether CloudFormation's answer means "nothing to change" (AWS fails the change set with
/// the first; `update-stack` and some stand-ins answer the second).
fn says_unchanged(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// The result of a deploy that changed nothing: the stack as it is.
fn unchanged(ctx: &StepContext, stack: &Stack) -> CfnDeployOutputs {
    ctx.output(
        "log",
        &format!(
            "stack {}: no changes",
            stack.stack_name().unwrap_or_default()
        ),
    );
    CfnDeployOutputs {
        stack_id: stack.stack_id().unwrap_or_default().to_string(),
        status: status_of(stack),
        outputs: outputs_of(stack),
        changed: false,
    }
}

impl StepType for CfnDeploy {
    const NAME: &'static str = "cfn.deploy";
    const SUMMARY: &'static str =
        "Create or update a CloudFormation stack through a change set, and wait for it";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"network:
  type: cfn.deploy
  with:
    stack_name: blot-network
    template: cfn/network.yaml
    parameters: { Environment: production }
    capabilities: [CAPABILITY_IAM]"#;
    type Params = CfnDeployParams;
    type Outputs = CfnDeployOutputs;

    async fn describe(&self, params: &CfnDeployParams, ctx: &PlanContext) -> Description {
        let template = match params.read_template(ctx) {
            Ok(template) => template,
            Err(error) => return Description::new(Action::Failed, error.message().to_string()),
        };
        let body = &template.body;
        let stack = if ctx.offline {
            None
        } else {
            let client = clients(ctx).cloudformation(&params.aws).await;
            match find_stack(&client, &params.stack_name).await {
                Ok(Some(stack)) => {
                    let old = client
                        .get_template()
                        .stack_name(&params.stack_name)
                        .send()
                        .await
                        .map(|t| t.template_body().map(str::to_string))
                        .map_err(|e| aws_error("cloudformation", "GetTemplate", e));
                    Some((stack, old))
                }
                Ok(None) => {
                    let mut description = Description::new(
                        Action::Create,
                        format!(
                            "create stack {} from {}",
                            params.stack_name, params.template
                        ),
                    );
                    for line in parameter_lines(&template, None) {
                        description = description.detail(line);
                    }
                    return description;
                }
                Err(error) => {
                    return Description::new(Action::Failed, error.message().to_string());
                }
            }
        };
        let mut description = match &stack {
            None => Description::new(
                Action::Change,
                format!(
                    "create or update stack {} from {} ({} bytes)",
                    params.stack_name,
                    params.template,
                    body.len()
                ),
            ),
            Some((stack, _)) => Description::new(
                Action::Change,
                format!(
                    "update stack {} from {} (now {})",
                    params.stack_name,
                    params.template,
                    status_of(stack)
                ),
            ),
        };
        for line in parameter_lines(&template, stack.as_ref().map(|(s, _)| s)) {
            description = description.detail(line);
        }
        match &stack {
            Some((_, Ok(Some(old)))) => {
                for line in template_lines(old, body) {
                    description = description.detail(line);
                }
            }
            Some((_, Err(error))) => {
                description = description.detail(format!(
                    "template differences not shown: {}",
                    error.message()
                ));
            }
            _ => {}
        }
        if !params.capabilities.is_empty() {
            description =
                description.detail(format!("capabilities: {}", params.capabilities.join(", ")));
        }
        description
    }

    fn permissions(
        &self,
        params: &RenderedParams<CfnDeployParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        let deploy = Permission::new(
            [
                // The plan: create or update, and the template lines that change.
                "cloudformation:DescribeStacks",
                "cloudformation:GetTemplate",
                // The deploy, waiting for the stack to settle.
                "cloudformation:CreateChangeSet",
                "cloudformation:DescribeChangeSet",
                "cloudformation:ExecuteChangeSet",
                // A change set that failed (nothing to change) is removed; a failed deploy
                // names the resources that failed from the stack's events.
                "cloudformation:DeleteChangeSet",
                "cloudformation:DescribeStackEvents",
            ],
            [arns.stack(&params.stack_name)],
        );
        let mut statements = vec![with_reason(
            deploy,
            wider_because(&[("stack_name", Some(&params.stack_name))]),
        )];
        let mut notes = Vec::new();
        let mut texts: Vec<String> = params
            .parameters
            .values()
            .chain(params.optional_parameters.values())
            .map(text)
            .collect();
        if is_partly_unknown(&params.template) {
            notes.push(format!(
                "`template` is known only after apply ({}): the macros it runs, the references it resolves and the resources it creates need permissions this policy cannot name",
                params.template
            ));
        } else {
            // As the deploy reads it: never more than CloudFormation takes, never a FIFO.
            let path = std::path::Path::new(&params.template);
            match flow_engine::regular_file::read_text(path, INLINE_TEMPLATE_LIMIT) {
                Ok(body) => {
                    if let Some(facts) = cfn_permissions::template_facts(&params.template, &body) {
                        statements.extend(cfn_permissions::transforms(&arns, &facts.transforms));
                        if !facts.resource_types.is_empty() {
                            notes.push(format!(
                                "CloudFormation creates, updates and deletes the template's resources with the caller's rights (no service role is passed): grant the actions of {} too",
                                facts.resource_types.into_iter().collect::<Vec<_>>().join(", ")
                            ));
                        }
                    }
                    texts.push(body);
                }
                Err(error) => notes.push(format!(
                    "cannot read template {} ({error}): the macros it runs, the references it resolves and the resources it creates are not in this policy",
                    params.template
                )),
            }
        }
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        statements.extend(cfn_permissions::dynamic_references(&arns, &texts));
        Ok(Permissions { statements, notes })
    }

    async fn apply(
        &self,
        params: CfnDeployParams,
        ctx: &StepContext,
    ) -> Result<CfnDeployOutputs, StepError> {
        let template = params.read_template(ctx)?;
        let client = clients(ctx).cloudformation(&params.aws).await;
        let name = &params.stack_name;
        let deadline = Instant::now() + params.timeout();
        let started =
            aws_sdk_cloudformation::primitives::DateTime::from(std::time::SystemTime::now()).secs();
        // A stack busy with another operation is waited for first.
        let existing = settle(&client, name, params.timeout()).await?;
        let kind = match existing.as_ref().map(status_of).as_deref() {
            None | Some("REVIEW_IN_PROGRESS") => ChangeSetType::Create,
            Some("ROLLBACK_COMPLETE") => {
                return Err(StepError::failed(format!(
                    "stack {name} is ROLLBACK_COMPLETE: its creation failed and CloudFormation cannot update it; delete it (aws cloudformation delete-stack --stack-name {name}) and deploy again"
                )));
            }
            Some(_) => ChangeSetType::Update,
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let change_set = format!("flow-{stamp}");
        let created = client
            .create_change_set()
            .stack_name(name)
            .change_set_name(&change_set)
            .change_set_type(kind.clone())
            .template_body(&template.body)
            // An empty list is left out, not sent: CloudFormation reads an empty `Tags` on an
            // update as "remove every tag" (tags set outside the playbook included).
            .set_parameters(given(
                template
                    .parameters
                    .iter()
                    .map(|(k, v)| {
                        Parameter::builder()
                            .parameter_key(k)
                            .parameter_value(text(v))
                            .build()
                    })
                    .collect(),
            ))
            .set_capabilities(given(
                params
                    .capabilities
                    .iter()
                    .map(|c| Capability::from(c.as_str()))
                    .collect(),
            ))
            .set_tags(given(
                params
                    .tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await;
        if let Err(error) = created {
            use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
            // Some endpoints refuse an empty change set at once instead of failing it.
            let message = error.as_service_error().and_then(|e| e.message());
            if let (Some(stack), Some(message)) = (&existing, message)
                && says_unchanged(message)
            {
                return Ok(unchanged(ctx, stack));
            }
            return Err(aws_error("cloudformation", "CreateChangeSet", error));
        }

        // The change set is computed asynchronously.
        let mut pause = Duration::from_secs(1);
        let computed = loop {
            let described = client
                .describe_change_set()
                .stack_name(name)
                .change_set_name(&change_set)
                .send()
                .await
                .map_err(|e| aws_error("cloudformation", "DescribeChangeSet", e))?;
            match described.status() {
                Some(ChangeSetStatus::CreateComplete) | Some(ChangeSetStatus::Failed) => {
                    break described;
                }
                _ if Instant::now() + pause > deadline => {
                    return Err(StepError::failed(format!(
                        "change set {change_set} of stack {name} was not ready after {}",
                        flow_engine::duration::format_duration(params.timeout())
                    )));
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
        };
        if computed.status() == Some(&ChangeSetStatus::Failed) {
            let reason = computed.status_reason().unwrap_or("no reason given");
            // A failed change set is clutter on the stack: removed, or said so.
            if let Err(error) = client
                .delete_change_set()
                .stack_name(name)
                .change_set_name(&change_set)
                .send()
                .await
            {
                let error = aws_error("cloudformation", "DeleteChangeSet", error);
                ctx.warn(&format!(
                    "the failed change set {change_set} stays on stack {name}: {}",
                    error.message()
                ));
            }
            if let Some(stack) = &existing
                && says_unchanged(reason)
            {
                return Ok(unchanged(ctx, stack));
            }
            return Err(StepError::failed(format!(
                "the change set for stack {name} failed: {reason}"
            )));
        }
        for change in computed.changes() {
            if let Some(resource) = change.resource_change() {
                ctx.output(
                    "log",
                    &format!(
                        "{} {} ({}){}",
                        resource.action().map(|a| a.as_str()).unwrap_or("?"),
                        resource.logical_resource_id().unwrap_or("?"),
                        resource.resource_type().unwrap_or("?"),
                        resource
                            .replacement()
                            .filter(|r| r.as_str() == "True")
                            .map(|_| ", replaced")
                            .unwrap_or("")
                    ),
                );
            }
        }

        // One token per change set: a retry of this call is recognised, a later deploy is not.
        client
            .execute_change_set()
            .stack_name(name)
            .change_set_name(&change_set)
            .client_request_token(format!("{}-{stamp}", ctx.idempotency_token))
            .send()
            .await
            .map_err(|e| aws_error("cloudformation", "ExecuteChangeSet", e))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let stack = settle(&client, name, remaining.max(Duration::from_secs(1)))
            .await?
            .ok_or_else(|| StepError::failed(format!("stack {name} is gone after the deploy")))?;
        let status = status_of(&stack);
        if !matches!(
            status.as_str(),
            "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
        ) {
            let reasons = failure_reasons(&client, name, started).await;
            return Err(StepError::failed(format!(
                "stack {name} ended {status}{}",
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", reasons.join("; "))
                }
            )));
        }
        Ok(CfnDeployOutputs {
            stack_id: stack.stack_id().unwrap_or_default().to_string(),
            status,
            outputs: outputs_of(&stack),
            changed: true,
        })
    }
}
