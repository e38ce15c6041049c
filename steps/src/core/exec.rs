//! `exec`: runs a local command, as an argv list without a shell or as an explicit `shell:`.

use flow_engine::children::GroupGuard;
use flow_engine::prelude::*;
use indexmap::IndexMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub struct Exec;

/// How to read the command's stdout into outputs.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Parse {
    /// `stdout` as text.
    #[default]
    Text,
    /// Also `json`: stdout parsed as JSON.
    Json,
    /// Also `lines`: stdout split into non-empty lines.
    Lines,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    /// The program and its arguments, run directly (no shell, so nothing is re-interpreted).
    #[schemars(length(min = 1))]
    pub command: Option<Vec<Text>>,
    /// A script for `sh -c`, when you need pipes or redirection. Quote values with `| quote`.
    pub shell: Option<String>,
    /// Working directory (default: where flow runs).
    pub cwd: Option<String>,
    /// Extra environment variables.
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

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecOutputs {
    /// Standard output, without its trailing newline.
    pub stdout: String,
    /// Standard error, without its trailing newline.
    pub stderr: String,
    pub exit_code: i32,
    /// stdout parsed as JSON (with `parse: json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// stdout's non-empty lines (with `parse: lines`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<String>>,
}

impl ExecParams {
    /// The argv to run and how to show it.
    pub fn argv(&self) -> Result<(Vec<String>, String), String> {
        match (&self.command, &self.shell) {
            (Some(command), None) if !command.is_empty() => {
                let argv: Vec<String> = command.iter().map(|t| t.0.clone()).collect();
                let shown = argv
                    .iter()
                    .map(|a| flow_engine::template_env::shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ");
                Ok((argv, shown))
            }
            (Some(_), None) => Err("`command` is empty: give the program and its arguments".into()),
            (None, Some(script)) => Ok((
                vec!["sh".into(), "-c".into(), script.clone()],
                script.clone(),
            )),
            (Some(_), Some(_)) => {
                Err("give either `command` (an argv list) or `shell` (a script), not both".into())
            }
            (None, None) => Err("give `command` (an argv list) or `shell` (a script)".into()),
        }
    }
}

impl StepType for Exec {
    const DEFAULTS: Option<&'static str> = Some("exec");
    const NAME: &'static str = "exec";
    const SUMMARY: &'static str =
        "Run a local command (argv without a shell, or an explicit `shell:` script)";
    const EFFECT: Effect = Effect::Write;
    const EFFECT_OVERRIDABLE: bool = true;
    const EXACTLY_ONE_OF: &'static [&'static [&'static str]] = &[&["command", "shell"]];
    const EXAMPLE: &'static str = r#"scale_down:
  type: exec
  with:
    command: [kubectl, -n, october, scale, deploy/worker, --replicas=0]
count_keys:
  type: exec
  effect: read
  with:
    shell: redis-cli -p {{ params.port | quote }} dbsize
    parse: lines"#;
    type Params = ExecParams;
    type Outputs = ExecOutputs;

    async fn describe(&self, params: &ExecParams, _: &PlanContext) -> Description {
        match params.argv() {
            Ok((_, shown)) => {
                let one_line = shown.replace('\n', "\\n");
                let mut d = Description::new(Action::Change, format!("run: {one_line}"));
                if let Some(cwd) = &params.cwd {
                    d = d.detail(format!("in {cwd}"));
                }
                d
            }
            Err(e) => Description::new(Action::Skip, format!("error: {e}")),
        }
    }

    async fn apply(&self, params: ExecParams, ctx: &StepContext) -> Result<ExecOutputs, StepError> {
        let (argv, shown) = params.argv().map_err(StepError::Failed)?;
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(params.env.iter().map(|(k, v)| (k, &v.0)))
            .stdin(if params.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &params.cwd {
            command.current_dir(ctx.resolve_path(cwd));
        }
        let mut child = command.spawn().map_err(|e| {
            StepError::failed(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("cannot run `{}`: command not found", argv[0])
                }
                _ => format!("cannot run `{}`: {e}", argv[0]),
            })
        })?;
        let mut guard = GroupGuard::new(&child);
        if let (Some(text), Some(mut stdin)) = (params.stdin.as_ref(), child.stdin.take()) {
            let text = text.clone();
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let stdout = child.stdout.take().map(|s| collect_lines(s, ctx, "stdout"));
        let stderr = child.stderr.take().map(|s| collect_lines(s, ctx, "stderr"));
        let (stdout, stderr, status) = tokio::join!(
            async {
                match stdout {
                    Some(f) => f.await,
                    None => String::new(),
                }
            },
            async {
                match stderr {
                    Some(f) => f.await,
                    None => String::new(),
                }
            },
            child.wait()
        );
        guard.disarm();
        let status =
            status.map_err(|e| StepError::failed(format!("waiting for `{shown}`: {e}")))?;
        let exit_code = status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        });
        let ok_codes = params.ok_codes.clone().unwrap_or_else(|| vec![0]);
        if !ok_codes.contains(&exit_code) {
            return Err(StepError::failed(failure_message(
                &shown, exit_code, &ok_codes, &stderr,
            )));
        }
        parse_outputs(stdout, stderr, exit_code, params.parse)
    }
}

/// Reads a stream to the end, emitting each line as it comes.
async fn collect_lines<R: tokio::io::AsyncRead + Unpin>(
    stream: R,
    ctx: &StepContext,
    name: &str,
) -> String {
    let mut reader = BufReader::new(stream).lines();
    let mut all = String::new();
    while let Ok(Some(line)) = reader.next_line().await {
        ctx.output(name, &line);
        all.push_str(&line);
        all.push('\n');
    }
    all.truncate(all.trim_end_matches('\n').len());
    all
}

/// `command exited with 3 (expected 0)` and the last lines of stderr, which usually say why.
pub fn failure_message(shown: &str, exit_code: i32, ok_codes: &[i32], stderr: &str) -> String {
    let expected = ok_codes
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut message = format!("`{shown}` exited with {exit_code} (expected {expected})");
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    if !tail.is_empty() {
        message.push_str(": ");
        message.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    message
}

/// Builds `exec`-style outputs, parsing stdout as asked.
pub fn parse_outputs(
    stdout: String,
    stderr: String,
    exit_code: i32,
    parse: Parse,
) -> Result<ExecOutputs, StepError> {
    let json = match parse {
        Parse::Json => Some(serde_json::from_str(&stdout).map_err(|e| {
            StepError::failed(format!("stdout is not valid JSON (parse: json): {e}"))
        })?),
        _ => None,
    };
    let lines = (parse == Parse::Lines).then(|| {
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    });
    Ok(ExecOutputs {
        stdout,
        stderr,
        exit_code,
        json,
        lines,
    })
}
