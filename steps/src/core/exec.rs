//! `exec`: runs a local command, as an argv list without a shell or as an explicit `shell:`.

use super::program::Program;
use flow_engine::children::{self, GroupGuard};
use flow_engine::event::Event;
use flow_engine::prelude::*;
use indexmap::IndexMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    #[schemars(length(min = 1), extend("x-flow-argv" = true))]
    pub command: Option<Vec<Text>>,
    /// A script for `sh -c`, when you need pipes or redirection. Quote values with `| quote`.
    #[schemars(extend("x-flow-argv" = true))]
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
    /// Standard output, without its trailing newline (the last 1 MiB, after a line saying
    /// how many bytes were dropped, if there was more).
    pub stdout: String,
    /// Standard error, without its trailing newline (the last 1 MiB, likewise).
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
        let program = Program::from_fields(&self.command, &self.shell)?;
        Ok((program.argv(), program.shown()))
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
    const STREAMS: &'static [(&'static str, &'static str)] = COMMAND_STREAMS;
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
            // What a script needs to be idempotent itself (`aws … --client-token`): the same
            // across retries and resumes of this step. The step's `env` may override them.
            .env("FLOW_RUN_ID", &ctx.run_id)
            .env("FLOW_STEP_ID", &ctx.step_id)
            .env("FLOW_IDEMPOTENCY_TOKEN", &ctx.idempotency_token)
            .envs(params.env.iter().map(|(k, v)| (k, &v.0)))
            .stdin(if params.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children::prepare(&mut command);
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
        // The pipes are read by tasks of their own: if the step is cancelled (timeout,
        // Ctrl-C), they go on reading, unreported, while the command cleans up after SIGTERM
        // — a trap that prints must not die of SIGPIPE half way.
        let reporting = Arc::new(AtomicBool::new(true));
        let _quiet_when_cancelled = Quiet(Arc::clone(&reporting));
        let stdout = child
            .stdout
            .take()
            .map(|s| tokio::spawn(capture(s, reporter(ctx, "stdout", &reporting))));
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(capture(s, reporter(ctx, "stderr", &reporting))));
        let (stdout, stderr, status) = tokio::join!(joined(stdout), joined(stderr), child.wait());
        guard.disarm();
        let status =
            status.map_err(|e| StepError::failed(format!("waiting for `{shown}`: {e}")))?;
        let exit_code = status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        });
        let ok_codes = params.ok_codes.clone().unwrap_or_else(|| vec![0]);
        if !ok_codes.contains(&exit_code) {
            return Err(StepError::failed(failure_message(
                &shown,
                exit_code,
                &ok_codes,
                ctx.shows_stream("stderr").then_some(stderr.text.as_str()),
            )));
        }
        parse_outputs(stdout, stderr, exit_code, params.parse)
    }
}

/// Which stream each output of a command step is made from.
pub const COMMAND_STREAMS: &[(&str, &str)] = &[
    ("stdout", "stdout"),
    ("stderr", "stderr"),
    ("json", "stdout"),
    ("lines", "stdout"),
];

/// The most of each stream (stdout, stderr) `exec` keeps for its outputs: the last 1 MiB.
/// Every line is still reported as it comes (`-v`, `--output json`, the journal).
pub const OUTPUT_KEEP_BYTES: usize = 1 << 20;

/// The longest line an output event carries: a longer line is cut there, with a note of how
/// much was left out (the outputs keep it whole, within `OUTPUT_KEEP_BYTES`).
pub const EVENT_LINE_MAX_BYTES: usize = 16 << 10;

/// What `exec` kept of a stream: the text (without its trailing newlines) and how many bytes
/// before it were dropped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Captured {
    pub text: String,
    pub dropped: u64,
}

impl Captured {
    /// The text as an output: with a first line saying what was dropped, if anything was.
    pub fn shown(&self, name: &str) -> String {
        if self.dropped == 0 {
            return self.text.clone();
        }
        format!(
            "[flow: the first {} bytes of {name} were dropped; outputs keep the last {} MiB]\n{}",
            self.dropped,
            OUTPUT_KEEP_BYTES >> 20,
            self.text
        )
    }
}

/// Stops reporting a step's lines when dropped: when its step was cancelled.
struct Quiet(Arc<AtomicBool>);

impl Drop for Quiet {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Reports each line of `stream` as output of the step, while `reporting` holds.
pub(crate) fn reporter(
    ctx: &StepContext,
    stream: &'static str,
    reporting: &Arc<AtomicBool>,
) -> impl FnMut(&str) + Send + 'static {
    let emitter = Arc::clone(&ctx.plan.emitter);
    let step = ctx.plan.step_id.clone();
    let element = ctx.element;
    let reporting = Arc::clone(reporting);
    move |line| {
        if reporting.load(Ordering::Relaxed) {
            emitter.emit(Event::StepOutput {
                step: step.clone(),
                element,
                stream: stream.to_string(),
                line: line.to_string(),
            });
        }
    }
}

async fn joined(reader: Option<tokio::task::JoinHandle<Captured>>) -> Captured {
    match reader {
        Some(reader) => reader.await.unwrap_or_default(),
        None => Captured::default(),
    }
}

/// Reads a stream to its end whatever it holds (bytes that are not UTF-8 become U+FFFD),
/// reporting each line as it comes and keeping the last `OUTPUT_KEEP_BYTES`. Stopping early
/// would leave the command writing to a closed pipe: SIGPIPE.
pub(crate) async fn capture<R: tokio::io::AsyncRead + Unpin>(
    mut stream: R,
    mut report: impl FnMut(&str),
) -> Captured {
    let mut lines = Lines::default();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => lines.take(&buffer[..n], &mut report),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    lines.finish(&mut report)
}

/// Splits bytes into lines (`\n` or `\r\n`) for events, and keeps the tail of them.
#[derive(Default)]
struct Lines {
    /// The line being read, up to `EVENT_LINE_MAX_BYTES`.
    line: Vec<u8>,
    /// Bytes of the line being read beyond that.
    line_cut: u64,
    /// The last read ended in `\r`: dropped if a `\n` comes next.
    pending_cr: bool,
    /// The lines kept, each ended by `\n`; cut to the last `OUTPUT_KEEP_BYTES` as it grows.
    tail: Vec<u8>,
    /// Bytes of lines seen so far (counted as kept: line ends as `\n`).
    total: u64,
}

impl Lines {
    fn take(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&str)) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let line = &bytes[..end];
            if std::mem::take(&mut self.pending_cr) && !line.is_empty() {
                self.keep(b"\r");
            }
            self.keep(line.strip_suffix(b"\r").unwrap_or(line));
            self.end_line(emit);
            bytes = &bytes[end + 1..];
        }
        if bytes.is_empty() {
            return;
        }
        if std::mem::take(&mut self.pending_cr) {
            self.keep(b"\r");
        }
        match bytes.strip_suffix(b"\r") {
            Some(rest) => {
                self.keep(rest);
                self.pending_cr = true;
            }
            None => self.keep(bytes),
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = EVENT_LINE_MAX_BYTES.saturating_sub(self.line.len());
        let shown = room.min(bytes.len());
        self.line.extend_from_slice(&bytes[..shown]);
        self.line_cut += (bytes.len() - shown) as u64;
        self.push_tail(bytes);
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() >= 2 * OUTPUT_KEEP_BYTES {
            let cut = self.tail.len() - OUTPUT_KEEP_BYTES;
            self.tail.drain(..cut);
        }
    }

    fn end_line(&mut self, emit: &mut dyn FnMut(&str)) {
        let mut line = String::from_utf8_lossy(&self.line).into_owned();
        if self.line_cut > 0 {
            line.push_str(&format!(
                " … [{} more bytes of this line not shown]",
                self.line_cut
            ));
        }
        emit(&line);
        self.line.clear();
        self.line_cut = 0;
        self.push_tail(b"\n");
    }

    fn finish(mut self, emit: &mut dyn FnMut(&str)) -> Captured {
        if std::mem::take(&mut self.pending_cr) {
            self.keep(b"\r");
        }
        if !self.line.is_empty() || self.line_cut > 0 {
            self.end_line(emit);
        }
        let mut start = 0;
        if self.tail.len() > OUTPUT_KEEP_BYTES {
            start = self.tail.len() - OUTPUT_KEEP_BYTES;
            // Start at a whole line if there is one, else at a whole character.
            match self.tail[start..self.tail.len() - 1]
                .iter()
                .position(|&b| b == b'\n')
            {
                Some(newline) => start += newline + 1,
                None => {
                    while start < self.tail.len() && self.tail[start] & 0xC0 == 0x80 {
                        start += 1;
                    }
                }
            }
        }
        let kept = &self.tail[start..];
        let dropped = self.total - kept.len() as u64;
        let end = kept.len() - kept.iter().rev().take_while(|&&b| b == b'\n').count();
        Captured {
            text: String::from_utf8_lossy(&kept[..end]).into_owned(),
            dropped,
        }
    }
}

/// `command exited with 3 (expected 0)` and the last lines of stderr, which usually say why —
/// `None` when stderr is part of a secret output and is not shown. A script of several lines
/// is named, not quoted: views show an error's first line, which should say why the step
/// failed, not `set -eu`.
pub fn failure_message(
    shown: &str,
    exit_code: i32,
    ok_codes: &[i32],
    stderr: Option<&str>,
) -> String {
    let expected = ok_codes
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let what = match shown.trim_end().lines().count() {
        0 | 1 => format!("`{}`", shown.trim_end()),
        lines => format!("the shell script ({lines} lines)"),
    };
    let mut message = format!("{what} exited with {exit_code} (expected {expected})");
    let Some(stderr) = stderr else {
        message.push_str(" (stderr not shown: the step's output is secret)");
        return message;
    };
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    if !tail.is_empty() {
        message.push_str(": ");
        message.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    message
}

/// Builds `exec`-style outputs, parsing stdout as asked (what was kept of it: `json` fails
/// when some of it was dropped).
pub fn parse_outputs(
    stdout: Captured,
    stderr: Captured,
    exit_code: i32,
    parse: Parse,
) -> Result<ExecOutputs, StepError> {
    let json = match parse {
        Parse::Json if stdout.dropped > 0 => {
            return Err(StepError::failed(format!(
                "stdout is not valid JSON (parse: json): it is larger than the {} MiB flow \
                 keeps ({} bytes were dropped)",
                OUTPUT_KEEP_BYTES >> 20,
                stdout.dropped
            )));
        }
        Parse::Json => Some(serde_json::from_str(&stdout.text).map_err(|e| {
            StepError::failed(format!("stdout is not valid JSON (parse: json): {e}"))
        })?),
        _ => None,
    };
    let lines = (parse == Parse::Lines).then(|| {
        stdout
            .text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    });
    Ok(ExecOutputs {
        stdout: stdout.shown("stdout"),
        stderr: stderr.shown("stderr"),
        exit_code,
        json,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_script_is_named_so_the_first_line_says_why_it_failed() {
        let script = "set -eu\ncp backup.rdb /data/dump.rdb\necho done\n";
        let message = failure_message(
            script,
            1,
            &[0],
            Some("cp: cannot stat 'backup.rdb': No such file"),
        );
        assert_eq!(
            message.lines().next(),
            Some(
                "the shell script (3 lines) exited with 1 (expected 0): cp: cannot stat \
                 'backup.rdb': No such file"
            )
        );
        assert_eq!(
            failure_message("false", 1, &[0], Some("")),
            "`false` exited with 1 (expected 0)"
        );
    }

    fn split(chunks: &[&[u8]]) -> (Vec<String>, Captured) {
        let mut lines = Lines::default();
        let mut shown = Vec::new();
        for chunk in chunks {
            lines.take(chunk, &mut |l| shown.push(l.to_string()));
        }
        let captured = lines.finish(&mut |l| shown.push(l.to_string()));
        (shown, captured)
    }

    #[test]
    fn lines_end_at_lf_or_crlf_even_split_across_reads() {
        let (shown, captured) = split(&[b"a\r", b"\nb\r\n\nc\rd", b"\r", b"e"]);
        assert_eq!(shown, ["a", "b", "", "c\rd\re"]);
        assert_eq!(captured.text, "a\nb\n\nc\rd\re");
        assert_eq!(captured.dropped, 0);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let (shown, captured) = split(&[b"ok\n\xff\xfe\n", b"caf\xc3", b"\xa9\n"]);
        assert_eq!(shown, ["ok", "\u{fffd}\u{fffd}", "caf\u{e9}"]);
        assert_eq!(captured.text, "ok\n\u{fffd}\u{fffd}\ncaf\u{e9}");
    }

    #[test]
    fn only_the_tail_is_kept_starting_at_a_whole_line() {
        let chunks: Vec<Vec<u8>> = (0..3000)
            .map(|i| format!("{i:05}:{}\n", "x".repeat(1000)).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let (shown, captured) = split(&refs);
        assert_eq!(shown.len(), 3000);
        assert!(captured.text.len() <= OUTPUT_KEEP_BYTES);
        assert!(
            captured
                .text
                .ends_with(&format!("02999:{}", "x".repeat(1000)))
        );
        assert_eq!(captured.text.lines().next().unwrap().len(), 1006);
        // What was kept plus what was dropped is everything (the last newline is trimmed).
        assert_eq!(
            captured.dropped as usize + captured.text.len() + 1,
            3000 * 1007
        );
        assert!(captured.shown("stdout").starts_with(&format!(
            "[flow: the first {} bytes of stdout were dropped",
            captured.dropped
        )));
    }

    #[test]
    fn a_long_line_is_cut_in_its_event_only() {
        let long = vec![b'y'; EVENT_LINE_MAX_BYTES + 10];
        let (shown, captured) = split(&[&long]);
        assert_eq!(
            shown,
            [format!(
                "{} … [10 more bytes of this line not shown]",
                "y".repeat(EVENT_LINE_MAX_BYTES)
            )]
        );
        assert_eq!(captured.text.len(), EVENT_LINE_MAX_BYTES + 10);
    }
}
