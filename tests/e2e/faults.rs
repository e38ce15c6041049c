//! Faults of the world flow runs in — a full disk under the state dir, a Redis server that
//! stops answering, a delete stopped half way, a journal half lost — and a plan that must
//! follow apply's rules: flow fails clearly and bounded in time, says what it did, and never
//! goes on without a record.

use crate::common::Flow;
use crate::common::redis::RedisServer;
use crate::common::run::{flow, journal_events, only_run, write};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the journal's disk is full

/// A 64 KiB tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this machine will not mount one (not root, no CAP_SYS_ADMIN).
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Runs `flow apply playbook.yaml --yes` with its state dir on a disk that fills up at
/// 64 KiB: a real tmpfs when it can be mounted, else a file size limit of 64 KiB (`ulimit
/// -f`, SIGXFSZ ignored, so a write past it fails with EFBIG as a full disk fails with ENOSPC).
/// Returns what flow printed and the state dir's run folder (copied out of the tmpfs).
fn apply_with_a_full_state_disk(flow: &Flow) -> (crate::common::Ran, PathBuf) {
    let disk = SmallDisk::mount();
    let fallback = tempfile::tempdir().expect("state dir");
    let state = disk.as_ref().map_or(fallback.path(), SmallDisk::path);
    let limit = if disk.is_some() { "unlimited" } else { "64" };
    let script = format!(
        "trap '' XFSZ; ulimit -f {limit}; exec '{}' apply playbook.yaml --yes --state-dir '{}'",
        crate::common::flow_bin(),
        state.display()
    );
    let mut command = std::process::Command::new("bash");
    command.args(["-c", &script]).current_dir(flow.dir.path());
    for var in crate::common::CLEARED_ENV {
        command.env_remove(var);
    }
    let output = command.output().expect("bash");
    let ran = crate::common::Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let copy = flow.path("state-copy");
    let run = only_run(state);
    std::fs::create_dir_all(&copy).expect("copy dir");
    for name in ["run.json", "events.jsonl"] {
        let _ = std::fs::copy(run.join(name), copy.join(name));
    }
    (ran, copy)
}

#[test]
fn a_full_journal_disk_stops_the_run_before_the_next_write() {
    // `chatty` prints more than the disk holds; `write`, its retry, and `finally` must not run.
    let flow = Flow::new().playbook(
        r#"flow: 1
steps:
  chatty:
    type: exec
    effect: read
    with:
      shell: "for i in $(seq 1 600); do printf 'line %0200d\n' $i; done"
  write:
    type: file.write
    with: { path: written.txt, content: "a change nobody recorded\n" }
  touch:
    type: exec
    with: { command: [touch, touched.txt] }
finally:
  cleanup:
    type: exec
    with: { command: [touch, finally-ran.txt] }
"#,
    );
    let began = Instant::now();
    let (ran, run) = apply_with_a_full_state_disk(&flow);
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "{}",
        ran.context()
    );
    ran.code(1)
        .stderr_has("error: cannot write the run journal")
        .stderr_has("no further step starts")
        .stdout_has("Run failed")
        .stdout_has("cannot write the run journal");
    assert!(
        ran.stderr.contains("No space left on device") || ran.stderr.contains("File too large"),
        "the reason is not given:\n{}",
        ran.context()
    );
    for unrecorded in ["written.txt", "touched.txt", "finally-ran.txt"] {
        assert!(
            !flow.path(unrecorded).exists(),
            "{unrecorded} was written with no record of it\n{}",
            ran.context()
        );
    }
    // What the journal did take is whole lines, and it says the run started.
    let text = std::fs::read_to_string(run.join("events.jsonl")).expect("events.jsonl");
    let first: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["event"], "run_started");
}

#[test]
fn a_journal_that_fails_mid_for_each_starts_no_further_element() {
    let flow = Flow::new().playbook(
        r#"flow: 1
steps:
  each:
    type: exec
    for_each: "{{ range(8) | list }}"
    with:
      shell: "for i in $(seq 1 150); do printf 'line %0200d\n' $i; done; touch element-{{ item }}.txt"
"#,
    );
    let (ran, _) = apply_with_a_full_state_disk(&flow);
    ran.code(1).stderr_has("cannot write the run journal");
    let done = (0..8)
        .filter(|i| flow.path(&format!("element-{i}.txt")).exists())
        .count();
    assert!(
        done < 8,
        "every element ran although the journal was full\n{}",
        ran.context()
    );
}

// ---------------------------------------------------------------- plan follows apply

const CONTINUED_READ: &str = r#"flow: 1
steps:
  probe:
    type: exec
    effect: read
    continue_on_error: true
    with: { command: [sh, -c, "echo no such service >&2; exit 3"] }
  report:
    type: log
    with: { message: "probe {{ steps.probe.status }}" }
"#;

#[test]
fn plan_goes_on_past_a_failed_read_under_continue_on_error_like_apply() {
    let setup = Flow::new().playbook(CONTINUED_READ);
    let dir = setup.dir.path().to_path_buf();
    let apply = flow(&dir, &["apply", "playbook.yaml", "--yes"], &[]);
    apply.code(0);
    let plan = flow(
        &dir,
        &["plan", "playbook.yaml", "--out", "plan.json", "--no-color"],
        &[],
    );
    plan.code(0)
        .stdout_has("probe  (exec)  error: read failed:")
        .stdout_has("no such service")
        .stdout_has("continue_on_error: apply goes on past this failure")
        // What follows sees the failure as apply would show it.
        .stdout_has("probe failed");
    assert!(dir.join("plan.json").exists(), "{}", plan.context());
    // The saved plan applies: the read fails the same way, which is no drift.
    flow(&dir, &["apply", "plan.json", "--yes"], &[]).code(0);
}

#[test]
fn a_failed_read_without_continue_on_error_still_fails_the_plan() {
    let setup = Flow::new().playbook(&CONTINUED_READ.replace("continue_on_error: true", ""));
    let dir = setup.dir.path().to_path_buf();
    let plan = flow(&dir, &["plan", "playbook.yaml", "--out", "plan.json"], &[]);
    plan.code(1).stdout_has("error: read failed:");
    assert!(!dir.join("plan.json").exists());
}

// ---------------------------------------------------------------- Redis stops answering

/// A playbook that connects, has the server pause every client for `pause_ms`, then asks it
/// something: the question goes unanswered until the pause ends.
fn paused_server_playbook(server: &RedisServer, pause_ms: u32, ask: &str) -> String {
    format!(
        r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  hello:
    type: redis.command
    with: {{ command: [PING] }}
  pause:
    type: exec
    with: {{ command: [redis-cli, -p, "{port}", CLIENT, PAUSE, "{pause_ms}", ALL] }}
  ask:
{ask}
"#,
        url = server.url(),
        port = server.port(),
    )
}

#[test]
fn a_paused_redis_server_fails_the_step_at_its_response_timeout() {
    let server = RedisServer::start();
    let playbook = paused_server_playbook(
        &server,
        20_000,
        "    type: redis.command\n    with: { command: [GET, somekey], response_timeout: 1s }",
    );
    let setup = Flow::new().playbook(&playbook);
    let dir = setup.dir.path().to_path_buf();
    let began = Instant::now();
    let ran = flow(&dir, &["apply", "playbook.yaml", "--yes"], &[]);
    let took = began.elapsed();
    ran.code(1)
        .stdout_has("GET on redis://127.0.0.1:")
        .stdout_has("got no reply within 1.0s (response_timeout)");
    assert!(
        took < Duration::from_secs(8),
        "a paused server held the run for {took:?} despite response_timeout: 1s"
    );
}

#[test]
fn a_step_timeout_ends_the_wait_for_a_paused_redis_server() {
    let server = RedisServer::start();
    let playbook = paused_server_playbook(
        &server,
        20_000,
        "    type: redis.command\n    timeout: 1s\n    with: { command: [GET, somekey] }",
    );
    let setup = Flow::new().playbook(&playbook);
    let dir = setup.dir.path().to_path_buf();
    let began = Instant::now();
    let ran = flow(&dir, &["apply", "playbook.yaml", "--yes"], &[]);
    let took = began.elapsed();
    ran.code(1).stdout_has("timed out after 1.0s");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn redis_waits_30s_for_a_reply_unless_told_otherwise() {
    let out = Flow::new().args(&["steps", "redis.command"]).run();
    out.code(0).stdout_has("response_timeout");
    let readme = crate::common::read(&repo().join("README.md"));
    assert!(readme.contains("`response_timeout` (default 30s)"));
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- redis.delete half way

/// `count` keys `k:0001`… set in one MSET.
fn fill(server: &RedisServer, count: usize) {
    let mut args = vec!["MSET".to_string()];
    for i in 1..=count {
        args.push(format!("k:{i:04}"));
        args.push("v".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.cli(&args);
}

fn delete_playbook(server: &RedisServer, extra: &str) -> String {
    format!(
        "flow: 1\nsteps:\n  purge:\n    type: redis.delete\n{extra}    with: {{ url: \"{}\", pattern: \"k:*\", batch: 1 }}\n",
        server.url()
    )
}

/// The lines `purge` printed, from the run's journal.
fn purge_lines(dir: &Path) -> Vec<String> {
    journal_events(&only_run(&dir.join(".flow")))
        .iter()
        .filter(|e| e["event"] == "step_output" && e["step"] == "purge")
        .map(|e| e["line"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_long_redis_delete_reports_its_progress() {
    // One key per SCAN page and per UNLINK: 600 keys: hundreds of round trips each way, so progress lines come
    // (every 100 round trips at the latest) whatever the machine's speed.
    let server = RedisServer::start();
    fill(&server, 600);
    let setup = Flow::new().playbook(&delete_playbook(&server, ""));
    let dir = setup.dir.path().to_path_buf();
    let out = flow(
        &dir,
        &["apply", "playbook.yaml", "--yes", "--output", "json"],
        &[],
    );
    out.code(0);
    let progress: Vec<String> = out
        .events()
        .iter()
        .filter(|e| e["event"] == "step_output" && e["stream"] == "progress")
        .map(|e| e["line"].as_str().unwrap_or_default().to_string())
        .collect();
    let number = |line: &str, word: &str| -> u64 {
        let at = line
            .find(word)
            .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
        line[at + word.len()..]
            .split(|c: char| !c.is_ascii_digit() && c != ' ')
            .next()
            .unwrap()
            .replace(' ', "")
            .parse()
            .unwrap_or_else(|_| panic!("no count after {word:?} in {line:?}"))
    };
    let walked: Vec<u64> = progress
        .iter()
        .filter(|l| l.starts_with("scanned "))
        .map(|l| number(l, "scanned "))
        .collect();
    let deleted: Vec<u64> = progress
        .iter()
        .filter(|l| l.starts_with("deleted "))
        .map(|l| number(l, "deleted "))
        .collect();
    assert!(walked.len() >= 2, "{progress:#?}");
    assert!(deleted.len() >= 2, "{progress:#?}");
    for counts in [&walked, &deleted] {
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{progress:#?}");
        assert!(
            counts.iter().all(|c| (1..=600).contains(c)),
            "{progress:#?}"
        );
    }
    assert!(
        progress
            .iter()
            .filter(|l| l.starts_with("deleted "))
            .all(|l| l.contains(" of 600 matching keys")),
        "{progress:#?}"
    );
    // The end is in the log and the journal; progress is not journalled.
    let lines = purge_lines(&dir);
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("deleted 600 of 600 matching keys on"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("scanned ")),
        "{lines:#?}"
    );
    assert!(server.keys("k:*").is_empty());
}

#[test]
fn a_redis_delete_that_fails_half_way_says_how_many_keys_it_deleted() {
    // The user may delete k:0001…k:0004 only: the fifth DEL is refused.
    let server = RedisServer::start();
    fill(&server, 6);
    server.cli(&[
        "ACL",
        "SETUSER",
        "limited",
        "on",
        ">pw-limited",
        "~k:000[1-4]",
        "+@all",
    ]);
    let playbook = format!(
        "flow: 1\nsteps:\n  purge:\n    type: redis.delete\n    with: {{ url: \"redis://limited:pw-limited@127.0.0.1:{}\", pattern: \"k:*\", batch: 1 }}\n",
        server.port()
    );
    let setup = Flow::new().playbook(&playbook);
    let dir = setup.dir.path().to_path_buf();
    let ran = flow(&dir, &["apply", "playbook.yaml", "--yes"], &[]);
    ran.code(1)
        .stdout_has("NoPerm")
        .stdout_has("4 of 6 matching keys were deleted before it");
    assert_eq!(server.keys("k:*"), ["k:0005", "k:0006"]);
}

#[test]
fn a_redis_delete_stopped_by_its_timeout_says_how_many_keys_it_deleted() {
    // Writes are paused: the SCAN goes through, the first DEL waits until the timeout.
    let server = RedisServer::start();
    fill(&server, 5);
    server.cli(&["CLIENT", "PAUSE", "20000", "WRITE"]);
    let setup = Flow::new().playbook(&delete_playbook(&server, "    timeout: 1s\n"));
    let dir = setup.dir.path().to_path_buf();
    let ran = flow(&dir, &["apply", "playbook.yaml", "--yes"], &[]);
    ran.code(1).stdout_has("timed out after 1.0s");
    let lines = purge_lines(&dir);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stopped after deleting 0 of 5 matching keys on redis://")),
        "{lines:#?}"
    );
    assert_eq!(server.keys("k:*").len(), 5);
    server.cli(&["CLIENT", "UNPAUSE"]);
}

// ---------------------------------------------------------------- run.json lost

#[test]
fn a_run_with_an_unreadable_run_json_is_listed_from_its_events() {
    let setup = Flow::new().playbook(
        "flow: 1\nname: lost-record\nsteps:\n  hello: { type: log, with: { message: hi } }\n",
    );
    let dir = setup.dir.path().to_path_buf();
    flow(&dir, &["apply", "playbook.yaml", "--yes"], &[]).code(0);
    let run = only_run(&dir.join(".flow"));
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    write(&run, "run.json", "{\"run_id\": \"cut off half way");
    let runs = flow(&dir, &["runs"], &[]);
    runs.code(0)
        .stdout_has(&id)
        .stdout_has("succeeded (rebuilt from events.jsonl)");
    let show = flow(&dir, &["show", &id], &[]);
    show.code(0)
        .stdout_has("lost-record")
        .stdout_has("rebuilt from events.jsonl: run.json does not parse")
        .stdout_has("hello");
    // Unreadable altogether, not only cut: the same.
    std::fs::remove_file(run.join("run.json")).expect("remove run.json");
    std::fs::create_dir(run.join("run.json")).expect("a folder in its place");
    let json = flow(&dir, &["--output", "json", "runs"], &[]);
    json.code(0);
    let listed: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(listed[0]["run_id"], id.as_str());
    assert_eq!(listed[0]["status"], "succeeded");
    assert!(
        listed[0]["rebuilt"]
            .as_str()
            .is_some_and(|w| w.starts_with("run.json cannot be read")),
        "{listed:#}"
    );
}

// ---------------------------------------------------------------- the README

#[test]
fn the_readme_says_a_playbook_is_code_that_plan_runs() {
    let readme = crate::common::read(&repo().join("README.md"));
    assert!(readme.contains("A playbook is code: review it like code before you plan it."));
    assert!(readme.contains("every `exec` with `effect: read` runs its"));
    assert!(readme.contains("`read_file()` reads any file"));
}
