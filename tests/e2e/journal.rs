//! The run journal (DESIGN §4 approvals, §5): every apply leaves `<state-dir>/runs/<id>/`
//! (mode 0700) with `run.json` and `events.jsonl`; `flow runs` and `flow show` read it back,
//! also for a run that crashed half way; secrets never reach it.

use crate::common::run::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const DEMO: &str = r#"flow: 1
name: journal-demo
params:
  who: { type: string, default: ops }
  pw: { type: string, secret: true, required: false, env: JOURNAL_TEST_PW }
steps:
  hello:
    type: exec
    with: { command: [echo, "hi {{ params.who }}"] }
  skipme:
    type: log
    when: "params.who == 'nobody'"
    with: { message: never }
  ok:
    type: confirm
    with: { message: "go on?" }
  write:
    type: file.write
    with: { path: out.txt, content: "{{ params.who }}" }
finally:
  fin:
    type: file.write
    with: { path: fin.txt, content: done }
outputs:
  greeting: "{{ steps.hello.stdout }}"
"#;

const FAILING: &str = r#"flow: 1
name: failing
steps:
  made:
    type: file.write
    with: { path: made.txt, content: x }
    undo:
      type: file.write
      with: { path: unmade.txt, content: undone }
  flaky:
    type: exec
    retry: { attempts: 2, delay: 10ms }
    with: { shell: 'echo "broken on purpose" >&2; exit 7' }
  never:
    type: file.write
    with: { path: never.txt, content: x }
finally:
  fin:
    type: file.write
    with: { path: fin.txt, content: done }
"#;

fn dir_with(name: &str, playbook: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), name, playbook);
    dir
}

fn timestamp(value: &Value) -> String {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    let shape =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$").expect("regex");
    assert!(
        shape.is_match(text),
        "not an RFC 3339 UTC timestamp: {text}"
    );
    text.to_string()
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp, to order them without trusting
/// their text.
fn seconds(text: &str) -> f64 {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", text, "+%s.%N"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("date cannot read {text}"))
}

// ---------------------------------------------------------------- contents

#[test]
fn a_successful_run_records_its_run_json_and_every_event_in_order() {
    let dir = dir_with("playbook.yaml", DEMO);
    let ran = flow(dir.path(), &["apply", "playbook.yaml", "--yes"], &[]);
    ran.code(0);
    let run = only_run(&dir.path().join(".flow"));
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        regex::Regex::new(r"^\d{8}-\d{6}-[0-9a-f]{4}$")
            .unwrap()
            .is_match(&id),
        "run id {id}"
    );
    ran.stdout_has(&id);

    let record = run_json(&run);
    assert_eq!(record["run_id"], id.as_str());
    assert_eq!(record["name"], "journal-demo");
    assert!(
        record["playbook"]
            .as_str()
            .unwrap_or("")
            .ends_with("playbook.yaml"),
        "{record:#}"
    );
    assert_eq!(
        record["playbook_hash"],
        sha256_of(&dir.path().join("playbook.yaml")).as_str()
    );
    assert_eq!(record["params"], json!({ "who": "ops" }), "{record:#}");
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["exit_code"], 0);
    assert!(record["error"].is_null(), "{record:#}");
    assert_eq!(record["user"], user().as_str());
    assert_eq!(record["host"], host().as_str());
    assert_eq!(record["flow_version"], env!("CARGO_PKG_VERSION"));
    let started = timestamp(&record["started_at"]);
    let ended = timestamp(&record["finished_at"]);
    assert!(seconds(&ended) >= seconds(&started), "{record:#}");
    assert!(record["duration_ms"].as_u64().is_some(), "{record:#}");

    let events = journal_events(&run);
    assert_eq!(
        tuples(&events),
        vec![
            t("run_started", "", ""),
            t("step_started", "hello", ""),
            t("step_output", "hello", ""),
            t("step_finished", "hello", "succeeded"),
            t("step_finished", "skipme", "skipped"),
            t("step_started", "ok", ""),
            t("approval", "ok", ""),
            t("step_finished", "ok", "succeeded"),
            t("step_started", "write", ""),
            t("step_finished", "write", "succeeded"),
            t("step_started", "fin", ""),
            t("step_finished", "fin", "succeeded"),
            t("run_finished", "", "succeeded"),
        ]
    );
    assert_eq!(events[0]["run_id"], id.as_str());
    assert_eq!(events[0]["mode"], "apply");
    let hello = finished(&events, "hello");
    assert_eq!(hello["attempts"], 1);
    assert_eq!(hello["outputs"]["stdout"], "hi ops");
    assert!(hello["duration_ms"].as_u64().is_some(), "{hello}");
    assert_eq!(
        finished(&events, "skipme")["reason"],
        "when: params.who == 'nobody'"
    );
    let approval = events.iter().find(|e| e["event"] == "approval").unwrap();
    assert_eq!(approval["approved"], true);
    assert_eq!(approval["how"], "--yes");
    assert_eq!(approval["user"], user().as_str());
    assert_eq!(approval["host"], host().as_str());
    timestamp(&approval["at"]);
    let end = events.last().unwrap();
    assert_eq!(end["exit_code"], 0);
    assert_eq!(end["outputs"], json!({ "greeting": "hi ops" }));
}

#[test]
fn the_journal_is_exactly_what_output_json_streams() {
    let dir = dir_with("playbook.yaml", DEMO);
    let ran = flow(
        dir.path(),
        &["apply", "playbook.yaml", "--yes", "--output", "json"],
        &[],
    );
    ran.code(0);
    let run = only_run(&dir.path().join(".flow"));
    let journal = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert_eq!(journal, ran.stdout);
}

#[test]
fn the_run_folder_is_private_mode_0700() {
    let dir = dir_with("playbook.yaml", DEMO);
    flow(dir.path(), &["apply", "playbook.yaml", "--yes"], &[]).code(0);
    let run = only_run(&dir.path().join(".flow"));
    let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} has mode {mode:o}", run.display());
}

#[test]
fn a_failed_run_records_attempts_the_error_skips_undo_and_finally() {
    let dir = dir_with("playbook.yaml", FAILING);
    let ran = flow(dir.path(), &["apply", "playbook.yaml"], &[]);
    ran.code(1);
    let run = only_run(&dir.path().join(".flow"));
    let record = run_json(&run);
    assert_eq!(record["status"], "failed");
    assert_eq!(record["exit_code"], 1);
    let error = record["error"].as_str().unwrap_or_default();
    assert!(error.contains("exited with 7"), "{record:#}");
    timestamp(&record["finished_at"]);

    let events = journal_events(&run);
    assert_eq!(
        tuples(&events),
        vec![
            t("run_started", "", ""),
            t("step_started", "made", ""),
            t("step_finished", "made", "succeeded"),
            t("step_started", "flaky", ""),
            t("step_output", "flaky", ""),
            t("step_retrying", "flaky", ""),
            t("step_started", "flaky", ""),
            t("step_output", "flaky", ""),
            t("step_finished", "flaky", "failed"),
            t("step_finished", "never", "skipped"),
            t("step_started", "made.undo", ""),
            t("step_finished", "made.undo", "succeeded"),
            t("step_started", "fin", ""),
            t("step_finished", "fin", "succeeded"),
            t("run_finished", "", "failed"),
        ]
    );
    let attempts: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "step_started" && e["step"] == "flaky")
        .map(|e| e["attempt"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(attempts, vec![1, 2]);
    let flaky = finished(&events, "flaky");
    assert_eq!(flaky["attempts"], 2);
    let error = flaky["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exited with 7") && error.contains("broken on purpose"),
        "{flaky}"
    );
    let never = finished(&events, "never");
    assert!(
        never["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("flaky"),
        "the skip reason should name the failed step: {never}"
    );
    let end = events.last().unwrap();
    assert_eq!(end["exit_code"], 1);
    assert!(
        end["error"]
            .as_str()
            .unwrap_or("")
            .contains("exited with 7"),
        "{end}"
    );
    assert!(dir.path().join("unmade.txt").exists());
    assert!(!dir.path().join("never.txt").exists());
}

#[test]
fn needing_an_approval_without_a_terminal_is_recorded_with_exit_3() {
    let dir = dir_with("playbook.yaml", DEMO);
    let ran = flow(dir.path(), &["apply", "playbook.yaml"], &[]);
    ran.code(3).stdout_has("--approve ok");
    let run = only_run(&dir.path().join(".flow"));
    let record = run_json(&run);
    assert_eq!(record["status"], "needs_approval", "{record:#}");
    assert_eq!(record["exit_code"], 3);
    assert!(
        record["error"]
            .as_str()
            .unwrap_or("")
            .contains("--approve ok"),
        "{record:#}"
    );
    let events = journal_events(&run);
    let ok = finished(&events, "ok");
    assert_eq!(ok["status"], "declined", "{ok}");
    assert!(
        ok["error"].as_str().unwrap_or("").contains("--approve ok"),
        "{ok}"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "approval"),
        "no approval was given, none may be recorded: {events:#?}"
    );
    let write = finished(&events, "write");
    assert_eq!(write["status"], "skipped");
    assert!(
        write["reason"].as_str().unwrap_or("").contains("ok"),
        "{write}"
    );
    let end = events.last().unwrap();
    assert_eq!(end["event"], "run_finished");
    assert_eq!(end["exit_code"], 3);
    assert!(!dir.path().join("out.txt").exists());
    assert!(dir.path().join("fin.txt").exists());
}

#[test]
fn an_approval_by_approve_flag_records_how_who_and_when() {
    let dir = dir_with("playbook.yaml", DEMO);
    flow(
        dir.path(),
        &["apply", "playbook.yaml", "--approve", "ok"],
        &[],
    )
    .code(0);
    let events = journal_events(&only_run(&dir.path().join(".flow")));
    let approvals: Vec<&Value> = events.iter().filter(|e| e["event"] == "approval").collect();
    assert_eq!(approvals.len(), 1, "{events:#?}");
    assert_eq!(approvals[0]["step"], "ok");
    assert_eq!(approvals[0]["approved"], true);
    assert_eq!(approvals[0]["how"], "--approve");
    assert_eq!(approvals[0]["user"], user().as_str());
    assert_eq!(approvals[0]["host"], host().as_str());
    timestamp(&approvals[0]["at"]);
}

#[test]
fn a_decline_on_the_terminal_is_recorded_as_declined_by_terminal() {
    let dir = dir_with(
        "playbook.yaml",
        r#"flow: 1
steps:
  first:
    type: file.write
    with: { path: first.txt, content: one }
  ok:
    type: confirm
    with: { message: "Proceed now?" }
  after:
    type: file.write
    with: { path: after.txt, content: two }
"#,
    );
    let mut terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.answer("Proceed now?", "n\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 3, "{screen}");
    assert!(!dir.path().join("after.txt").exists(), "{screen}");
    let run = only_run(&dir.path().join(".flow"));
    let record = run_json(&run);
    assert_eq!(record["status"], "declined");
    assert_eq!(record["exit_code"], 3);
    let events = journal_events(&run);
    let approval = events
        .iter()
        .find(|e| e["event"] == "approval")
        .unwrap_or_else(|| panic!("no approval recorded: {events:#?}"));
    assert_eq!(approval["step"], "ok");
    assert_eq!(approval["approved"], false);
    assert_eq!(approval["how"], "terminal");
    assert_eq!(approval["user"], user().as_str());
    assert_eq!(approval["host"], host().as_str());
    timestamp(&approval["at"]);
    assert_eq!(finished(&events, "ok")["status"], "declined");
    assert_eq!(finished(&events, "after")["status"], "skipped");
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    assert_eq!(events.last().unwrap()["exit_code"], 3);
}

// ---------------------------------------------------------------- where

#[test]
fn state_dir_flag_puts_the_journal_there_and_runs_reads_it_from_there() {
    let dir = dir_with("playbook.yaml", DEMO);
    flow(
        dir.path(),
        &["apply", "playbook.yaml", "--yes", "--state-dir", "custom"],
        &[],
    )
    .code(0);
    assert!(
        !dir.path().join(".flow").exists(),
        "the default .flow was used"
    );
    let run = only_run(&dir.path().join("custom"));
    assert_eq!(run_json(&run)["status"], "succeeded");
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    flow(dir.path(), &["--state-dir", "custom", "runs"], &[])
        .code(0)
        .stdout_has(&id);
    flow(dir.path(), &["show", &id, "--state-dir", "custom"], &[])
        .code(0)
        .stdout_has(&id);
    let default = flow(dir.path(), &["runs"], &[]);
    default.code(0);
    assert!(!default.stdout.contains(&id), "{}", default.context());
}

#[test]
fn flow_state_dir_env_puts_the_journal_there_and_the_flag_wins_over_it() {
    let dir = dir_with("playbook.yaml", DEMO);
    let env = [("FLOW_STATE_DIR", "from-env")];
    flow(dir.path(), &["apply", "playbook.yaml", "--yes"], &env).code(0);
    assert!(
        !dir.path().join(".flow").exists(),
        "the default .flow was used"
    );
    let run = only_run(&dir.path().join("from-env"));
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    flow(dir.path(), &["runs"], &env).code(0).stdout_has(&id);
    flow(dir.path(), &["show", &id], &env)
        .code(0)
        .stdout_has(&id);

    flow(
        dir.path(),
        &[
            "apply",
            "playbook.yaml",
            "--yes",
            "--state-dir",
            "from-flag",
        ],
        &env,
    )
    .code(0);
    only_run(&dir.path().join("from-flag"));
    assert_eq!(run_dirs(&dir.path().join("from-env")).len(), 1);
}

// ---------------------------------------------------------------- flow runs / show

#[test]
fn flow_runs_without_runs_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ran = flow(dir.path(), &["runs"], &[]);
    ran.code(0);
    assert_eq!(
        ran.stdout,
        "No runs recorded in .flow/runs yet: `flow apply` records each run there.\n"
    );
}

fn new_run(state: &Path, before: &[std::path::PathBuf]) -> String {
    let after = run_dirs(state);
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new[0].file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn flow_runs_lists_id_playbook_started_duration_status_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "works.yaml", DEMO);
    write(dir.path(), "fails.yaml", FAILING);
    write(dir.path(), "approval.yaml", DEMO);
    let state = dir.path().join(".flow");
    let mut ids = Vec::new();
    for (args, code) in [
        (&["apply", "works.yaml", "--yes"][..], 0),
        (&["apply", "fails.yaml"][..], 1),
        (&["apply", "approval.yaml"][..], 3),
    ] {
        // Runs a second apart, so their order is beyond doubt.
        if !ids.is_empty() {
            std::thread::sleep(Duration::from_millis(1100));
        }
        let before = run_dirs(&state);
        flow(dir.path(), args, &[]).code(code);
        ids.push(new_run(&state, &before));
    }
    let ran = flow(dir.path(), &["runs"], &[]);
    ran.code(0);
    assert_eq!(
        mask(&ran.stdout),
        "  run  playbook  started  duration  status  resumable
  ─  ─  ─  ─  ─  ─
  RUNID  approval.yaml  TIME  DUR  needs approval  yes
  RUNID  fails.yaml  TIME  DUR  failed  yes
  RUNID  works.yaml  TIME  DUR  succeeded  -",
        "{}",
        ran.stdout
    );
    let listed: Vec<&str> = ran
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, vec![&*ids[2], &*ids[1], &*ids[0]], "{}", ran.stdout);
}

/// flow writes timestamps without trailing zeros (`…:14Z` at a whole second, `…:14.5Z`), so
/// two runs in the same second must still be listed by time, not by the text of the time.
#[test]
fn flow_runs_orders_runs_of_the_same_second_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let record = |id: &str, started: &str| {
        json!({
            "run_id": id, "name": "x", "playbook": "x.yaml", "playbook_hash": "00",
            "params": {}, "secret_params": [], "started_at": started,
            "finished_at": started, "duration_ms": 1, "status": "succeeded",
            "exit_code": 0, "error": null, "user": "u", "host": "h", "flow_version": "0.1.0"
        })
    };
    for (id, started) in [
        ("20261123-025014-ffff", "2026-11-23T02:50:14Z"),
        ("20261123-025014-0001", "2026-11-23T02:50:14.5Z"),
    ] {
        write(
            dir.path(),
            &format!(".flow/runs/{id}/run.json"),
            &serde_json::to_string_pretty(&record(id, started)).unwrap(),
        );
        write(dir.path(), &format!(".flow/runs/{id}/events.jsonl"), "");
    }
    let ran = flow(dir.path(), &["runs"], &[]);
    ran.code(0);
    let listed: Vec<&str> = ran
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        listed,
        vec!["20261123-025014-0001", "20261123-025014-ffff"],
        "the run started at 14.5 s is newer than the one at 14 s:\n{}",
        ran.stdout
    );
}

#[test]
fn flow_show_prints_record_steps_approvals_and_outputs() {
    let dir = dir_with("playbook.yaml", DEMO);
    flow(
        dir.path(),
        &["apply", "playbook.yaml", "--yes"],
        &[("JOURNAL_TEST_PW", "hunter2-secret")],
    )
    .code(0);
    let run = only_run(&dir.path().join(".flow"));
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let ran = flow(dir.path(), &["show", &id], &[]);
    ran.code(0);
    let hash = sha256_of(&dir.path().join("playbook.yaml"));
    let expected = format!(
        "Run RUNID — journal-demo
  playbook  playbook.yaml (sha256 {hash12})
  started  TIME
  finished  TIME
  duration  DUR
  status  succeeded (exit 0)
  by  {user}@{host}
  params  who=ops, pw=***

Steps
  step  status  duration  detail
  ─  ─  ─  ─
  hello  succeeded  DUR
  skipme  skipped  DUR  when: params.who == 'nobody'
  ok  succeeded  DUR
  write  succeeded  DUR
  fin  succeeded  DUR

Approvals
  ok approved via --yes by {user}@{host} at TIME

Outputs
  greeting  hi ops",
        hash12 = &hash[..12],
        user = user(),
        host = host(),
    );
    assert_eq!(mask(&ran.stdout), expected, "{}", ran.stdout);
    assert!(ran.stdout.contains(&id));

    // A unique prefix shows the same page.
    let by_prefix = flow(dir.path(), &["show", &id[..15]], &[]);
    by_prefix.code(0);
    assert_eq!(by_prefix.stdout, ran.stdout);
}

#[test]
fn flow_show_of_a_failed_run_shows_the_error_and_skip_reason() {
    let dir = dir_with("playbook.yaml", FAILING);
    flow(dir.path(), &["apply", "playbook.yaml"], &[]).code(1);
    let id = only_run(&dir.path().join(".flow"))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let ran = flow(dir.path(), &["show", &id], &[]);
    ran.code(0);
    let page = mask(&ran.stdout);
    for line in [
        "  status  failed (exit 1)",
        "  made  succeeded  DUR",
        "  never  skipped  DUR  not run: step `flaky` failed",
        "  made.undo  succeeded  DUR",
        "  fin  succeeded  DUR",
    ] {
        assert!(
            page.lines().any(|l| l == line),
            "no line {line:?} in:\n{page}"
        );
    }
    assert!(
        page.lines()
            .any(|l| l.starts_with("  flaky  failed  DUR") && l.contains("exited with 7")),
        "{page}"
    );
    assert!(
        page.contains("Error: ") && page.contains("exited with 7"),
        "{page}"
    );
}

#[test]
fn flow_show_unknown_or_ambiguous_id_is_exit_2() {
    let dir = dir_with("playbook.yaml", DEMO);
    // No runs at all.
    let none = flow(dir.path(), &["show", "20261123"], &[]);
    none.code(2);
    assert!(none.stdout.is_empty(), "{}", none.context());
    flow(dir.path(), &["apply", "playbook.yaml", "--yes"], &[]).code(0);
    std::thread::sleep(Duration::from_millis(50));
    flow(dir.path(), &["apply", "playbook.yaml", "--yes"], &[]).code(0);
    let unknown = flow(dir.path(), &["show", "nope"], &[]);
    unknown.code(2).stderr_has("no run `nope`");
    assert!(unknown.stdout.is_empty(), "{}", unknown.context());
    let ambiguous = flow(dir.path(), &["show", "2"], &[]);
    ambiguous.code(2).stderr_has("matches several runs");
}

/// A run killed outright (no chance to write its end) leaves a journal whose last line may be
/// cut: `flow show` and `flow runs` still read it.
#[test]
fn a_crashed_run_with_a_cut_last_line_still_shows() {
    let dir = dir_with(
        "playbook.yaml",
        r#"flow: 1
name: crashy
steps:
  first:
    type: file.write
    with: { path: first.txt, content: one }
  long:
    type: exec
    with: { shell: 'echo $$ > shell.pid; sleep 30 & echo $! > sleep.pid; wait' }
"#,
    );
    let mut child = std::process::Command::new(flow_bin())
        .args(["apply", "playbook.yaml"])
        .current_dir(dir.path())
        .env_remove("FLOW_STATE_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn flow");
    let started = wait_for_file(&dir.path().join("sleep.pid"), Duration::from_secs(20));
    signal(child.id(), "KILL");
    wait_bounded(&mut child, Duration::from_secs(10));
    // Clean up what the killed flow left running.
    for file in ["sleep.pid", "shell.pid"] {
        if let Ok(text) = std::fs::read_to_string(dir.path().join(file))
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    assert!(started, "the long step never started");

    let run = only_run(&dir.path().join(".flow"));
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(run_json(&run)["status"], "running");
    let events = journal_events(&run);
    assert!(!events.iter().any(|e| e["event"] == "run_finished"));
    // A write torn by the crash.
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("events.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut journal, br#"{"event":"step_finished","step":"lo"#).unwrap();
    drop(journal);

    let shown = flow(dir.path(), &["show", &id], &[]);
    shown.code(0);
    let page = mask(&shown.stdout);
    assert!(page.contains("Run RUNID — crashy"), "{page}");
    assert!(page.contains("  status  did not finish"), "{page}");
    assert!(page.contains("  first  succeeded  DUR"), "{page}");
    assert!(page.contains("started, no end recorded: long"), "{page}");
    let runs = flow(dir.path(), &["runs"], &[]);
    runs.code(0);
    assert!(
        mask(&runs.stdout).contains("  RUNID  playbook.yaml  TIME  -  did not finish"),
        "{}",
        runs.stdout
    );
}

// ---------------------------------------------------------------- secrets

const SECRET: &str = "Zq7-hunter2-S3cret-Tk9";

const SECRETIVE: &str = r#"flow: 1
name: secretive
params:
  pw: { type: string, secret: true, env: JOURNAL_SECRET }
steps:
  look:
    type: exec
    effect: read
    with:
      shell: 'echo "read:$PW"'
      env: { PW: "{{ params.pw }}" }
  echo_both:
    type: exec
    with:
      shell: 'echo "out:$PW"; echo "err:$PW" >&2'
      env: { PW: "{{ params.pw }}" }
  as_argument:
    type: exec
    with: { command: [echo, "password={{ params.pw }}"] }
  fail_with_it:
    type: exec
    with:
      shell: 'echo "boom $PW" >&2; exit 4'
      env: { PW: "{{ params.pw }}" }
finally:
  tell:
    type: log
    with: { message: "pw was {{ params.pw }}" }
outputs:
  echoed: "{{ steps.echo_both.stdout }}"
  raw: "{{ params.pw }}"
"#;

/// Plans, applies (human, verbose, with a GitHub summary; then JSON), lists and shows runs
/// of a playbook that echoes its secret on stdout and stderr and fails with it in the error:
/// the secret is in nothing flow printed and in no file under the folder.
#[test]
fn a_secret_is_in_no_output_and_no_file_state_plan_or_github_summary() {
    let dir = dir_with("playbook.yaml", SECRETIVE);
    let env = [
        ("JOURNAL_SECRET", SECRET),
        ("GITHUB_STEP_SUMMARY", "gh-summary.md"),
    ];
    let mut printed = Vec::new();
    let plan = flow(
        dir.path(),
        &["plan", "playbook.yaml", "--out", "plan.json"],
        &env,
    );
    plan.code(0);
    printed.push(plan);
    let apply = flow(dir.path(), &["apply", "plan.json", "-v"], &env);
    apply.code(1);
    printed.push(apply);
    let secret_arg = format!("pw={SECRET}");
    let json = flow(
        dir.path(),
        &[
            "apply",
            "playbook.yaml",
            "--output",
            "json",
            "-p",
            &secret_arg,
        ],
        &[("GITHUB_STEP_SUMMARY", "gh-summary.md")],
    );
    json.code(1);
    printed.push(json);
    let runs = flow(dir.path(), &["runs"], &[]);
    printed.push(runs);
    for run in run_dirs(&dir.path().join(".flow")) {
        let id = run.file_name().unwrap().to_string_lossy().into_owned();
        printed.push(flow(dir.path(), &["show", &id], &[]));
    }
    for ran in &printed {
        assert!(
            !ran.both().contains(SECRET),
            "flow printed the secret:\n{}",
            ran.context()
        );
        assert!(!ran.both().contains("hunter2"), "{}", ran.context());
    }
    let files = walk(dir.path());
    assert!(files.len() >= 6, "{files:?}");
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        assert!(
            !text.contains(SECRET),
            "{} holds the secret:\n{text}",
            file.display()
        );
        assert!(
            !text.contains("hunter2"),
            "{} holds part of the secret",
            file.display()
        );
    }
    // The values were there, masked: the check above is not vacuous.
    let runs = run_dirs(&dir.path().join(".flow"));
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let journal = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
        for masked in [
            "out:***",
            "err:***",
            "password=***",
            "boom ***",
            "pw was ***",
        ] {
            assert!(
                journal.contains(masked),
                "{masked:?} not in {}",
                run.display()
            );
        }
        assert_eq!(run_json(run)["secret_params"], json!(["pw"]));
        assert!(
            run_json(run)["error"]
                .as_str()
                .unwrap_or("")
                .contains("boom ***")
        );
    }
    let summary = std::fs::read_to_string(dir.path().join("gh-summary.md")).unwrap();
    assert!(
        summary.contains("FAILED") && summary.contains(r"boom \*\*\*"),
        "{summary}"
    );
    assert!(summary.matches("### ").count() >= 2, "{summary}");
}

/// A command that prints megabytes must not fill the disk with the journal: each step's
/// output lines are recorded up to 4 MiB, then one line says how much was left out.
#[test]
fn the_journal_keeps_a_bounded_share_of_a_chatty_steps_output() {
    let out = crate::common::Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  chatty:\n    type: exec\n    with: { shell: \"head -c 8000000 /dev/zero | tr '\\\\0' x | fold -w 1000\" }\n",
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let run = only_run(&out.path(".flow"));
    let size = std::fs::metadata(run.join("events.jsonl"))
        .expect("journal")
        .len();
    assert!(size < 6 << 20, "the journal holds {size} bytes");
    let events = journal_events(&run);
    let note = events
        .iter()
        .find(|e| e["event"] == "step_output" && e["stream"] == "flow")
        .expect("a line saying what was left out");
    assert!(
        note["line"]
            .as_str()
            .unwrap_or("")
            .contains("were not recorded in the journal"),
        "{note}"
    );
    // The view still saw every line.
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("\"stream\":\"stdout\""))
            .count(),
        8000
    );
}

/// A password written in the playbook itself — a Redis block's `password:` in `defaults`, a
/// URL's password in a command — is masked in `run.json`'s step fingerprints (their preview
/// is the step's `with`), as everywhere else: also where the same text stands in a field
/// that is not secret.
#[test]
fn a_password_written_in_the_playbook_is_not_in_run_json() {
    let dir = dir_with(
        "playbook.yaml",
        r#"flow: 1
name: written
defaults:
  redis: { url: "redis://127.0.0.1:1", password: "Lit3ral-Redis-pw" }
steps:
  ping:
    type: redis.command
    with: { command: [PING] }
  fetch:
    type: exec
    needs: [ping]
    with: { command: [echo, "https://deploy:Url-Pass-w0rd@example.invalid/x", "Lit3ral-Redis-pw"] }
"#,
    );
    flow(dir.path(), &["apply", "playbook.yaml", "--yes"], &[]).code(1);
    let runs = run_dirs(&dir.path().join(".flow"));
    assert_eq!(runs.len(), 1);
    let text = std::fs::read_to_string(runs[0].join("run.json")).expect("run.json");
    assert!(text.contains("\"fingerprints\""), "{text}");
    assert!(
        text.contains("deploy:***@"),
        "the preview holds the URL, masked: {text}"
    );
    for secret in ["Lit3ral-Redis-pw", "Url-Pass-w0rd"] {
        assert!(!text.contains(secret), "run.json holds {secret}:\n{text}");
    }
}
