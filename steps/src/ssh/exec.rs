//! `ssh.exec`: runs a command on a host over the run's connection to it — an argv quoted for
//! the remote shell (nothing splits or expands), or an explicit `shell:` script; optionally
//! under `sudo -n` (never a password prompt).

use super::{Sessions, SshTarget};
use crate::core::exec::{ExecOutputs, Parse, failure_message, parse_outputs};
use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;
use indexmap::IndexMap;
use openssh::Stdio;
use tokio::io::AsyncWriteExt;

pub struct SshExec;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshExecParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The program and its arguments, each quoted for the remote shell.
    #[schemars(length(min = 1))]
    pub command: Option<Vec<Text>>,
    /// A script for the remote `sh -c`, when you need pipes or redirection.
    pub shell: Option<String>,
    /// Run as root through `sudo -n` (fails at once if sudo wants a password).
    #[serde(default)]
    pub sudo: bool,
    /// Working directory on the host.
    pub cwd: Option<String>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: IndexMap<String, Text>,
    /// Text written to the command's stdin.
    pub stdin: Option<String>,
    /// Exit codes that count as success (default: [0]).
    pub ok_codes: Option<Vec<i32>>,
    /// How to read stdout: text (default), json, or lines.
    #[serde(default)]
    pub parse: Parse,
}

impl SshExecParams {
    /// The command line for the remote shell, and how to show it.
    pub fn remote_command(&self) -> Result<(String, String), String> {
        let (program, shown) = match (&self.command, &self.shell) {
            (Some(argv), None) if !argv.is_empty() => {
                let quoted = argv
                    .iter()
                    .map(|a| shell_quote(&a.0))
                    .collect::<Vec<_>>()
                    .join(" ");
                (quoted.clone(), quoted)
            }
            (Some(_), None) => {
                return Err("`command` is empty: give the program and its arguments".into());
            }
            (None, Some(script)) => (format!("sh -c {}", shell_quote(script)), script.clone()),
            (Some(_), Some(_)) => {
                return Err(
                    "give either `command` (an argv list) or `shell` (a script), not both".into(),
                );
            }
            (None, None) => {
                return Err("give `command` (an argv list) or `shell` (a script)".into());
            }
        };
        let mut line = String::new();
        if let Some(cwd) = &self.cwd {
            line.push_str(&format!("cd {} && ", shell_quote(cwd)));
        }
        if self.sudo {
            line.push_str("sudo -n -- ");
        }
        if !self.env.is_empty() {
            line.push_str("env ");
            for (key, value) in &self.env {
                line.push_str(&shell_quote(&format!("{key}={}", value.0)));
                line.push(' ');
            }
        }
        line.push_str(&program);
        let shown = if self.sudo {
            format!("sudo {shown}")
        } else {
            shown
        };
        Ok((line, shown))
    }
}

impl StepType for SshExec {
    const NAME: &'static str = "ssh.exec";
    const SUMMARY: &'static str =
        "Run a command on a host over SSH (argv or shell, sudo, env, stdin)";
    const EFFECT: Effect = Effect::Write;
    const EFFECT_OVERRIDABLE: bool = true;
    const EXACTLY_ONE_OF: &'static [&'static [&'static str]] = &[&["command", "shell"]];
    const EXAMPLE: &'static str = r#"restart:
  type: ssh.exec
  with:
    host: web1
    user: deploy
    command: [docker, compose, restart, app]
    sudo: true"#;
    type Params = SshExecParams;
    type Outputs = ExecOutputs;

    async fn describe(&self, params: &SshExecParams, _: &PlanContext) -> Description {
        match params.remote_command() {
            Ok((_, shown)) => Description::new(
                Action::Change,
                format!("run on {}: {shown}", params.target.display()),
            ),
            Err(e) => Description::new(Action::Failed, e),
        }
    }

    async fn apply(
        &self,
        params: SshExecParams,
        ctx: &StepContext,
    ) -> Result<ExecOutputs, StepError> {
        let (line, shown) = params.remote_command().map_err(StepError::Failed)?;
        let session = ctx.resource::<Sessions>().live(&params.target).await?;
        let mut command = session.raw_command(&line);
        command
            .stdin(if params.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let host = params.target.display();
        let mut child = command
            .spawn()
            .await
            .map_err(|e| StepError::failed(format!("cannot run `{shown}` on {host}: {e}")))?;
        if let (Some(text), Some(mut stdin)) = (&params.stdin, child.stdin().take()) {
            let text = text.clone();
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| StepError::failed(format!("`{shown}` on {host}: {e}")))?;
        let stdout = trimmed(&output.stdout);
        let stderr = trimmed(&output.stderr);
        for line in stdout.lines() {
            ctx.output("stdout", line);
        }
        for line in stderr.lines() {
            ctx.output("stderr", line);
        }
        // A command killed by a signal has no exit code; ssh reports 255 for its own failures.
        let exit_code = output.status.code().unwrap_or(-1);
        let ok_codes = params.ok_codes.clone().unwrap_or_else(|| vec![0]);
        if !ok_codes.contains(&exit_code) {
            let mut message = failure_message(&shown, exit_code, &ok_codes, &stderr);
            message.push_str(&format!(" (on {host})"));
            if params.sudo && stderr.contains("a password is required") {
                message.push_str("; sudo wants a password, and flow never types one: allow the command with NOPASSWD in sudoers");
            }
            return Err(StepError::Failed(message));
        }
        parse_outputs(stdout, stderr, exit_code, params.parse)
    }
}

/// Output as text (invalid UTF-8 replaced), without its trailing newline.
fn trimmed(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches('\n').to_string()
}
