//! `ssh.wait`: waits until a host answers over SSH and a command succeeds there (by default
//! `true`): for a new instance that is still booting. A refused or timed-out connection is
//! "not yet"; a host key that does not match fails at once.

use super::{Sessions, SshTarget, target::is_not_yet};
use flow_engine::duration::format_duration;
use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;
use std::time::{Duration, Instant};

pub struct SshWait;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshWaitParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The command that must succeed (default: `true`).
    #[schemars(extend("x-flow-argv" = true))]
    pub command: Option<Vec<Text>>,
    /// How long to keep trying (default 5m).
    pub timeout: Option<FlowDuration>,
    /// Pause between tries (default 2s).
    pub interval: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SshWaitOutputs {
    /// Seconds waited.
    pub waited: f64,
}

impl SshWaitParams {
    fn command(&self) -> String {
        match &self.command {
            Some(argv) if !argv.is_empty() => argv
                .iter()
                .map(|a| shell_quote(&a.0))
                .collect::<Vec<_>>()
                .join(" "),
            _ => "true".into(),
        }
    }
}

impl StepType for SshWait {
    const NAME: &'static str = "ssh.wait";
    const SUMMARY: &'static str = "Wait until a host answers over SSH and a command succeeds there";
    const EFFECT: Effect = Effect::Read;
    // Waiting only passes time: the plan does not wait.
    const RUNS_IN_PLAN: bool = false;
    const EXAMPLE: &'static str = r#"ssh_up:
  type: ssh.wait
  with:
    host: "{{ steps.launch.private_ip }}"
    user: admin
    timeout: 5m"#;
    type Params = SshWaitParams;
    type Outputs = SshWaitOutputs;

    async fn describe(&self, params: &SshWaitParams, _: &PlanContext) -> Description {
        let timeout = params
            .timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(300));
        Description::new(
            Action::Read,
            format!(
                "wait up to {} for `{}` to succeed on {}",
                format_duration(timeout),
                params.command(),
                params.target.display()
            ),
        )
    }

    async fn apply(
        &self,
        params: SshWaitParams,
        ctx: &StepContext,
    ) -> Result<SshWaitOutputs, StepError> {
        let timeout = params
            .timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(300));
        let interval = params
            .interval
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(2));
        let sessions = ctx.resource::<Sessions>();
        let command = params.command();
        let started = Instant::now();
        loop {
            // Each try ends with the wait: a command that hangs does not outlast `timeout`.
            let left = timeout.saturating_sub(started.elapsed());
            let attempt = async {
                let session = sessions.live(&params.target).await?;
                // The host's `timeout` ends a try that hangs there too, not only our wait for it.
                let bounded = format!(
                    "timeout -k 2 {} sh -c {} 2>/dev/null || exit $?",
                    left.as_secs().max(1),
                    shell_quote(&command)
                );
                let output = session.raw_command(&bounded).output().await;
                Ok::<_, StepError>(output)
            };
            let tried = match tokio::time::timeout(left, attempt).await {
                Ok(tried) => tried,
                Err(_) => {
                    return Err(StepError::failed(format!(
                        "{} did not answer within {}: `{command}` was still running",
                        params.target.display(),
                        format_duration(timeout)
                    )));
                }
            };
            let why_not = match tried {
                Ok(output) => match output {
                    Ok(output) if output.status.success() => {
                        return Ok(SshWaitOutputs {
                            waited: started.elapsed().as_secs_f64(),
                        });
                    }
                    Ok(output) => format!(
                        "`{command}` exited with {}",
                        output.status.code().unwrap_or(-1)
                    ),
                    Err(e) => {
                        sessions.forget(&params.target).await;
                        e.to_string()
                    }
                },
                Err(error) if is_not_yet(&error) => {
                    sessions.forget(&params.target).await;
                    error.message().to_string()
                }
                Err(error) => return Err(error),
            };
            if started.elapsed() + interval > timeout {
                return Err(StepError::failed(format!(
                    "{} did not answer within {}: {why_not}",
                    params.target.display(),
                    format_duration(timeout)
                )));
            }
            tokio::time::sleep(interval).await;
        }
    }
}
