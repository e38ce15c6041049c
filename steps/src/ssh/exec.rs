//! `ssh.exec`: runs a command on a host over the run's connection to it — an argv quoted for
//! the remote shell (nothing splits or expands), or an explicit `shell:` script; optionally
//! under `sudo -n` (never a password prompt).

use super::remote_kill::RemoteKill;
use super::{Sessions, SshTarget};
use crate::core::exec::{
    COMMAND_STREAMS, Captured, ExecOutputs, Parse, capture, failure_message, parse_outputs,
    reporter,
};
use crate::core::program::Program;
use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;
use indexmap::IndexMap;
use openssh::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt};

/// What the remote shell prints (on stderr, before the command's own) before it becomes
/// the command.
const PID_MARK: &str = "flow-remote-pid:";

pub struct SshExec;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshExecParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The program and its arguments, each quoted for the remote shell.
    #[schemars(length(min = 1), extend("x-flow-argv" = true))]
    pub command: Option<Vec<Text>>,
    /// A script for the remote `sh -c`, when you need pipes or redirection.
    #[schemars(extend("x-flow-argv" = true))]
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

/// Reads `NAME=<base64 value>` lines from stdin up to a `--` line and exports them; the rest
/// of stdin is the command's. `read` takes a pipe byte by byte, so nothing more is consumed.
const ENV_READER: &str = r#"while IFS= read -r kv && [ "$kv" != -- ]; do export "${kv%%=*}=$(printf '%s' "${kv#*=}" | base64 -d)"; done;"#;

impl SshExecParams {
    /// What goes on the command's stdin: the env block (when there is `env`), then `stdin`.
    fn input(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        if self.env.is_empty() {
            return self.stdin.as_ref().map(|s| s.as_bytes().to_vec());
        }
        let mut input = String::new();
        for (key, value) in &self.env {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&value.0);
            input.push_str(&format!("{key}={encoded}\n"));
        }
        input.push_str("--\n");
        input.push_str(self.stdin.as_deref().unwrap_or(""));
        Some(input.into_bytes())
    }

    /// The command line for the remote shell, and how to show it.
    pub fn remote_command(&self) -> Result<(String, String), String> {
        let program = Program::from_fields(&self.command, &self.shell)?;
        let shown = program.shown();
        let mut line = String::new();
        if let Some(cwd) = &self.cwd {
            line.push_str(&format!("cd {} && ", shell_quote(cwd)));
        }
        if self.sudo {
            line.push_str("sudo -n -- ");
        }
        if let Some(bad) = self.env.keys().find(|k| !is_env_name(k)) {
            return Err(format!(
                "`env` name `{bad}` is not a variable name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        if self.env.is_empty() {
            line.push_str(&program.command_line());
        } else {
            // Values come on stdin, never in a command line: another user of the host would
            // see a secret in `ps`. The reader runs after `sudo`, which clears the environment.
            let script = format!("{ENV_READER} exec {}", program.command_line());
            line.push_str(&format!("sh -c {}", shell_quote(&script)));
        }
        let mut shown = shown;
        if !self.env.is_empty() {
            let names: Vec<&str> = self.env.keys().map(String::as_str).collect();
            shown = format!("env {}=… {shown}", names.join("=… "));
        }
        if self.sudo {
            shown = format!("sudo -n {shown}");
        }
        if let Some(cwd) = &self.cwd {
            shown = format!("cd {} && {shown}", shell_quote(cwd));
        }
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
    const STREAMS: &'static [(&'static str, &'static str)] = COMMAND_STREAMS;
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
        // The remote shell says its pid (the process group sshd made for the command) before
        // it becomes the command, so a timeout or Ctrl-C can end what runs there.
        let wrapped = format!("echo {PID_MARK}$$ >&2; exec sh -c {}", shell_quote(&line));
        let input = params.input();
        let mut command = session.raw_command(&wrapped);
        command
            .stdin(if input.is_some() {
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
        let guard = RemoteKill::new(
            ctx.resource::<Sessions>(),
            Arc::clone(&session),
            params.sudo,
        );
        let (stdin, stdout, stderr) = (
            child.stdin().take(),
            child.stdout().take(),
            child.stderr().take(),
        );
        // Each line reported as it comes, only the last MiB of each stream kept: as `exec`.
        let reporting = Arc::new(AtomicBool::new(true));
        let read_stdout = async {
            match stdout {
                Some(stdout) => capture(stdout, reporter(ctx, "stdout", &reporting)).await,
                None => Captured::default(),
            }
        };
        let read_stderr = async {
            let Some(stderr) = stderr else {
                return Captured::default();
            };
            let stderr = after_pid_mark(stderr, &guard).await;
            capture(stderr, reporter(ctx, "stderr", &reporting)).await
        };
        let (_, stdout, stderr) = tokio::join!(
            super::transfer::feed(stdin, input.as_deref()),
            read_stdout,
            read_stderr
        );
        let status = child
            .wait()
            .await
            .map_err(|e| StepError::failed(format!("`{shown}` on {host}: {e}")))?;
        guard.finished();
        // A command killed by a signal has no exit code; ssh reports 255 for its own failures.
        let exit_code = status.code().unwrap_or(-1);
        let ok_codes = params.ok_codes.clone().unwrap_or_else(|| vec![0]);
        if !ok_codes.contains(&exit_code) {
            let shown_stderr = ctx.shows_stream("stderr").then_some(stderr.text.as_str());
            let mut message = failure_message(&shown, exit_code, &ok_codes, shown_stderr);
            message.push_str(&format!(" (on {host})"));
            if params.sudo && stderr.text.contains("a password is required") {
                message.push_str(super::transfer::SUDO_WANTS_A_PASSWORD);
            }
            return Err(StepError::Failed(message));
        }
        parse_outputs(stdout, stderr, exit_code, params.parse)
    }
}

/// The longest line of the remote shell's start-up output looked at for the pid line, and
/// how many such lines: a `.bashrc` that prints without end is not held in memory.
const PRELUDE_LINE_MAX: u64 = 64 << 10;
const PRELUDE_LINES_MAX: usize = 50;

/// Reads the command's stderr up to the pid line (which comes first, as soon as the command
/// starts — after whatever the remote user's shell start-up prints, a `.bashrc` may write
/// to stderr) and tells `guard` the pid. Returns the stderr that follows, with what came
/// before the pid line in front of it: the command's stderr as it printed it.
async fn after_pid_mark(
    stderr: openssh::ChildStderr,
    guard: &RemoteKill,
) -> impl AsyncRead + Unpin {
    let mut stderr = tokio::io::BufReader::new(stderr);
    let mut before = Vec::new();
    for _ in 0..PRELUDE_LINES_MAX {
        let mut line = Vec::new();
        let read = (&mut stderr)
            .take(PRELUDE_LINE_MAX)
            .read_until(b'\n', &mut line)
            .await
            .unwrap_or(0);
        let pid = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.strip_prefix(PID_MARK))
            .and_then(|p| p.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            guard.started(pid);
            break;
        }
        before.extend_from_slice(&line);
        if read == 0 || !line.ends_with(b"\n") {
            break;
        }
    }
    std::io::Cursor::new(before).chain(stderr)
}

/// A name `env` can set: letters, digits and `_`, not starting with a digit.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
