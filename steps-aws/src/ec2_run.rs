//! `ec2.run`: launches instances from a launch template — exactly once per step of a run.
//! The call carries a ClientToken from (run id, step, element), and what it launches is
//! tagged `flow:run`/`flow:step` and looked for before launching, so a retried or resumed
//! step finds its instance even where the token is not honoured (moto ignores it).

use crate::ec2_instances::{
    Wanted, describe, describe_instances, filter, instance_json, print_table, wait_for,
};
use crate::iam::{Arns, wider_because};
use crate::target::{AwsTarget, aws_error, clients};
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateSpecification, ResourceType, Tag, TagSpecification,
};
use flow_engine::permission::pattern;
use flow_engine::prelude::*;
use indexmap::IndexMap;
use serde_json::Value;
use std::time::Duration;

pub struct Ec2Run;

/// A launch template, by id or by name, at a version (default: its default version).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplate {
    /// `lt-…`
    pub id: Option<String>,
    pub name: Option<String>,
    /// A version number, `$Latest` or `$Default` (default).
    pub version: Option<Scalar>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Until every instance is running (default).
    #[default]
    Running,
    /// Return as soon as the launch is accepted.
    None,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Ec2RunParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    /// The launch template to launch from.
    pub launch_template: Option<LaunchTemplate>,
    /// An AMI, when there is no launch template (or to override its image).
    pub image_id: Option<String>,
    /// e.g. `t3.small` (default: the template's).
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Option<Vec<String>>,
    pub key_name: Option<String>,
    /// How many instances (default 1).
    pub count: Option<u32>,
    /// Tags of the instances (and their volumes).
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// `running` (default) or `none`.
    #[serde(default)]
    pub wait: WaitFor,
    /// How long to wait for `running` (default 10m).
    pub timeout: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Ec2RunOutputs {
    /// The first instance launched.
    pub instance_id: String,
    pub instance_ids: Vec<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub state: String,
    /// Every instance: id, state, type, launch_time, private_ip, public_ip, tags.
    pub instances: Vec<Value>,
    /// False when an earlier attempt of this step had already launched them.
    pub launched: bool,
}

/// More instances than this in one step is a typo, not a plan.
const MAX_COUNT: u32 = 100;

/// The tags flow adds, by which a retried or resumed step finds what it launched.
const RUN_TAG: &str = "flow:run";
const STEP_TAG: &str = "flow:step";

fn step_tag(ctx: &StepContext) -> String {
    match ctx.element {
        Some(element) => format!("{}[{element}]", ctx.step_id),
        None => ctx.step_id.clone(),
    }
}

impl Ec2RunParams {
    fn template_spec(&self) -> Option<LaunchTemplateSpecification> {
        let template = self.launch_template.as_ref()?;
        let version = template.version.as_ref().map(|v| match &v.0 {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        Some(
            LaunchTemplateSpecification::builder()
                .set_launch_template_id(template.id.clone())
                .set_launch_template_name(template.name.clone())
                .set_version(version)
                .build(),
        )
    }

    fn check(&self) -> Result<(), StepError> {
        if let Some(count) = self.count
            && !(1..=MAX_COUNT).contains(&count)
        {
            return Err(StepError::failed(format!(
                "`count` is {count}: give 1 to {MAX_COUNT} instances"
            )));
        }
        match &self.launch_template {
            Some(LaunchTemplate {
                id: Some(_),
                name: Some(_),
                ..
            }) => Err(StepError::failed(
                "`launch_template` takes `id` or `name`, not both",
            )),
            Some(LaunchTemplate {
                id: None,
                name: None,
                ..
            }) => Err(StepError::failed("`launch_template` needs `id` or `name`")),
            None if self.image_id.is_none() => Err(StepError::failed(
                "give `launch_template` (id or name), or `image_id`",
            )),
            _ => Ok(()),
        }
    }

    fn source(&self) -> String {
        match &self.launch_template {
            Some(template) => format!(
                "launch template {} (version {})",
                template
                    .id
                    .as_deref()
                    .or(template.name.as_deref())
                    .unwrap_or("?"),
                template
                    .version
                    .as_ref()
                    .map(|v| v.0.as_str().map(str::to_string).unwrap_or(v.0.to_string()))
                    .unwrap_or_else(|| "$Default".into())
            ),
            None => format!("image {}", self.image_id.as_deref().unwrap_or("?")),
        }
    }
}

impl StepType for Ec2Run {
    const NAME: &'static str = "ec2.run";
    const SUMMARY: &'static str =
        "Launch EC2 instances from a launch template, once per run, and wait until running";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"launch:
  type: ec2.run
  with:
    launch_template: { id: lt-09f38dac82c204d58 }
    instance_type: t3.small
    security_group_ids: [sg-0b3b200323d36ce2e]
    tags: { Name: redis-restore, Snapshot: "{{ params.snapshot }}" }"#;
    type Params = Ec2RunParams;
    type Outputs = Ec2RunOutputs;

    async fn describe(&self, params: &Ec2RunParams, _: &PlanContext) -> Description {
        let count = params.count.unwrap_or(1);
        let mut description = Description::new(
            Action::Create,
            format!(
                "launch {count} instance{} from {}",
                if count == 1 { "" } else { "s" },
                params.source()
            ),
        );
        if let Err(problem) = params.check() {
            return Description::new(Action::Failed, problem.message().to_string());
        }
        let optional = [
            ("instance type", params.instance_type.clone()),
            (
                "image",
                params
                    .image_id
                    .clone()
                    .filter(|_| params.launch_template.is_some()),
            ),
            ("subnet", params.subnet_id.clone()),
            (
                "security groups",
                params.security_group_ids.as_ref().map(|g| g.join(", ")),
            ),
            ("key pair", params.key_name.clone()),
        ];
        for (label, value) in optional {
            if let Some(value) = value {
                description = description.detail(format!("{label}: {value}"));
            }
        }
        if !params.tags.is_empty() {
            let tags: Vec<String> = params
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            description = description.detail(format!("tags: {}", tags.join(", ")));
        }
        if params.wait == WaitFor::Running {
            description = description.detail("then wait until running");
        }
        description
    }

    fn permissions(
        &self,
        params: &RenderedParams<Ec2RunParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        let template = params.launch_template.as_ref();
        let one = |kind: &str, id: Option<&str>| arns.ec2(&format!("{kind}/{}", pattern(id)));
        // What RunInstances creates (new ids: any) and every resource it uses.
        let mut resources = vec![
            arns.ec2("instance/*"),
            arns.ec2("volume/*"),
            arns.ec2("network-interface/*"),
            one("subnet", params.subnet_id.as_deref()),
            arns.image(params.image_id.as_deref()),
            one("key-pair", params.key_name.as_deref()),
        ];
        match params.security_group_ids.as_deref() {
            Some(groups) if !groups.is_empty() => resources.extend(
                groups
                    .iter()
                    .map(|id| one("security-group", Some(id.as_str()))),
            ),
            _ => resources.push(one("security-group", None)),
        }
        // IAM names a launch template by its id only.
        if let Some(template) = template {
            resources.push(one("launch-template", template.id.as_deref()));
        }
        let from_template: Vec<&str> = [
            ("the image", params.image_id.is_none()),
            ("the subnet", params.subnet_id.is_none()),
            ("the key pair", params.key_name.is_none()),
            (
                "the security groups",
                params
                    .security_group_ids
                    .as_ref()
                    .is_none_or(|g| g.is_empty()),
            ),
            (
                "the template (given by name)",
                template.is_some_and(|t| t.id.is_none()),
            ),
        ]
        .into_iter()
        .filter(|(_, open)| *open)
        .map(|(what, _)| what)
        .collect();
        let mut why = vec![
            "what it launches has no id yet: `instance/*`, `volume/*`, `network-interface/*`"
                .to_string(),
        ];
        if !from_template.is_empty() {
            why.push(format!(
                "{} {} not given (the launch template's, which flow does not read offline): `*`",
                from_template.join(", "),
                if from_template.len() == 1 {
                    "is"
                } else {
                    "are"
                }
            ));
        }
        let mut fields: Vec<(&str, Option<&str>)> = vec![
            ("subnet_id", params.subnet_id.as_deref()),
            ("image_id", params.image_id.as_deref()),
            ("key_name", params.key_name.as_deref()),
        ];
        fields.extend(
            template
                .and_then(|t| t.id.as_deref())
                .map(|id| ("launch_template.id", Some(id))),
        );
        fields.extend(
            params
                .security_group_ids
                .iter()
                .flatten()
                .map(|id| ("security_group_ids", Some(id.as_str()))),
        );
        let unknown: Vec<(&str, Option<&str>)> =
            fields.into_iter().filter(|(_, v)| v.is_some()).collect();
        why.extend(wider_because(&unknown));
        let run = Permission::new(["ec2:RunInstances"], resources).note(why.join("; "));
        // Its tags are set by the launch itself, and only there.
        let tag = Permission::new(
            ["ec2:CreateTags"],
            [arns.ec2("instance/*"), arns.ec2("volume/*")],
        )
        .condition("StringEquals", "ec2:CreateAction", "RunInstances");
        let mut permissions = Permissions::new(vec![run, tag, describe_instances()]);
        if template.is_some() {
            permissions = permissions.with_note(
                "a launch template that names an instance profile also needs iam:PassRole on that profile's role (flow does not read the template offline)",
            );
        }
        Ok(permissions)
    }

    async fn apply(
        &self,
        params: Ec2RunParams,
        ctx: &StepContext,
    ) -> Result<Ec2RunOutputs, StepError> {
        params.check()?;
        let client = clients(ctx).ec2(&params.aws).await;
        let step = step_tag(ctx);
        let earlier = describe(
            &client,
            &[],
            vec![
                filter(&format!("tag:{RUN_TAG}"), &[&ctx.run_id]),
                filter(&format!("tag:{STEP_TAG}"), &[&step]),
                filter(
                    "instance-state-name",
                    &["pending", "running", "stopping", "stopped"],
                ),
            ],
        )
        .await?;
        let launched = earlier.is_empty();
        let ids: Vec<String> = if launched {
            let count = params.count.unwrap_or(1).max(1) as i32;
            let mut tags: Vec<Tag> = params
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            tags.push(Tag::builder().key(RUN_TAG).value(&ctx.run_id).build());
            tags.push(Tag::builder().key(STEP_TAG).value(&step).build());
            let tagged = |kind: ResourceType| {
                TagSpecification::builder()
                    .resource_type(kind)
                    .set_tags(Some(tags.clone()))
                    .build()
            };
            let reservation = client
                .run_instances()
                .set_launch_template(params.template_spec())
                .set_image_id(params.image_id.clone())
                .set_instance_type(params.instance_type.as_deref().map(InstanceType::from))
                .set_subnet_id(params.subnet_id.clone())
                .set_security_group_ids(params.security_group_ids.clone())
                .set_key_name(params.key_name.clone())
                .min_count(count)
                .max_count(count)
                .client_token(&ctx.idempotency_token)
                .tag_specifications(tagged(ResourceType::Instance))
                .tag_specifications(tagged(ResourceType::Volume))
                .send()
                .await
                .map_err(|e| aws_error("ec2", "RunInstances", e))?;
            reservation
                .instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect()
        } else {
            let ids: Vec<String> = earlier
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect();
            ctx.output(
                "log",
                &format!(
                    "{} already launched by an earlier attempt of this step (tag {STEP_TAG}={step}): not launching again",
                    ids.join(", ")
                ),
            );
            ids
        };
        if ids.is_empty() {
            return Err(StepError::failed(
                "ec2 RunInstances answered without an instance",
            ));
        }
        let instances = match params.wait {
            WaitFor::Running => {
                let timeout = params
                    .timeout
                    .map(|t| t.0)
                    .unwrap_or(Duration::from_secs(600));
                wait_for(ctx, &client, &ids, Wanted::Running, timeout).await?
            }
            WaitFor::None => describe(&client, &ids, Vec::new()).await?,
        };
        let instances: Vec<Value> = instances.iter().map(instance_json).collect();
        print_table(ctx, &instances);
        let first = instances.first().cloned().unwrap_or(Value::Null);
        let text = |key: &str| first[key].as_str().map(str::to_string);
        Ok(Ec2RunOutputs {
            instance_id: ids[0].clone(),
            instance_ids: ids,
            private_ip: text("private_ip"),
            public_ip: text("public_ip"),
            state: text("state").unwrap_or_default(),
            instances,
            launched,
        })
    }
}
