//! `ec2.attach_security_groups`: adds security groups to instances, keeping the groups they
//! have. `security_group_ids` given at launch *replace* a launch template's groups
//! (RunInstances overrides the template), so "this group as well" is a change made after
//! the launch: ModifyInstanceAttribute with the union of the instance's groups and these.
//! AWS calls: DescribeInstances, ModifyInstanceAttribute.

use crate::ec2_instances::{describe, describe_instances};
use crate::iam::{Arns, wider_because, with_reason};
use crate::target::{AwsTarget, aws_error, clients};
use aws_sdk_ec2::types::Instance;
use flow_engine::permission::pattern;
use flow_engine::prelude::*;
use indexmap::IndexMap;

pub struct Ec2AttachSecurityGroups;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AttachParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    /// The instances; each keeps the groups it has (an empty list does nothing).
    pub instance_ids: Vec<String>,
    /// The groups to add (`sg-…`).
    pub security_group_ids: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AttachOutputs {
    /// Each instance's groups afterwards: `{ "i-…": ["sg-…", …] }`.
    pub groups: IndexMap<String, Vec<String>>,
    /// False when every instance had every group already.
    pub changed: bool,
}

fn groups_of(instance: &Instance) -> Vec<String> {
    instance
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect()
}

impl AttachParams {
    /// The groups an instance should have: its own, then the ones it lacks, in order.
    fn union(&self, current: &[String]) -> Vec<String> {
        let mut union = current.to_vec();
        for group in &self.security_group_ids {
            if !union.contains(group) {
                union.push(group.clone());
            }
        }
        union
    }

    fn headline(&self) -> String {
        format!(
            "attach security group{} {} to {} (beside the groups {})",
            if self.security_group_ids.len() == 1 {
                ""
            } else {
                "s"
            },
            self.security_group_ids.join(", "),
            self.instance_ids.join(", "),
            if self.instance_ids.len() == 1 {
                "it has"
            } else {
                "they have"
            }
        )
    }
}

impl StepType for Ec2AttachSecurityGroups {
    const NAME: &'static str = "ec2.attach_security_groups";
    const SUMMARY: &'static str =
        "Add security groups to instances, keeping the groups they have (a launch template's)";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"redis_group:
  type: ec2.attach_security_groups
  with:
    instance_ids: ["{{ steps.launch.instance_id }}"]
    security_group_ids: [sg-0b3b200323d36ce2e]"#;
    type Params = AttachParams;
    type Outputs = AttachOutputs;

    async fn describe(&self, params: &AttachParams, ctx: &PlanContext) -> Description {
        let description = Description::new(Action::Change, params.headline());
        let known = !params
            .instance_ids
            .iter()
            .any(|id| flow_engine::evaluate::mentions_unknown(id));
        if ctx.offline || !known || params.instance_ids.is_empty() {
            return description;
        }
        let client = clients(ctx).ec2(&params.aws).await;
        match describe(&client, &params.instance_ids, Vec::new()).await {
            Ok(instances) => instances.iter().fold(description, |d, instance| {
                let current = groups_of(instance);
                let id = instance.instance_id().unwrap_or_default();
                if params.union(&current) == current {
                    d.detail(format!("{id}: has them already ({})", current.join(", ")))
                } else {
                    d.detail(format!(
                        "{id}: {} → {}",
                        current.join(", "),
                        params.union(&current).join(", ")
                    ))
                }
            }),
            Err(error) => description.detail(format!("cannot read them now: {}", error.message())),
        }
    }

    fn permissions(
        &self,
        params: &RenderedParams<AttachParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        if params.instance_ids.is_empty() {
            // No instance: no call.
            return Ok(Permissions::default());
        }
        if params.security_group_ids.is_empty() {
            // Only the plan looks at the instances.
            return Ok(Permissions::new(vec![describe_instances()]));
        }
        let arns = Arns::new(&params.aws, ctx);
        let mut resources: Vec<String> = params
            .instance_ids
            .iter()
            .map(|id| arns.ec2(&format!("instance/{}", pattern(Some(id)))))
            .collect();
        // The groups sent are the instance's own (a launch template's: not known before the
        // run) and these: IAM checks each of them.
        resources.push(arns.ec2("security-group/*"));
        let mut why = vec![
            "the groups sent are each instance's own (known only when it is read) and the added ones: `security-group/*`".to_string(),
        ];
        let fields: Vec<(&str, Option<&str>)> = params
            .instance_ids
            .iter()
            .map(|id| ("instance_ids", Some(id.as_str())))
            .collect();
        why.extend(wider_because(&fields));
        let modify = Permission::new(["ec2:ModifyInstanceAttribute"], resources);
        Ok(Permissions::new(vec![
            with_reason(modify, Some(why.join("; "))),
            describe_instances(),
        ]))
    }

    async fn apply(
        &self,
        params: AttachParams,
        ctx: &StepContext,
    ) -> Result<AttachOutputs, StepError> {
        let mut outputs = AttachOutputs {
            groups: IndexMap::new(),
            changed: false,
        };
        if params.instance_ids.is_empty() || params.security_group_ids.is_empty() {
            return Ok(outputs);
        }
        let client = clients(ctx).ec2(&params.aws).await;
        for instance in describe(&client, &params.instance_ids, Vec::new()).await? {
            let id = instance.instance_id().unwrap_or_default().to_string();
            let current = groups_of(&instance);
            let union = params.union(&current);
            if union != current {
                client
                    .modify_instance_attribute()
                    .instance_id(&id)
                    .set_groups(Some(union.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "ModifyInstanceAttribute", e))?;
                ctx.output(
                    "log",
                    &format!("{id}: security groups {}", union.join(", ")),
                );
                outputs.changed = true;
            } else {
                ctx.output(
                    "log",
                    &format!("{id}: has them already ({})", current.join(", ")),
                );
            }
            outputs.groups.insert(id, union);
        }
        for id in &params.instance_ids {
            if !outputs.groups.contains_key(id) {
                return Err(StepError::failed(format!(
                    "ec2 DescribeInstances did not return instance {id}"
                )));
            }
        }
        Ok(outputs)
    }
}
