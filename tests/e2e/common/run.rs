//! Helpers for tests that run `flow` several times in one folder (plan then apply, apply then
//! `flow runs` / `flow show`), read its run journal, and send it signals. Every wait is bounded.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::{Ran, flow_bin, read};

/// A `flow` command in `dir` (no stdin, none of `CLEARED_ENV` unless given), killed if it
/// takes longer than `super::TIME_LIMIT`.
pub fn flow(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut command = Command::new(flow_bin());
    command.args(args).current_dir(dir);
    for var in super::CLEARED_ENV {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn flow");
    let stdout = reader(child.stdout.take().expect("stdout"));
    let stderr = reader(child.stderr.take().expect("stderr"));
    let code = wait_bounded(&mut child, super::TIME_LIMIT);
    let ran = Ran {
        code,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        !ran.stderr.contains("panicked"),
        "flow panicked:\n{}",
        ran.context()
    );
    ran
}

pub fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` at most `limit`, killing it (and failing) past that.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flow did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most `limit`) until `path` exists and is not empty.
pub fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
            && std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n'))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} does not hold a pid", path.display()))
}

/// Sends a signal with the `kill` program (`INT`, `TERM`, `KILL`).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Whether a process is still running (a zombie or a missing /proc entry counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
                .unwrap_or('?');
            !matches!(state, 'Z' | 'X')
        }
    }
}

/// Waits (at most `limit`) for a process to be gone; true when it is.
pub fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    !alive(pid)
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The run folders under `<state>/runs`, sorted by name.
pub fn run_dirs(state: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(state.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The one run folder under `<state>/runs`.
pub fn only_run(state: &Path) -> PathBuf {
    let dirs = run_dirs(state);
    assert_eq!(
        dirs.len(),
        1,
        "expected exactly one run under {}: {dirs:?}",
        state.display()
    );
    dirs.into_iter().next().expect("one run")
}

/// The id of the one run under `<state>/runs`.
pub fn only_run_id(state: &Path) -> String {
    only_run(state)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn run_json(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("run.json"))
        .unwrap_or_else(|e| panic!("read {}/run.json: {e}", run.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("run.json is not JSON ({e}):\n{text}"))
}

/// The journal's events; every line must parse.
pub fn journal_events(run: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap_or_else(|e| panic!("read {}/events.jsonl: {e}", run.display()));
    assert!(
        text.ends_with('\n'),
        "events.jsonl does not end with a newline:\n{text}"
    );
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("events.jsonl line is not JSON ({e}): {l}\n{text}"))
        })
        .collect()
}

/// Each event as (event, step, status), "" where the field is absent.
pub fn tuples(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (field("event"), field("step"), field("status"))
        })
        .collect()
}

pub fn t(event: &str, step: &str, status: &str) -> (String, String, String) {
    (event.into(), step.into(), status.into())
}

/// The `step_finished` event of `step` (the last one).
/// The `plan_step` event of a step, from `--output json` of `flow plan`.
pub fn plan_step<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "plan_step" && e["step"] == step)
        .unwrap_or_else(|| panic!("no plan_step for `{step}` in {events:#?}"))
}

pub fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step}: {events:#?}"))
}

/// Masks what changes from run to run (run ids, timestamps, durations) and the column
/// padding that depends on them, so a page can be compared with a pinned text.
pub fn mask(text: &str) -> String {
    let run_id = regex::Regex::new(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b").expect("regex");
    let time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").expect("regex");
    let clock = regex::Regex::new(r"(?m)^\d{2}:\d{2}:\d{2} ").expect("regex");
    let duration = regex::Regex::new(r"\b\d+(\.\d+)?(ms|s|m)\b").expect("regex");
    let padding = regex::Regex::new(r" {2,}").expect("regex");
    let rule = regex::Regex::new(r"─+").expect("regex");
    let text = run_id.replace_all(text, "RUNID");
    let text = time.replace_all(&text, "TIME");
    let text = clock.replace_all(&text, "HH:MM:SS ");
    let text = duration.replace_all(&text, "DUR");
    let text = rule.replace_all(&text, "─");
    text.lines()
        .map(|l| padding.replace_all(l.trim_end(), "  ").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The login name and host name flow records.
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, content).expect("write file");
}

/// A file's permission bits.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `flow args…` in `dir` (none of `CLEARED_ENV` unless `env` gives it), which must end within
/// `seconds` — a hang is a failure, not a hung suite: (exit code, stdout + stderr).
pub fn flow_within(
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
    seconds: u64,
) -> (i32, String) {
    let mut command = Command::new(super::flow_bin());
    command.args(args).current_dir(dir);
    for var in super::CLEARED_ENV {
        command.env_remove(var);
    }
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flow");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flow {args:?} still running after {seconds}s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
