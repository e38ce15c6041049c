//! The commands flow runs and the templates it renders, when they misbehave: output that is
//! not UTF-8 or far too large, a `kill -9` of flow, commands that clean up on SIGTERM, and
//! templates that never end or build gigabytes. Each test bounds its wait and checks in /proc
//! that no process is left.

use crate::common::Flow;
use crate::common::run::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))
}

/// Starts `flow apply playbook.yaml ARGS` in `dir`, its output going to files there.
fn start(dir: &Path, args: &[&str]) -> Child {
    start_command(Command::new(flow_bin()), dir, args)
}

fn start_command(mut command: Command, dir: &Path, args: &[&str]) -> Child {
    let stdout = std::fs::File::create(dir.join("flow.out")).unwrap();
    let stderr = std::fs::File::create(dir.join("flow.err")).unwrap();
    for var in crate::common::CLEARED_ENV {
        command.env_remove(var);
    }
    command
        .args(["apply", "playbook.yaml"])
        .args(args)
        .current_dir(dir)
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

/// Kills whatever a test left running (by the pids the steps wrote), and flow itself.
struct Reaper {
    pid_files: Vec<std::path::PathBuf>,
    flow: Option<Child>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(flow) = &mut self.flow {
            let _ = flow.kill();
            let _ = flow.wait();
        }
        for file in &self.pid_files {
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

fn reaper(dir: &Path, files: &[&str], flow: Child) -> Reaper {
    Reaper {
        pid_files: files.iter().map(|f| dir.join(f)).collect(),
        flow: Some(flow),
    }
}

impl Reaper {
    fn flow(&mut self) -> &mut Child {
        self.flow.as_mut().expect("flow")
    }
}

fn assert_gone(dir: &Path, files: &[&str], within: Duration) {
    for file in files {
        let pid = read_pid(&dir.join(file));
        assert!(
            gone_within(pid, within),
            "process {pid} ({file}) is still running\n{}",
            output(dir)
        );
    }
}

// ------------------------------------------------------------- output that is not UTF-8

#[test]
fn invalid_utf8_in_output_keeps_every_line_decoded_lossily() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  mixed:
    type: exec
    with:
      shell: printf 'one\n\377two\nthree\n\376four\n'
      parse: lines
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    let outputs = &finished(&events, "mixed")["outputs"];
    assert_eq!(
        outputs["lines"],
        serde_json::json!(["one", "\u{fffd}two", "three", "\u{fffd}four"]),
        "{}",
        out.context()
    );
    assert_eq!(outputs["stdout"], "one\n\u{fffd}two\nthree\n\u{fffd}four");
    let shown: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "step_output")
        .map(|e| &e["line"])
        .collect();
    assert_eq!(shown.len(), 4, "{events:#?}");
}

#[test]
fn invalid_utf8_in_a_large_output_does_not_kill_the_command_with_sigpipe() {
    // Invalid bytes first on both streams, then more than a pipe holds on each.
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  noisy:
    type: exec
    with:
      shell: |
        printf '\377\n'; printf '\376\n' >&2
        seq 1 50000 >&2
        seq 1 50000
        echo stdout-end; echo stderr-end >&2
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    let noisy = finished(&events, "noisy");
    assert_eq!(noisy["status"], "succeeded", "{noisy:#}");
    let outputs = &noisy["outputs"];
    assert_eq!(outputs["exit_code"], 0);
    assert!(
        outputs["stdout"]
            .as_str()
            .unwrap()
            .ends_with("50000\nstdout-end")
    );
    assert!(
        outputs["stderr"]
            .as_str()
            .unwrap()
            .ends_with("50000\nstderr-end")
    );
}

// ------------------------------------------------------------- output that is too large

#[test]
fn captured_output_keeps_the_last_mib_and_says_how_much_was_dropped() {
    // 300 000 lines, 3.9 MB: every line is still streamed, the outputs keep the tail.
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  big:
    type: exec
    with: { shell: "seq -f 'line %07g' 1 300000" }
"#,
        )
        .args(&["-q", "apply", "playbook.yaml"])
        .run();
    out.code(0);
    let run = only_run(&out.path(".flow"));
    let journal = read(&run.join("events.jsonl"));
    let streamed = journal
        .lines()
        .filter(|l| l.contains(r#""event":"step_output""#))
        .count();
    assert_eq!(streamed, 300_000, "every line is still an event");
    let events: Vec<Value> = journal
        .lines()
        .filter(|l| !l.contains(r#""event":"step_output""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stdout = finished(&events, "big")["outputs"]["stdout"]
        .as_str()
        .unwrap()
        .to_string();
    let total = 300_000 * 13;
    let (note, kept) = stdout.split_once('\n').unwrap();
    let dropped = total - (kept.len() + 1);
    assert_eq!(
        note,
        format!(
            "[flow: the first {dropped} bytes of stdout were dropped; outputs keep the last 1 MiB]"
        )
    );
    assert!(kept.len() <= 1 << 20, "kept {} bytes", kept.len());
    assert!(kept.len() > (1 << 20) - 20, "kept {} bytes", kept.len());
    assert!(
        kept.starts_with("line "),
        "starts at a whole line: {:?}",
        &kept[..20]
    );
    assert!(kept.ends_with("line 0300000"));
    assert!(
        journal.len() < 40_000_000,
        "journal is {} bytes",
        journal.len()
    );
}

#[test]
fn a_line_longer_than_16_kib_is_cut_in_its_event_and_kept_whole_in_the_output() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  wide:
    type: exec
    with: { shell: "head -c 100000 /dev/zero | tr '\\0' y" }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_output")
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0],
        format!(
            "{} … [{} more bytes of this line not shown]",
            "y".repeat(16 << 10),
            100_000 - (16 << 10)
        )
    );
    assert_eq!(
        finished(&events, "wide")["outputs"]["stdout"],
        "y".repeat(100_000)
    );
}

// ------------------------------------------------------------- flow killed

/// `long` writes its shell's and its sleep's pids and sleeps 30 s.
const LONG: &str = r#"flow: 1
name: long
steps:
  long:
    type: exec
    with: { shell: 'echo $$ > shell.pid; sleep 30 & echo $! > sleep.pid; wait' }
"#;

#[test]
fn kill_9_of_flow_leaves_no_command_running_and_the_run_did_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", LONG);
    let mut reaper = reaper(dir, &["shell.pid", "sleep.pid"], start(dir, &[]));
    assert!(
        wait_for_file(&dir.join("sleep.pid"), Duration::from_secs(20)),
        "the step never started\n{}",
        output(dir)
    );
    signal(reaper.flow().id(), "KILL");
    wait_bounded(reaper.flow(), Duration::from_secs(10));
    assert_gone(dir, &["shell.pid", "sleep.pid"], Duration::from_secs(3));

    let runs = flow(dir, &["runs"], &[]);
    assert_eq!(runs.code, 0, "{}", runs.context());
    assert!(runs.stdout.contains("did not finish"), "{}", runs.context());
    let run = only_run(&dir.join(".flow"));
    let id = run.file_name().unwrap().to_str().unwrap();
    let show = flow(dir, &["show", id], &[]);
    assert!(show.stdout.contains("did not finish"), "{}", show.context());
    assert!(
        show.stdout.contains("started, no end recorded: long"),
        "{}",
        show.context()
    );
}

// ------------------------------------------------------------- SIGTERM before SIGKILL

/// `trapping` cleans up on SIGTERM (a file written by its trap) and stops its sleep.
const TRAPPING: &str = r#"flow: 1
steps:
  trapping:
    type: exec
    TIMEOUT
    with:
      shell: |
        echo $$ > shell.pid
        trap 'echo cleaned up > trapped.txt; kill $child; exit 3' TERM
        sleep 30 & child=$!; echo $child > sleep.pid
        wait
finally:
  after:
    type: exec
    with: { shell: 'cat trapped.txt > seen_by_finally.txt' }
"#;

#[test]
fn a_timeout_sends_sigterm_first_so_the_commands_trap_runs() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        "playbook.yaml",
        &TRAPPING.replace("TIMEOUT", "timeout: 1s"),
    );
    let began = Instant::now();
    let mut reaper = reaper(dir, &["shell.pid", "sleep.pid"], start(dir, &[]));
    let code = wait_bounded(reaper.flow(), Duration::from_secs(20));
    assert_eq!(code, 1, "{}", output(dir));
    assert!(began.elapsed() < Duration::from_secs(5), "{}", output(dir));
    assert!(
        output(dir).contains("timed out after 1.0s"),
        "{}",
        output(dir)
    );
    assert_eq!(read(&dir.join("trapped.txt")), "cleaned up\n");
    // The trap had finished before `finally` started.
    assert_eq!(read(&dir.join("seen_by_finally.txt")), "cleaned up\n");
    assert_gone(dir, &["shell.pid", "sleep.pid"], Duration::from_secs(3));
}

#[test]
fn sigint_sends_sigterm_first_so_the_commands_trap_runs() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", &TRAPPING.replace("TIMEOUT", ""));
    let mut reaper = reaper(dir, &["shell.pid", "sleep.pid"], start(dir, &[]));
    assert!(
        wait_for_file(&dir.join("sleep.pid"), Duration::from_secs(20)),
        "{}",
        output(dir)
    );
    signal(reaper.flow().id(), "INT");
    let code = wait_bounded(reaper.flow(), Duration::from_secs(20));
    assert_eq!(code, 130, "{}", output(dir));
    assert_eq!(read(&dir.join("trapped.txt")), "cleaned up\n");
    assert_eq!(read(&dir.join("seen_by_finally.txt")), "cleaned up\n");
    assert_gone(dir, &["shell.pid", "sleep.pid"], Duration::from_secs(3));
}

/// `stubborn` ignores SIGTERM (and so does its sleep, which inherits that).
const STUBBORN: &str = r#"flow: 1
steps:
  stubborn:
    type: exec
    TIMEOUT
    with: { shell: "trap '' TERM; echo $$ > shell.pid; sleep 30 & echo $! > sleep.pid; wait" }
"#;

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_5s_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        "playbook.yaml",
        &STUBBORN.replace("TIMEOUT", "timeout: 500ms"),
    );
    let began = Instant::now();
    let mut reaper = reaper(dir, &["shell.pid", "sleep.pid"], start(dir, &[]));
    let code = wait_bounded(reaper.flow(), Duration::from_secs(20));
    let took = began.elapsed();
    assert_eq!(code, 1, "{}", output(dir));
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "took {took:?}\n{}",
        output(dir)
    );
    assert_gone(dir, &["shell.pid", "sleep.pid"], Duration::from_secs(1));
}

#[test]
fn a_second_sigint_kills_a_command_that_ignores_sigterm_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", &STUBBORN.replace("TIMEOUT", ""));
    let mut reaper = reaper(dir, &["shell.pid", "sleep.pid"], start(dir, &[]));
    assert!(
        wait_for_file(&dir.join("sleep.pid"), Duration::from_secs(20)),
        "{}",
        output(dir)
    );
    signal(reaper.flow().id(), "INT");
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    signal(reaper.flow().id(), "INT");
    let code = wait_bounded(reaper.flow(), Duration::from_secs(20));
    assert_eq!(code, 130, "{}", output(dir));
    assert!(second.elapsed() < Duration::from_secs(2), "{}", output(dir));
    assert_gone(dir, &["shell.pid", "sleep.pid"], Duration::from_secs(2));
}

// ------------------------------------------------------------- a double Ctrl-C is recorded

#[test]
fn a_second_sigint_records_the_run_as_interrupted_not_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        "playbook.yaml",
        r#"flow: 1
steps:
  long:
    type: exec
    with: { shell: 'sleep 30 & echo $! > sleep.pid; wait' }
finally:
  fin:
    type: exec
    with: { shell: 'sleep 30 & echo $! > fin_sleep.pid; wait' }
"#,
    );
    let mut reaper = reaper(dir, &["sleep.pid", "fin_sleep.pid"], start(dir, &[]));
    assert!(wait_for_file(
        &dir.join("sleep.pid"),
        Duration::from_secs(20)
    ));
    signal(reaper.flow().id(), "INT");
    assert!(
        wait_for_file(&dir.join("fin_sleep.pid"), Duration::from_secs(20)),
        "{}",
        output(dir)
    );
    signal(reaper.flow().id(), "INT");
    assert_eq!(wait_bounded(reaper.flow(), Duration::from_secs(20)), 130);
    let run = only_run(&dir.join(".flow"));
    let record = run_json(&run);
    assert_eq!(record["status"], "interrupted", "{record:#}");
    assert_eq!(record["exit_code"], 130, "{record:#}");
    assert!(record["finished_at"].is_string(), "{record:#}");
    let events = journal_events(&run);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "run_finished" && e["status"] == "interrupted"),
        "{events:#?}"
    );
    let runs = flow(dir, &["runs"], &[]);
    assert!(runs.stdout.contains("interrupted"), "{}", runs.context());
    assert!(
        !runs.stdout.contains("did not finish"),
        "{}",
        runs.context()
    );
}

// ------------------------------------------------------------- templates that never end

/// 10 000 000 000 iterations: forever, without a bound.
const SPIN: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

fn spinning(timeout: &str) -> String {
    format!(
        "flow: 1\nsteps:\n  spin:\n    type: log\n    {timeout}\n    with:\n      message: \"{SPIN}\"\nfinally:\n  fin:\n    type: file.write\n    with: {{ path: fin.txt, content: \"spin was {{{{ steps.spin.status }}}}\" }}\n"
    )
}

#[test]
fn a_template_loop_that_never_ends_fails_on_its_fuel_naming_the_step_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", &spinning(""));
    let mut reaper = reaper(dir, &[], start(dir, &[]));
    let code = wait_bounded(reaper.flow(), Duration::from_secs(30));
    let context = output(dir);
    assert_eq!(code, 1, "{context}");
    let stdout = read(&dir.join("flow.out"));
    let line = stdout
        .lines()
        .find(|l| l.contains("spin") && l.contains("failed"))
        .unwrap_or_else(|| panic!("no failure line for `spin`\n{context}"));
    assert!(
        line.contains("`with`: the template does more work than flow allows one template"),
        "{context}"
    );
    assert_eq!(read(&dir.join("fin.txt")), "spin was failed", "{context}");
}

#[test]
fn a_cpu_bound_template_ends_at_the_step_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", &spinning("timeout: 100ms"));
    let began = Instant::now();
    let mut reaper = reaper(dir, &[], start(dir, &[]));
    let code = wait_bounded(reaper.flow(), Duration::from_secs(30));
    let context = output(dir);
    assert_eq!(code, 1, "{context}");
    assert!(
        context.contains("timed out after 100ms rendering `with`"),
        "{context}"
    );
    assert!(began.elapsed() < Duration::from_secs(3), "{context}");
    assert_eq!(read(&dir.join("fin.txt")), "spin was failed", "{context}");
}

#[test]
fn sigint_ends_a_cpu_bound_template_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "playbook.yaml", &spinning(""));
    let mut reaper = reaper(dir, &[], start(dir, &["--output", "json"]));
    let out = dir.join("flow.out");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read(&out).contains(r#""step_started""#) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let signalled = Instant::now();
    signal(reaper.flow().id(), "INT");
    let code = wait_bounded(reaper.flow(), Duration::from_secs(30));
    let context = output(dir);
    assert_eq!(code, 130, "{context}");
    assert!(
        signalled.elapsed() < Duration::from_millis(500),
        "took {:?}\n{context}",
        signalled.elapsed()
    );
    assert_eq!(read(&dir.join("fin.txt")), "spin was failed", "{context}");
}

#[test]
fn a_template_loop_that_doubles_a_string_is_stopped_before_it_exhausts_memory() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        "playbook.yaml",
        r#"flow: 1
steps:
  grow:
    type: log
    with:
      message: "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
"#,
    );
    // Under a 2 GB address-space limit, so that a regression fails here instead of taking
    // the machine's memory: 2^64 bytes would be the end of any machine.
    let mut command = Command::new("sh");
    command.args(["-c", "ulimit -v 2000000 && exec \"$0\" \"$@\"", flow_bin()]);
    let mut reaper = reaper(dir, &[], start_command(command, dir, &[]));
    let code = wait_bounded(reaper.flow(), Duration::from_secs(30));
    let context = output(dir);
    assert_eq!(code, 1, "{context}");
    assert!(
        context.contains("`with`: the template does more work than flow allows one template"),
        "{context}"
    );
}
