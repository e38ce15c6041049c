//! `ec2.find`: the instances that match filters (`tag:Role: redis`, `instance-state-name`, …)
//! or ids, as a table and as outputs — "which restore instances are still around?".

use crate::ec2_instances::{describe, describe_instances, filter, instance_json, print_table};
use crate::target::{AwsTarget, clients};
use flow_engine::prelude::*;
use indexmap::IndexMap;
use serde_json::Value;

pub struct Ec2Find;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Ec2FindParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    /// EC2 filters: a name (`tag:Role`, `instance-type`, `instance-state-name`, …) and a value
    /// or list of values (any matches). Without `instance-state-name`, terminated instances
    /// (which AWS lists for an hour) are left out.
    #[serde(default)]
    pub filters: IndexMap<String, OneOrMany<String>>,
    /// Only these instances.
    #[serde(default)]
    pub instance_ids: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Ec2FindOutputs {
    /// id, state, type, launch_time, private_ip, public_ip, tags — oldest launch first.
    pub instances: Vec<Value>,
    pub count: usize,
    /// The ids, in the same order (for `ec2.stop`/`ec2.terminate`).
    pub instance_ids: Vec<String>,
}

impl StepType for Ec2Find {
    const NAME: &'static str = "ec2.find";
    const SUMMARY: &'static str = "Find EC2 instances by filters (tags, state, type) or ids";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"restores:
  type: ec2.find
  with:
    filters:
      "tag:RedisProvisionedBy": redis-restore-script
      instance-state-name: [pending, running]"#;
    type Params = Ec2FindParams;
    type Outputs = Ec2FindOutputs;

    async fn describe(&self, params: &Ec2FindParams, _: &PlanContext) -> Description {
        let mut what: Vec<String> = params
            .filters
            .iter()
            .map(|(name, values)| format!("{name}={}", values.clone().into_vec().join("|")))
            .collect();
        what.extend(params.instance_ids.iter().cloned());
        Description::new(
            Action::Read,
            if what.is_empty() {
                "find instances".to_string()
            } else {
                format!("find instances: {}", what.join(", "))
            },
        )
    }

    fn permissions(
        &self,
        _: &RenderedParams<Ec2FindParams>,
        _: &PermissionContext,
    ) -> Result<Permissions, String> {
        Ok(Permissions::new(vec![describe_instances()]))
    }

    async fn apply(
        &self,
        params: Ec2FindParams,
        ctx: &StepContext,
    ) -> Result<Ec2FindOutputs, StepError> {
        let client = clients(ctx).ec2(&params.aws).await;
        let mut filters: Vec<_> = params
            .filters
            .iter()
            .map(|(name, values)| {
                let values = values.clone().into_vec();
                filter(name, &values.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .collect();
        if !params.filters.contains_key("instance-state-name") {
            filters.push(filter(
                "instance-state-name",
                &["pending", "running", "shutting-down", "stopping", "stopped"],
            ));
        }
        let found = describe(&client, &params.instance_ids, filters).await?;
        let mut instances: Vec<Value> = found.iter().map(instance_json).collect();
        instances.sort_by(|a, b| {
            (a["launch_time"].as_str(), a["id"].as_str())
                .cmp(&(b["launch_time"].as_str(), b["id"].as_str()))
        });
        print_table(ctx, &instances);
        Ok(Ec2FindOutputs {
            count: instances.len(),
            instance_ids: instances
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect(),
            instances,
        })
    }
}
