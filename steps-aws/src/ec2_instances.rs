//! What the EC2 step types share: instances as flow shows them (one JSON shape, one table),
//! describing them across pages, and waiting for a state.

use crate::target::aws_error;
use aws_sdk_ec2::types::{Filter, Instance};
use flow_engine::prelude::*;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// The state an instance is waited for.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Wanted {
    #[default]
    Running,
    Stopped,
    Terminated,
}

impl Wanted {
    pub fn as_str(self) -> &'static str {
        match self {
            Wanted::Running => "running",
            Wanted::Stopped => "stopped",
            Wanted::Terminated => "terminated",
        }
    }

    /// Whether an instance in `state` can no longer reach this one (a terminated instance
    /// never runs again): waiting on would only time out.
    fn unreachable_from(self, state: &str) -> bool {
        match self {
            Wanted::Running | Wanted::Stopped => {
                matches!(state, "shutting-down" | "terminated")
            }
            Wanted::Terminated => false,
        }
    }
}

pub fn state_of(instance: &Instance) -> String {
    instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// An instance as step outputs show it: id, state, type, launch time, addresses, tags.
pub fn instance_json(instance: &Instance) -> Value {
    let tags: Map<String, Value> = instance
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                Value::String(t.value().unwrap_or_default().to_string()),
            )
        })
        .collect();
    json!({
        "id": instance.instance_id().unwrap_or_default(),
        "state": state_of(instance),
        "type": instance.instance_type().map(|t| t.as_str()).unwrap_or_default(),
        "launch_time": instance.launch_time().map(|t| t.to_string()),
        "private_ip": instance.private_ip_address(),
        "public_ip": instance.public_ip_address(),
        "tags": tags,
    })
}

/// A readable table of instances, one line each, for the step's output.
pub fn print_table(ctx: &StepContext, instances: &[Value]) {
    if instances.is_empty() {
        ctx.output("log", "no instances");
        return;
    }
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut rows = vec![vec![
        "id".to_string(),
        "state".into(),
        "type".into(),
        "private ip".into(),
        "launched".into(),
        "Name".into(),
    ]];
    for instance in instances {
        rows.push(vec![
            text(&instance["id"]),
            text(&instance["state"]),
            text(&instance["type"]),
            text(&instance["private_ip"]),
            text(&instance["launch_time"]),
            text(&instance["tags"]["Name"]),
        ]);
    }
    ctx.table(&rows);
}

/// The instances matching `ids` and `filters`, across every page.
pub async fn describe(
    client: &aws_sdk_ec2::Client,
    ids: &[String],
    filters: Vec<Filter>,
) -> Result<Vec<Instance>, StepError> {
    let mut pages = client
        .describe_instances()
        .set_instance_ids((!ids.is_empty()).then(|| ids.to_vec()))
        .set_filters((!filters.is_empty()).then_some(filters))
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("ec2", "DescribeInstances", e))?;
        for reservation in page.reservations() {
            instances.extend(reservation.instances().iter().cloned());
        }
    }
    Ok(instances)
}

pub fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// Polls until every instance of `ids` is in `wanted` (2 s, then up to every 10 s), and
/// fails at once when one can no longer get there, or after `timeout`, naming each
/// instance's state.
pub async fn wait_for(
    ctx: &StepContext,
    client: &aws_sdk_ec2::Client,
    ids: &[String],
    wanted: Wanted,
    timeout: Duration,
) -> Result<Vec<Instance>, StepError> {
    let began = Instant::now();
    let deadline = began + timeout;
    let mut pause = Duration::from_secs(2);
    loop {
        let instances = describe(client, ids, Vec::new()).await?;
        // The live view shows where the wait is (one line, replaced each look).
        let now: Vec<String> = instances
            .iter()
            .map(|i| format!("{} {}", i.instance_id().unwrap_or_default(), state_of(i)))
            .collect();
        ctx.progress(&format!(
            "waiting for {} ({} of {}): {}",
            wanted.as_str(),
            flow_engine::duration::format_duration(began.elapsed()),
            flow_engine::duration::format_duration(timeout),
            now.join(", ")
        ));
        if let Some(lost) = instances
            .iter()
            .find(|i| wanted.unreachable_from(&state_of(i)))
        {
            let reason = lost
                .state_reason()
                .and_then(|r| r.message())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            return Err(StepError::failed(format!(
                "{} is {}{reason}: it will never be {}",
                lost.instance_id().unwrap_or_default(),
                state_of(lost),
                wanted.as_str()
            )));
        }
        if instances.len() >= ids.len() && instances.iter().all(|i| state_of(i) == wanted.as_str())
        {
            return Ok(instances);
        }
        if Instant::now() >= deadline {
            let states: Vec<String> = instances
                .iter()
                .map(|i| format!("{} {}", i.instance_id().unwrap_or_default(), state_of(i)))
                .collect();
            return Err(StepError::failed(format!(
                "timed out after {} waiting for {} to be {} (now: {})",
                flow_engine::duration::format_duration(timeout),
                ids.join(", "),
                wanted.as_str(),
                states.join(", ")
            )));
        }
        // The last pause ends at the deadline: one more look, then the verdict.
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// `{ id: state }` of the instances.
pub fn states(instances: &[Instance]) -> Map<String, Value> {
    instances
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                Value::String(state_of(i)),
            )
        })
        .collect()
}

/// What `ec2.stop` and `ec2.terminate` take.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StateChangeParams {
    #[serde(flatten)]
    pub aws: crate::target::AwsTarget,
    /// The instances (an empty list does nothing).
    pub instance_ids: OneOrMany<String>,
    /// Wait until they got there (default true).
    pub wait: Option<bool>,
    /// How long to wait (default 10m).
    pub timeout: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StateChangeOutputs {
    /// `{ instance id: state }` after the call (and the wait).
    pub states: Map<String, Value>,
}

/// The plan line of a stop or terminate: each instance with its state and Name now, when
/// flow may look (not `--offline`).
pub async fn describe_change(
    verb: &str,
    params: &StateChangeParams,
    ctx: &PlanContext,
) -> Description {
    let ids = params.instance_ids.clone().into_vec();
    if ids.is_empty() {
        return Description::new(Action::Skip, format!("{verb} nothing: no instance ids"));
    }
    let mut description = Description::new(Action::Delete, format!("{verb} {}", ids.join(", ")));
    if ctx.offline {
        return description;
    }
    let client = crate::target::clients(ctx).ec2(&params.aws).await;
    if let Ok(found) = describe(&client, &ids, Vec::new()).await {
        for instance in found.iter().map(instance_json) {
            let name = instance["tags"]["Name"]
                .as_str()
                .map(|n| format!(", Name={n}"))
                .unwrap_or_default();
            description = description.detail(format!(
                "{} now {}{name}",
                instance["id"].as_str().unwrap_or_default(),
                instance["state"].as_str().unwrap_or_default()
            ));
        }
    }
    description
}

/// DescribeInstances: every EC2 step looks at its instances (and waits with it).
pub fn describe_instances() -> Permission {
    Permission::new(["ec2:DescribeInstances"], ["*"]).note(crate::iam::UNSCOPED_DESCRIBE)
}

/// Stopping or terminating the instances (`action`), then looking at them until they got
/// there; the plan looks at them too.
pub fn state_change_permissions(
    action: &str,
    params: &StateChangeParams,
    ctx: &PermissionContext,
) -> Permissions {
    let arns = crate::iam::Arns::new(&params.aws, ctx);
    let ids = params.instance_ids.clone().into_vec();
    if ids.is_empty() {
        // No instance: no call.
        return Permissions::default();
    }
    // A list known only after apply renders as one text: any instance.
    let resources: Vec<String> = ids
        .iter()
        .map(|id| {
            let id = flow_engine::permission::pattern(Some(id));
            arns.ec2(&format!("instance/{id}"))
        })
        .collect();
    let why = ids
        .iter()
        .find_map(|id| crate::iam::wider_because(&[("instance_ids", Some(id))]));
    Permissions::new(vec![
        crate::iam::with_reason(Permission::new([action], resources), why),
        describe_instances(),
    ])
}

/// Stops or terminates the instances (as `wanted` says), then waits for that state unless
/// told not to.
pub async fn change_state(
    params: StateChangeParams,
    ctx: &StepContext,
    wanted: Wanted,
) -> Result<StateChangeOutputs, StepError> {
    let ids = params.instance_ids.into_vec();
    if ids.is_empty() {
        return Ok(StateChangeOutputs { states: Map::new() });
    }
    let client = crate::target::clients(ctx).ec2(&params.aws).await;
    let called = match wanted {
        Wanted::Terminated => client
            .terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("ec2", "TerminateInstances", e)),
        _ => client
            .stop_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("ec2", "StopInstances", e)),
    };
    called?;
    let instances = if params.wait.unwrap_or(true) {
        let timeout = params
            .timeout
            .map(|t| t.0)
            .unwrap_or(Duration::from_secs(600));
        wait_for(ctx, &client, &ids, wanted, timeout).await?
    } else {
        describe(&client, &ids, Vec::new()).await?
    };
    let shown: Vec<Value> = instances.iter().map(instance_json).collect();
    print_table(ctx, &shown);
    Ok(StateChangeOutputs {
        states: states(&instances),
    })
}
