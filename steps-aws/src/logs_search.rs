//! `logs.search`: the events of a CloudWatch Logs group that match a filter pattern since a
//! moment — "did the app log the new endpoint after the deploy?".

use crate::iam::Arns;
use crate::target::{AwsTarget, aws_error, clients};
use flow_engine::prelude::*;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct LogsSearch;

/// More events than this are not kept (the count says how many matched up to it).
const DEFAULT_LIMIT: usize = 10_000;
/// How many of them the step prints.
const SHOWN: usize = 20;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogsSearchParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub log_group: String,
    /// A CloudWatch Logs filter pattern (`ERROR`, `"exact phrase"`, `{ $.level = "error" }`);
    /// default: every event.
    pub filter_pattern: Option<String>,
    /// How far back to look (default 1h).
    pub since: Option<FlowDuration>,
    /// Only streams whose names start with this.
    pub stream_prefix: Option<String>,
    /// At most this many events (default 10000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogsSearchOutputs {
    /// `{ timestamp, stream, message }`, oldest first.
    pub events: Vec<Value>,
    pub count: usize,
}

impl StepType for LogsSearch {
    const NAME: &'static str = "logs.search";
    const SUMMARY: &'static str = "Search a CloudWatch Logs group for events matching a pattern";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"started:
  type: logs.search
  with:
    log_group: /blot/app
    filter_pattern: '"connected to redis"'
    since: 15m"#;
    type Params = LogsSearchParams;
    type Outputs = LogsSearchOutputs;

    async fn describe(&self, params: &LogsSearchParams, _: &PlanContext) -> Description {
        let since = params
            .since
            .map(|s| s.0)
            .unwrap_or(Duration::from_secs(3600));
        Description::new(
            Action::Read,
            format!(
                "search {} for {} in the last {}",
                params.log_group,
                params.filter_pattern.as_deref().unwrap_or("every event"),
                flow_engine::duration::format_duration(since)
            ),
        )
    }

    fn permissions(
        &self,
        params: &RenderedParams<LogsSearchParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        Ok(Arns::new(&params.aws, ctx).one(
            &["logs:FilterLogEvents"],
            Arns::log_group,
            "log_group",
            &params.log_group,
        ))
    }

    async fn apply(
        &self,
        params: LogsSearchParams,
        ctx: &StepContext,
    ) -> Result<LogsSearchOutputs, StepError> {
        let client = clients(ctx).logs(&params.aws).await;
        let since = params
            .since
            .map(|s| s.0)
            .unwrap_or(Duration::from_secs(3600));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let start = now.saturating_sub(since).as_millis() as i64;
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        let mut pages = client
            .filter_log_events()
            .log_group_name(&params.log_group)
            .set_filter_pattern(params.filter_pattern.clone())
            .set_log_stream_name_prefix(params.stream_prefix.clone())
            .start_time(start)
            .end_time(now.as_millis() as i64)
            .into_paginator()
            .send();
        let mut events = Vec::new();
        'pages: while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("logs", "FilterLogEvents", e))?;
            for event in page.events() {
                if events.len() >= limit {
                    break 'pages;
                }
                let stamp = event
                    .timestamp()
                    .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                    .map(|t| t.to_string());
                events.push(json!({
                    "timestamp": stamp,
                    "stream": event.log_stream_name(),
                    "message": event.message().unwrap_or_default().trim_end(),
                }));
            }
        }
        events.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
        let shown = events.len().min(SHOWN);
        if events.len() > shown {
            ctx.output(
                "log",
                &format!("{} events; the last {shown}:", events.len()),
            );
        }
        for event in &events[events.len() - shown..] {
            ctx.output(
                "log",
                &format!(
                    "{}  {}  {}",
                    event["timestamp"].as_str().unwrap_or("-"),
                    event["stream"].as_str().unwrap_or("-"),
                    event["message"].as_str().unwrap_or_default()
                ),
            );
        }
        Ok(LogsSearchOutputs {
            count: events.len(),
            events,
        })
    }
}
