//! What the CloudFormation step types share: a stack as it is now (or that there is none),
//! its outputs, waiting for it to settle, and why it failed.

use crate::target::aws_error;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Stack;
use flow_engine::prelude::*;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// The stack named `name`, or `None` when there is none (CloudFormation answers a
/// ValidationError "does not exist").
pub async fn find_stack(client: &Client, name: &str) -> Result<Option<Stack>, StepError> {
    match client.describe_stacks().stack_name(name).send().await {
        Ok(found) => Ok(found.stacks().first().cloned()),
        Err(error) => {
            use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
            if error
                .as_service_error()
                .and_then(|e| e.message())
                .is_some_and(|m| m.contains("does not exist"))
            {
                Ok(None)
            } else {
                Err(aws_error("cloudformation", "DescribeStacks", error))
            }
        }
    }
}

pub fn status_of(stack: &Stack) -> String {
    stack
        .stack_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// `{ OutputKey: OutputValue }`.
pub fn outputs_of(stack: &Stack) -> Map<String, Value> {
    stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_string(),
                Value::String(o.output_value().unwrap_or_default().to_string()),
            )
        })
        .collect()
}

/// Waits while the stack is in an `…_IN_PROGRESS` state (2 s, then up to every 10 s); the
/// stack as it settled, or `None` if it was deleted.
pub async fn settle(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<Option<Stack>, StepError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_secs(2);
    loop {
        let stack = find_stack(client, name).await?;
        let status = stack.as_ref().map(status_of).unwrap_or_default();
        // REVIEW_IN_PROGRESS is a stack waiting for its first change set: settled.
        if !status.ends_with("_IN_PROGRESS") || status == "REVIEW_IN_PROGRESS" {
            return Ok(stack);
        }
        if Instant::now() >= deadline {
            return Err(StepError::failed(format!(
                "stack {name} is still {status} after {}: flow stopped waiting, CloudFormation goes on (see its events)",
                flow_engine::duration::format_duration(timeout)
            )));
        }
        // The last pause ends at the deadline: one more look, then the verdict.
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// The resources that failed since `since` (epoch seconds), newest first:
/// `Bucket (AWS::S3::Bucket) CREATE_FAILED: reason` — or why the events cannot be read.
pub async fn failure_reasons(client: &Client, name: &str, since: i64) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut pages = client
        .describe_stack_events()
        .stack_name(name)
        .into_paginator()
        .send();
    'pages: while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                let error = aws_error("cloudformation", "DescribeStackEvents", error);
                reasons.push(format!("its events cannot be read: {}", error.message()));
                break;
            }
        };
        for event in page.stack_events() {
            if event.timestamp().is_some_and(|t| t.secs() < since) {
                break 'pages;
            }
            let status = event
                .resource_status()
                .map(|s| s.as_str())
                .unwrap_or_default();
            if status.ends_with("_FAILED") {
                reasons.push(format!(
                    "{} ({}) {status}: {}",
                    event.logical_resource_id().unwrap_or("?"),
                    event.resource_type().unwrap_or("?"),
                    event.resource_status_reason().unwrap_or("no reason given")
                ));
            }
        }
    }
    reasons
}
