//! `redis.wait`: until the server answers PONG and has finished loading its data.

use super::{Connections, RedisTarget, info_text, reply};
use flow_engine::duration::format_duration;
use flow_engine::prelude::*;
use std::time::{Duration, Instant};

pub struct Wait;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitParams {
    #[serde(flatten)]
    pub target: RedisTarget,
    /// How long to wait at most (default 60s).
    pub timeout: Option<FlowDuration>,
    /// How often to try (default 500ms).
    pub interval: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WaitOutputs {
    /// Seconds waited.
    pub waited: f64,
}

impl Wait {
    async fn ready(&self, connections: &Connections, target: &RedisTarget) -> Result<(), String> {
        connections.forget(target).await;
        let pong = connections
            .query(target, &redis::cmd("PING"))
            .await
            .map_err(|e| e.to_string())?;
        if reply::as_text(&pong).as_deref() != Some("PONG") {
            return Err(format!("PING answered {:?}", reply::to_json(pong)));
        }
        let info = connections
            .query(target, redis::cmd("INFO").arg("persistence"))
            .await
            .map_err(|e| e.to_string())?;
        let info = info_text::parse(&reply::as_text(&info).unwrap_or_default());
        match info_text::field(&info, "loading").and_then(|v| v.as_i64()) {
            Some(0) | None => Ok(()),
            Some(_) => Err("still loading its data".into()),
        }
    }
}

impl StepType for Wait {
    const NAME: &'static str = "redis.wait";
    const SUMMARY: &'static str = "Wait until Redis answers PONG and is not loading";
    const EFFECT: Effect = Effect::Read;
    const RUNS_IN_PLAN: bool = false;
    const EXAMPLE: &'static str = r#"redis_up:
  type: redis.wait
  with: { url: redis://127.0.0.1:6379, timeout: 2m }"#;
    type Params = WaitParams;
    type Outputs = WaitOutputs;

    async fn describe(&self, params: &WaitParams, _: &PlanContext) -> Description {
        let timeout = params
            .timeout
            .map(|t| t.0)
            .unwrap_or(Duration::from_secs(60));
        Description::new(
            Action::Read,
            format!(
                "wait for {} (at most {})",
                params.target.display(),
                format_duration(timeout)
            ),
        )
    }

    async fn apply(&self, params: WaitParams, ctx: &StepContext) -> Result<WaitOutputs, StepError> {
        let connections = super::connections(ctx);
        let timeout = params
            .timeout
            .map(|t| t.0)
            .unwrap_or(Duration::from_secs(60));
        let interval = params
            .interval
            .map(|t| t.0)
            .unwrap_or(Duration::from_millis(500));
        let began = Instant::now();
        loop {
            let last_error = match self.ready(&connections, &params.target).await {
                Ok(()) => {
                    return Ok(WaitOutputs {
                        waited: began.elapsed().as_secs_f64(),
                    });
                }
                Err(error) => error,
            };
            if began.elapsed() >= timeout {
                return Err(StepError::failed(format!(
                    "{} was not ready after {}: {last_error}",
                    params.target.display(),
                    format_duration(timeout)
                )));
            }
            // The last try comes at the timeout, not an interval before it.
            tokio::time::sleep(interval.min(timeout.saturating_sub(began.elapsed()))).await;
        }
    }
}
