//! `flow apply --resume RUN` (DESIGN §5): a failed, declined, interrupted or killed run goes on
//! from its journal — finished steps keep their outputs and do not run again, the others run
//! from the playbook as it is now, in the same run folder with the same run id and tokens.

use crate::common::read_tree;
use crate::common::run::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `made` is a write that counts its runs; `flaky` fails until `fixed` exists; `after` shows
/// what `made` returned. Each step appends its idempotency token to `tokens`.
const WRITE_THEN_FAIL: &str = r#"flow: 1
name: write-then-fail
steps:
  made:
    type: exec
    with: { shell: 'echo made >> counter; echo "$FLOW_STEP_ID $FLOW_IDEMPOTENCY_TOKEN" >> tokens; echo i-0abc' }
  flaky:
    type: exec
    with: { shell: 'echo "$FLOW_STEP_ID $FLOW_IDEMPOTENCY_TOKEN" >> tokens; test -f fixed' }
  after:
    type: file.write
    with: { path: after.txt, content: "made {{ steps.made.stdout }}" }
finally:
  fin:
    type: exec
    with: { shell: 'echo fin {{ steps.flaky.status | quote }} >> finals' }
"#;

fn dir_with(playbook: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "playbook.yaml", playbook);
    dir
}

/// The id of the one run in `dir`.
fn run_id(dir: &Path) -> String {
    only_run(&dir.join(".flow"))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    read(&dir.join(name)).lines().map(str::to_string).collect()
}

fn resume(dir: &Path, id: &str, extra: &[&str]) -> Ran {
    let mut args = vec!["apply", "--resume", id];
    args.extend_from_slice(extra);
    flow(dir, &args, &[])
}

/// A run of WRITE_THEN_FAIL that failed at `flaky`.
fn failed_run() -> (tempfile::TempDir, String) {
    let dir = dir_with(WRITE_THEN_FAIL);
    flow(dir.path(), &["apply", "playbook.yaml"], &[]).code(1);
    let id = run_id(dir.path());
    (dir, id)
}

#[test]
fn a_failure_after_a_write_resumes_without_running_the_write_again() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    assert_eq!(lines(dir, "counter"), vec!["made"]);
    assert!(!dir.join("after.txt").exists());
    write(dir, "fixed", "");
    let ran = resume(dir, &id, &[]);
    ran.code(0)
        .stdout_has(&format!("resume write-then-fail (run {id}, resume 1)"))
        .stdout_has("✔ made kept (succeeded before)")
        .stdout_has(&format!("Resume 1 of run {id}: kept from before: made."));
    assert!(
        mask(&ran.stdout).contains("\n  made  succeeded (kept)  DUR\n"),
        "{}",
        ran.context()
    );
    assert_eq!(lines(dir, "counter"), vec!["made"], "the write ran again");
    assert_eq!(read(&dir.join("after.txt")), "made i-0abc");
    // `finally` ran once at the end of the run and once at the end of the resume.
    assert_eq!(lines(dir, "finals"), vec!["fin failed", "fin succeeded"]);
    // One run folder: the resume went on with the same run.
    assert_eq!(run_id(dir), id);
    let record = run_json(&only_run(&dir.join(".flow")));
    assert_eq!(record["status"], "succeeded", "{record:#}");
    assert_eq!(record["resumes"].as_array().map(Vec::len), Some(1));
    assert_eq!(record["resumes"][0]["kept"], serde_json::json!(["made"]));
}

#[test]
fn a_resumed_step_gets_the_same_run_id_and_idempotency_token() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    write(dir, "fixed", "");
    resume(dir, &id, &[]).code(0);
    let flaky: Vec<String> = lines(dir, "tokens")
        .into_iter()
        .filter(|l| l.starts_with("flaky "))
        .collect();
    assert_eq!(flaky.len(), 2, "flaky ran in the run and in the resume");
    assert_eq!(flaky[0], flaky[1], "the resume used another token");
    assert_eq!(
        flaky[0],
        format!(
            "flaky {}",
            flow_engine::run::idempotency_token(&id, "flaky", None)
        )
    );
}

#[test]
fn the_failed_step_may_be_fixed_in_the_playbook_then_resumed() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    let fixed = WRITE_THEN_FAIL.replace("test -f fixed", "true");
    write(dir, "playbook.yaml", &fixed);
    resume(dir, &id, &[]).code(0);
    assert_eq!(lines(dir, "counter"), vec!["made"]);
    assert_eq!(read(&dir.join("after.txt")), "made i-0abc");
}

#[test]
fn a_change_to_a_step_that_finished_is_refused_with_exit_2_and_a_diff() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    write(dir, "fixed", "");
    write(
        dir,
        "playbook.yaml",
        &WRITE_THEN_FAIL.replace("echo i-0abc", "echo i-0def"),
    );
    let before = read(&only_run(&dir.join(".flow")).join("events.jsonl"));
    let ran = resume(dir, &id, &[]);
    ran.code(2)
        .stderr_has(&format!(
            "error: the playbook changed under steps that already finished in run {id}; nothing was run"
        ))
        .stderr_has("step `made` finished in the run and changed since")
        .stderr_has("i-0abc")
        .stderr_has("i-0def")
        .stderr_has("help: a resume may change only steps that have not finished");
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("- ") && l.contains("i-0abc")),
        "no `-` line of the diff:\n{}",
        ran.context()
    );
    assert_eq!(lines(dir, "counter"), vec!["made"]);
    assert!(!dir.join("after.txt").exists());
    let run = only_run(&dir.join(".flow"));
    assert_eq!(read(&run.join("events.jsonl")), before, "the journal grew");
    assert_eq!(run_json(&run)["status"], "failed");
    // Changing it back makes the resume possible again.
    write(dir, "playbook.yaml", WRITE_THEN_FAIL);
    resume(dir, &id, &[]).code(0);
}

#[test]
fn a_new_step_before_a_finished_one_changes_what_it_waited_for_and_is_refused() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    let inserted = WRITE_THEN_FAIL.replace(
        "steps:\n  made:",
        "steps:\n  first:\n    type: log\n    with: { message: hi }\n  made:",
    );
    write(dir, "playbook.yaml", &inserted);
    resume(dir, &id, &[])
        .code(2)
        .stderr_has("step `made` finished in the run and changed since")
        .stderr_has("first");
}

#[test]
fn a_step_removed_after_it_finished_is_refused() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    let removed = WRITE_THEN_FAIL
        .replace(
            "  made:\n    type: exec\n    with: { shell: 'echo made >> counter; echo \"$FLOW_STEP_ID $FLOW_IDEMPOTENCY_TOKEN\" >> tokens; echo i-0abc' }\n",
            "",
        )
        .replace("made {{ steps.made.stdout }}", "none");
    assert_ne!(removed, WRITE_THEN_FAIL);
    write(dir, "playbook.yaml", &removed);
    resume(dir, &id, &[])
        .code(2)
        .stderr_has("step `made` finished in the run and is no longer a step of the playbook");
}

/// `who` is read by `greet` (which finishes) and `later` by `gate` (which does not).
const PARAMS: &str = r#"flow: 1
params:
  who: { type: string, default: ops }
  later: { type: string, required: false }
steps:
  greet:
    type: exec
    with: { shell: 'echo {{ params.who | quote }} >> greeted' }
  pick:
    type: choose
    with:
      prompt: Which one?
      options: [a, b]
      default: "{{ params.later }}"
  use:
    type: file.write
    with: { path: picked.txt, content: "{{ steps.pick.value }}" }
"#;

#[test]
fn a_param_the_run_lacked_may_be_given_on_resume() {
    let dir = dir_with(PARAMS);
    let dir = dir.path();
    flow(dir, &["apply", "playbook.yaml"], &[])
        .code(3)
        .stdout_has("pass `-p later=VALUE`");
    let id = run_id(dir);
    assert_eq!(
        run_json(&only_run(&dir.join(".flow")))["status"],
        "needs_approval"
    );
    resume(dir, &id, &["-p", "later=b"]).code(0);
    assert_eq!(read(&dir.join("picked.txt")), "b");
    assert_eq!(lines(dir, "greeted"), vec!["ops"]);
}

#[test]
fn a_param_a_finished_step_read_may_not_change() {
    let dir = dir_with(PARAMS);
    let dir = dir.path();
    flow(dir, &["apply", "playbook.yaml"], &[]).code(3);
    let id = run_id(dir);
    resume(dir, &id, &["-p", "later=b", "-p", "who=dev"])
        .code(2)
        .stderr_has("step `greet` finished in the run and changed since")
        .stderr_has("\"ops\"")
        .stderr_has("\"dev\"");
    assert_eq!(lines(dir, "greeted"), vec!["ops"]);
}

#[test]
fn a_run_that_needed_an_approval_resumes_with_approve_without_redoing_what_came_before() {
    let dir = dir_with(
        r#"flow: 1
steps:
  backup:
    type: exec
    with: { shell: 'echo backup >> counter' }
  go_ahead:
    type: confirm
    with: { message: "Restore?" }
  restore:
    type: exec
    with: { shell: 'echo restore >> counter' }
"#,
    );
    let dir = dir.path();
    flow(dir, &["apply", "playbook.yaml"], &[])
        .code(3)
        .stdout_has("pass `--approve go_ahead`");
    let id = run_id(dir);
    let ran = resume(dir, &id, &["--approve", "go_ahead"]);
    ran.code(0);
    assert_eq!(lines(dir, "counter"), vec!["backup", "restore"]);
    let shown = flow(dir, &["show", &id], &[]);
    shown.code(0).stdout_has(&format!(
        "go_ahead approved via --approve by {}@{}",
        user(),
        host()
    ));
}

#[test]
fn for_each_resumes_per_element() {
    let dir = dir_with(
        r#"flow: 1
steps:
  each:
    type: exec
    for_each: [a, b, c, d, e]
    concurrency: 5
    with: { shell: 'echo {{ item | quote }} >> counter; case {{ item | quote }} in b|d) test -f fixed || exit 1;; esac; echo out-{{ item | quote }}' }
  report:
    type: file.write
    with: { path: report.txt, content: "{{ steps.each.results | map(attribute='stdout') | join(',') }}" }
"#,
    );
    let dir = dir.path();
    flow(dir, &["apply", "playbook.yaml"], &[]).code(1);
    let id = run_id(dir);
    let mut first = lines(dir, "counter");
    first.sort();
    assert_eq!(first, vec!["a", "b", "c", "d", "e"]);
    write(dir, "fixed", "");
    let ran = resume(dir, &id, &["--output", "json"]);
    ran.code(0);
    let mut counted = lines(dir, "counter");
    counted.sort();
    assert_eq!(
        counted,
        vec!["a", "b", "b", "c", "d", "d", "e"],
        "only the failed elements ran again"
    );
    assert_eq!(
        read(&dir.join("report.txt")),
        "out-a,out-b,out-c,out-d,out-e"
    );
    let kept: Vec<u64> = ran
        .events()
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["kept"] == true)
        .filter_map(|e| e["element"].as_u64())
        .collect();
    assert_eq!(kept, vec![0, 2, 4]);
}

#[test]
fn a_run_that_succeeded_or_an_unknown_id_is_refused_with_exit_2() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    write(dir, "fixed", "");
    resume(dir, &id, &[]).code(0);
    resume(dir, &id, &[]).code(2).stderr_has(&format!(
        "error: run {id} succeeded: there is nothing to resume"
    ));
    resume(dir, "19990101-000000-0000", &[])
        .code(2)
        .stderr_has("error: no run `19990101-000000-0000` in .flow/runs; `flow runs` lists them");
    flow(dir, &["apply", "--resume", &id, "playbook.yaml"], &[]).code(2);
    assert_eq!(lines(dir, "counter"), vec!["made"]);
}

#[test]
fn a_prefix_of_the_run_id_is_enough() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    write(dir, "fixed", "");
    resume(dir, &id[..12], &[]).code(0);
}

/// Starts `flow ARGS` in `dir` in the background, its output going to files there.
fn start(dir: &Path, args: &[&str]) -> Child {
    let stdout = std::fs::File::create(dir.join("flow.out")).unwrap();
    let stderr = std::fs::File::create(dir.join("flow.err")).unwrap();
    Command::new(flow_bin())
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

/// Kills what a test left running, by the pids its steps wrote.
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

/// `first` (with an undo) finishes; `long` waits until `go` exists (writing its sleep's pid);
/// `after` records that it ran.
const LONG: &str = r#"flow: 1
name: long
steps:
  first:
    type: exec
    with: { shell: 'echo first >> counter' }
    undo:
      type: exec
      with: { shell: 'echo undo >> undone' }
  long:
    type: exec
    with: { shell: 'test -f go && exit 0; sleep 30 & echo $! > sleep.pid; wait' }
  after:
    type: exec
    with: { shell: 'echo after >> counter; test ! -f break' }
finally:
  fin:
    type: exec
    with: { shell: 'echo fin >> finals' }
"#;

fn stopped_by(signal_name: &str) -> (tempfile::TempDir, String) {
    let dir = dir_with(LONG);
    let path = dir.path();
    let _reaper = Reaper(vec![path.join("sleep.pid")]);
    let mut child = start(path, &["apply", "playbook.yaml"]);
    assert!(
        wait_for_file(&path.join("sleep.pid"), Duration::from_secs(20)),
        "the long step never started: {}",
        read(&path.join("flow.err"))
    );
    signal(child.id(), signal_name);
    wait_bounded(&mut child, Duration::from_secs(20));
    let id = run_id(path);
    (dir, id)
}

#[test]
fn an_interrupted_run_resumes() {
    let (dir, id) = stopped_by("INT");
    let dir = dir.path();
    assert_eq!(
        run_json(&only_run(&dir.join(".flow")))["status"],
        "interrupted"
    );
    // Ctrl-C ran the undo of `first`: what it did was reversed, so it runs again.
    assert_eq!(lines(dir, "undone"), vec!["undo"]);
    write(dir, "go", "");
    resume(dir, &id, &[]).code(0);
    assert_eq!(lines(dir, "counter"), vec!["first", "first", "after"]);
    assert_eq!(lines(dir, "finals"), vec!["fin", "fin"]);
}

#[test]
fn a_killed_run_resumes_and_keeps_the_undo_of_what_it_finished() {
    let (dir, id) = stopped_by("KILL");
    let dir = dir.path();
    let runs = flow(dir, &["runs"], &[]);
    runs.code(0);
    assert!(
        mask(&runs.stdout).contains("did not finish  yes"),
        "{}",
        runs.stdout
    );
    assert!(!dir.join("undone").exists());
    write(dir, "go", "");
    // `after` fails in the resume: the undo of `first`, kept from the killed run, runs.
    write(dir, "break", "");
    resume(dir, &id, &[]).code(1);
    assert_eq!(lines(dir, "counter"), vec!["first", "after"]);
    assert_eq!(lines(dir, "undone"), vec!["undo"]);
    assert_eq!(lines(dir, "finals"), vec!["fin"]);
    // `first` was undone: a second resume runs it again.
    std::fs::remove_file(dir.join("break")).unwrap();
    resume(dir, &id, &[]).code(0);
    assert_eq!(
        lines(dir, "counter"),
        vec!["first", "after", "first", "after"]
    );
}

#[test]
fn a_second_resume_of_a_run_in_progress_is_refused() {
    let (dir, id) = stopped_by("KILL");
    let path = dir.path();
    let _reaper = Reaper(vec![path.join("sleep.pid")]);
    std::fs::remove_file(path.join("sleep.pid")).unwrap();
    let mut first = start(path, &["apply", "--resume", &id]);
    assert!(
        wait_for_file(&path.join("sleep.pid"), Duration::from_secs(20)),
        "the resume never reached the long step: {}",
        read(&path.join("flow.err"))
    );
    let second = resume(path, &id, &[]);
    second.code(2).stderr_has(&format!(
        "error: run {id} is being applied or resumed by another flow (pid {}) right now",
        first.id()
    ));
    let runs = flow(path, &["runs"], &[]);
    assert!(
        mask(&runs.stdout).contains("running (resumed 1×)  -"),
        "{}",
        runs.stdout
    );
    signal(first.id(), "INT");
    assert_eq!(wait_bounded(&mut first, Duration::from_secs(20)), 130);
}

#[test]
fn a_run_in_progress_cannot_be_resumed_beside_it() {
    let dir = dir_with(LONG);
    let path = dir.path();
    let _reaper = Reaper(vec![path.join("sleep.pid")]);
    let mut child = start(path, &["apply", "playbook.yaml"]);
    assert!(wait_for_file(
        &path.join("sleep.pid"),
        Duration::from_secs(20)
    ));
    let id = run_id(path);
    resume(path, &id, &[])
        .code(2)
        .stderr_has("is being applied or resumed by another flow");
    signal(child.id(), "INT");
    wait_bounded(&mut child, Duration::from_secs(20));
}

#[test]
fn show_lists_the_attempts_across_the_run_and_its_resumes_and_runs_marks_resumable() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    let runs = flow(dir, &["runs"], &[]);
    assert!(
        mask(&runs.stdout).contains("  failed  yes"),
        "{}",
        runs.stdout
    );
    let json = flow(dir, &["--output", "json", "runs"], &[]);
    let listed: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(listed[0]["resumable"], true);
    // A resume that fails again, then one that succeeds.
    resume(dir, &id, &[]).code(1);
    write(dir, "fixed", "");
    resume(dir, &id, &[]).code(0);
    let shown = flow(dir, &["show", &id], &[]);
    shown.code(0);
    let page = mask(&shown.stdout);
    let who = format!("{}@{}", user(), host());
    assert!(
        page.contains("  status  succeeded (resumed 2×) (exit 0)"),
        "{page}"
    );
    assert!(
        page.contains(&format!("  resume 1  TIME by {who} (kept: made)")),
        "{page}"
    );
    assert!(
        page.contains(&format!("  resume 2  TIME by {who} (kept: made)")),
        "{page}"
    );
    assert!(
        page.contains(
            "Attempts, run then resumes
  step  run  resume 1  resume 2
  ─  ─  ─  ─
  made  succeeded  kept  kept
  flaky  failed  failed  succeeded
  after  skipped  skipped  succeeded
  fin  succeeded  succeeded  succeeded"
        ),
        "{page}"
    );
    let runs = flow(dir, &["runs"], &[]);
    assert!(
        mask(&runs.stdout).contains("  succeeded (resumed 2×)  -"),
        "{}",
        runs.stdout
    );
}

#[test]
fn json_output_and_the_github_summary_say_it_is_a_resume_and_what_was_kept() {
    let (dir, id) = failed_run();
    let dir = dir.path();
    write(dir, "fixed", "");
    let ran = flow(
        dir,
        &["apply", "--resume", &id, "--output", "json"],
        &[("GITHUB_STEP_SUMMARY", "summary.md")],
    );
    ran.code(0);
    let events = ran.events();
    let started = events
        .iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["run_id"], id.as_str());
    assert_eq!(started["resumed"]["number"], 1);
    assert_eq!(started["resumed"]["kept"], serde_json::json!(["made"]));
    let made = finished(&events, "made");
    assert_eq!(made["kept"], true);
    assert_eq!(made["attempts"], 0);
    assert_eq!(made["outputs"]["stdout"], "i-0abc");
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "made"),
        "{events:#?}"
    );
    let summary = read(&dir.join("summary.md"));
    assert!(
        summary.contains(&format!(
            "Resume 1 of the run, by {}@{}; kept from before: made.",
            user(),
            host()
        )),
        "{summary}"
    );
    assert!(summary.contains("| made | KEPT |"), "{summary}");
    assert!(summary.contains("| flaky | RUN |"), "{summary}");
}

/// `secret` reads a secret param back (a read: its outputs are masked in the journal), `make`
/// echoes it from a write; `gate` fails until `fixed` exists; `use_read` / `use_write` write
/// what they got into files (a test reads those, the journal never holds them).
const SECRETS: &str = r#"flow: 1
params:
  token: { type: string, secret: true }
steps:
  secret:
    type: exec
    effect: read
    with: { shell: 'echo read >> counter; echo {{ params.token | quote }}' }
  gate:
    type: exec
    with: { shell: 'test -f fixed' }
  use_read:
    type: file.write
    with: { path: from_read.txt, content: "{{ steps.secret.stdout }}" }
"#;

#[test]
fn a_masked_output_of_a_read_is_read_again_and_the_secret_is_given_again() {
    let dir = dir_with(SECRETS);
    let dir = dir.path();
    flow(
        dir,
        &["apply", "playbook.yaml", "-p", "token=hunter2-xyz"],
        &[],
    )
    .code(1);
    let id = run_id(dir);
    write(dir, "fixed", "");
    resume(dir, &id, &[]).code(2).stderr_has(
        "help: `token` is secret, so the run's journal does not store it: give it again with `-p token=…`",
    );
    let ran = resume(dir, &id, &["-p", "token=hunter2-xyz"]);
    ran.code(0).stdout_lacks("hunter2-xyz");
    assert_eq!(read(&dir.join("from_read.txt")), "hunter2-xyz");
    assert_eq!(
        lines(dir, "counter"),
        vec!["read", "read"],
        "the read ran again"
    );
    assert!(
        !read_tree(&dir.join(".flow")).contains("hunter2-xyz"),
        "the secret reached the state dir"
    );
}

#[test]
fn a_changed_secret_a_finished_step_read_is_refused_without_showing_either() {
    let dir = dir_with(&SECRETS.replace("effect: read\n    ", ""));
    let dir = dir.path();
    flow(
        dir,
        &["apply", "playbook.yaml", "-p", "token=hunter2-xyz"],
        &[],
    )
    .code(1);
    let id = run_id(dir);
    let ran = resume(dir, &id, &["-p", "token=other-secret-9"]);
    ran.code(2)
        .stderr_has("step `secret` finished in the run and changed since, in a secret value");
    assert!(!ran.both().contains("hunter2-xyz") && !ran.both().contains("other-secret-9"));
}

#[test]
fn a_masked_output_of_a_write_that_a_later_step_reads_is_refused_naming_both() {
    let dir = dir_with(&SECRETS.replace("effect: read\n    ", ""));
    let dir = dir.path();
    flow(
        dir,
        &["apply", "playbook.yaml", "-p", "token=hunter2-xyz"],
        &[],
    )
    .code(1);
    let id = run_id(dir);
    write(dir, "fixed", "");
    let ran = resume(dir, &id, &["-p", "token=hunter2-xyz"]);
    ran.code(2)
        .stderr_has(&format!("error: step `secret` finished in run {id}, but its outputs held a secret, so the journal keeps them only as `***`, and step `use_read` reads `steps.secret.stdout`"))
        .stderr_has("help: start a new run instead: `flow apply playbook.yaml`")
        .stderr_lacks("hunter2-xyz");
    assert_eq!(lines(dir, "counter"), vec!["read"]);
    assert!(
        !dir.join("from_read.txt").exists(),
        "`***` was fed to a step"
    );
}

#[test]
fn a_run_declined_on_the_terminal_resumes_with_approve_keeping_the_answer_chosen() {
    let dir = dir_with(
        r#"flow: 1
steps:
  pick:
    type: choose
    with:
      prompt: Which backup?
      options: [daily/a.rdb, daily/b.rdb]
  ok:
    type: confirm
    with: { message: "Restore {{ steps.pick.value }}?" }
  restore:
    type: file.write
    with: { path: restored.txt, content: "{{ steps.pick.value }}" }
"#,
    );
    let dir = dir.path();
    let mut terminal = crate::common::pty::Terminal::start(dir, "apply playbook.yaml");
    terminal.wait_for("daily/b.rdb");
    terminal.answer("Which backup?", "\x1b[B\r");
    terminal.answer("Restore daily/b.rdb?", "n\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 3, "{screen}");
    let id = run_id(dir);
    assert_eq!(
        run_json(&only_run(&dir.join(".flow")))["status"],
        "declined"
    );
    // No terminal now: the choice made on the terminal is kept, not asked again.
    let ran = resume(dir, &id, &["--approve", "ok"]);
    ran.code(0).stdout_has("✔ pick kept (succeeded before)");
    assert_eq!(read(&dir.join("restored.txt")), "daily/b.rdb");
}
