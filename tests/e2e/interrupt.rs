//! Ctrl-C and SIGTERM during `flow apply` (DESIGN §7): running steps are cancelled (their
//! processes killed), `undo` and `finally` still run, the journal says interrupted, exit 130;
//! a second signal exits at once.

use crate::common::run::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `first` finished and has an undo; `long` writes its shell's and its sleep's pids and sleeps
/// 30 s; `after` must never start; `fin` is a finally.
const PLAYBOOK: &str = r#"flow: 1
name: interruptible
steps:
  first:
    type: file.write
    with: { path: first.txt, content: one }
    undo:
      type: file.write
      with: { path: undone.txt, content: undone }
  long:
    type: exec
    with: { shell: 'echo $$ > shell.pid; sleep 30 & echo $! > sleep.pid; wait' }
  after:
    type: file.write
    with: { path: after.txt, content: never }
finally:
  fin:
    type: file.write
    with: { path: finally.txt, content: "long was {{ steps.long.status }}" }
"#;

/// Starts `flow apply playbook.yaml ARGS` in `dir`, its output going to files there.
fn start(dir: &Path, args: &[&str]) -> Child {
    let stdout = std::fs::File::create(dir.join("flow.out")).unwrap();
    let stderr = std::fs::File::create(dir.join("flow.err")).unwrap();
    Command::new(flow_bin())
        .args(["apply", "playbook.yaml"])
        .args(args)
        .current_dir(dir)
        .env_remove("FLOW_STATE_DIR")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn flow")
}

fn output(dir: &Path) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        read(&dir.join("flow.out")),
        read(&dir.join("flow.err"))
    )
}

/// Kills whatever a test left running (by the pids the steps wrote).
struct Reaper(Vec<std::path::PathBuf>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for file in &self.0 {
            if let Ok(pid) = read(file).trim().parse::<u32>()
                && alive(pid)
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn interrupted_by(signal_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", PLAYBOOK);
    let _reaper = Reaper(vec![dir.join("shell.pid"), dir.join("sleep.pid")]);
    let began = Instant::now();
    let mut child = start(dir, &[]);
    assert!(
        wait_for_file(&dir.join("sleep.pid"), Duration::from_secs(20)),
        "the long step never started\n{}",
        output(dir)
    );
    signal(child.id(), signal_name);
    let code = wait_bounded(&mut child, Duration::from_secs(25));
    let took = began.elapsed();
    let context = output(dir);
    assert_eq!(code, 130, "{context}");
    assert!(took < Duration::from_secs(10), "took {took:?}\n{context}");

    assert_eq!(
        read(&dir.join("undone.txt")),
        "undone",
        "undo did not run\n{context}"
    );
    assert_eq!(
        read(&dir.join("finally.txt")),
        "long was failed",
        "finally did not run (or saw the wrong status)\n{context}"
    );
    assert!(
        !dir.join("after.txt").exists(),
        "a step started after the signal\n{context}"
    );
    for file in ["shell.pid", "sleep.pid"] {
        let pid = read_pid(&dir.join(file));
        assert!(
            gone_within(pid, Duration::from_secs(3)),
            "process {pid} ({file}) of the cancelled step is still running\n{context}"
        );
    }

    let run = only_run(&dir.join(".flow"));
    let record = run_json(&run);
    assert_eq!(record["status"], "interrupted", "{record:#}");
    assert_eq!(record["exit_code"], 130, "{record:#}");
    assert!(record["finished_at"].is_string(), "{record:#}");
    let events = journal_events(&run);
    let end = events.last().unwrap();
    assert_eq!(end["event"], "run_finished", "{events:#?}");
    assert_eq!(end["status"], "interrupted");
    assert_eq!(end["exit_code"], 130);
    assert_eq!(finished(&events, "long")["status"], "failed");
    assert_eq!(finished(&events, "first.undo")["status"], "succeeded");
    assert_eq!(finished(&events, "fin")["status"], "succeeded");
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "after"),
        "{events:#?}"
    );
}

#[test]
fn sigint_cancels_the_running_step_runs_undo_and_finally_and_exits_130() {
    interrupted_by("INT");
}

#[test]
fn sigterm_as_ci_sends_it_does_the_same() {
    interrupted_by("TERM");
}

#[test]
fn the_interrupted_step_is_journaled_with_its_attempt_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", PLAYBOOK);
    let _reaper = Reaper(vec![dir.join("shell.pid"), dir.join("sleep.pid")]);
    let mut child = start(dir, &["--output", "json"]);
    assert!(wait_for_file(
        &dir.join("sleep.pid"),
        Duration::from_secs(20)
    ));
    signal(child.id(), "INT");
    assert_eq!(wait_bounded(&mut child, Duration::from_secs(25)), 130);
    let events = journal_events(&only_run(&dir.join(".flow")));
    let long = finished(&events, "long");
    assert!(
        long["error"].as_str().unwrap_or("").contains("interrupted"),
        "{long}"
    );
    // It was started as attempt 1 and ran until the signal: one attempt.
    assert_eq!(long["attempts"], 1, "{long}");
    // The JSON stream is the journal: stdout is only JSON and ends the same way.
    let stdout = read(&dir.join("flow.out"));
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
    }
    let run = only_run(&dir.join(".flow"));
    assert_eq!(stdout, read(&run.join("events.jsonl")));
}

/// `fin` is slow: the first signal starts undo/finally, a second one while `fin` runs exits
/// at once — and leaves no process of `fin` behind.
const SLOW_FINALLY: &str = r#"flow: 1
steps:
  long:
    type: exec
    with: { shell: 'sleep 30 & echo $! > sleep.pid; wait' }
finally:
  fin:
    type: exec
    with: { shell: 'echo $$ > fin_shell.pid; sleep 30 & echo $! > fin_sleep.pid; wait' }
"#;

fn twice_interrupted() -> (tempfile::TempDir, i32, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    write(path, "playbook.yaml", SLOW_FINALLY);
    let mut child = start(path, &[]);
    assert!(
        wait_for_file(&path.join("sleep.pid"), Duration::from_secs(20)),
        "{}",
        output(path)
    );
    signal(child.id(), "INT");
    assert!(
        wait_for_file(&path.join("fin_sleep.pid"), Duration::from_secs(20)),
        "finally never started after the first signal\n{}",
        output(path)
    );
    let second = Instant::now();
    signal(child.id(), "INT");
    let code = wait_bounded(&mut child, Duration::from_secs(25));
    (dir, code, second.elapsed())
}

#[test]
fn a_second_sigint_during_a_slow_finally_exits_at_once_with_130() {
    let (dir, code, took) = twice_interrupted();
    let _reaper = Reaper(vec![
        dir.path().join("sleep.pid"),
        dir.path().join("fin_shell.pid"),
        dir.path().join("fin_sleep.pid"),
    ]);
    assert_eq!(code, 130, "{}", output(dir.path()));
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} after the second signal"
    );
}

#[test]
fn a_second_sigint_leaves_no_child_process_behind() {
    let (dir, code, _) = twice_interrupted();
    let _reaper = Reaper(vec![
        dir.path().join("sleep.pid"),
        dir.path().join("fin_shell.pid"),
        dir.path().join("fin_sleep.pid"),
    ]);
    assert_eq!(code, 130);
    for file in ["sleep.pid", "fin_shell.pid", "fin_sleep.pid"] {
        let pid = read_pid(&dir.path().join(file));
        assert!(
            gone_within(pid, Duration::from_secs(3)),
            "process {pid} ({file}) is still running after flow exited\n{}",
            output(dir.path())
        );
    }
}
