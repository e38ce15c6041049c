//! Rollback (issue 22): every `undo` has an idempotency token of its own; a failed undo makes
//! the run `failed — rollback incomplete` (exit 4) in every view; a resume runs the failed
//! undos again before anything else; `flow plan` shows each write's undo and the order they
//! would run in. The story of the issue — a Redis password rotation on moto + sshd + redis
//! whose restart fails — ends fully rolled back, or says loudly which step is still applied.

use crate::common::moto::Moto;
use crate::common::redis::RedisServer;
use crate::common::run::*;
use crate::common::serve::Server;
use crate::common::sshd::Sshd;
use crate::common::{Flow, read_tree};
use flow_engine::run::{idempotency_token, undo_token};
use serde_json::Value;
use std::path::Path;

fn run_id(dir: &Path) -> String {
    only_run(&dir.join(".flow"))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A new folder holding `playbook`, applied there (with `env`) and exiting `code`: the folder
/// and the run's id.
fn applied(playbook: &str, env: &[(&str, &str)], code: i32) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "playbook.yaml", playbook);
    flow(dir.path(), &["apply", "playbook.yaml"], env).code(code);
    let id = run_id(dir.path());
    (dir, id)
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    read(&dir.join(name)).lines().map(str::to_string).collect()
}

fn runs_line(dir: &Path, id: &str) -> String {
    let runs = flow(dir, &["runs"], &[]);
    runs.code(0);
    runs.stdout
        .lines()
        .find(|l| l.trim_start().starts_with(id))
        .unwrap_or_else(|| panic!("no line for {id} in `flow runs`:\n{}", runs.stdout))
        .to_string()
}

// ---------------------------------------------------------------- tokens

#[test]
fn an_undo_token_is_its_own_and_fits_what_aws_accepts() {
    const RUN: &str = "20261123-021758-4f2a";
    let shape = regex::Regex::new(r"^[a-zA-Z0-9][-a-zA-Z0-9]{31,63}$").unwrap();
    for element in [None, Some(0), Some(7)] {
        let forward = idempotency_token(RUN, "rotate_secret", element);
        let undo = undo_token(RUN, "rotate_secret", element);
        assert_ne!(forward, undo, "the undo reuses the forward step's token");
        assert_eq!(
            undo,
            undo_token(RUN, "rotate_secret", element),
            "not stable"
        );
        assert!(
            shape.is_match(&undo),
            "{undo:?} is not a valid ClientRequestToken"
        );
    }
    assert_ne!(
        undo_token(RUN, "a", None),
        undo_token(RUN, "b", None),
        "two steps' undos share a token"
    );
    assert_ne!(
        undo_token(RUN, "a", Some(0)),
        undo_token(RUN, "a", Some(1)),
        "two elements' undos share a token"
    );
    // A step named like another step's undo cannot take its token either.
    assert_ne!(
        undo_token(RUN, "a", None),
        idempotency_token(RUN, "a.undo", None)
    );
}

/// `made`'s undo fails until `undo-works` exists; `boom` fails until `fixed` exists; each
/// command appends its step id and token to `tokens`.
const UNDO_TOKENS: &str = r#"flow: 1
name: undo-tokens
steps:
  made:
    type: exec
    with: { shell: 'echo "$FLOW_STEP_ID $FLOW_IDEMPOTENCY_TOKEN" >> tokens' }
    undo:
      type: exec
      with: { shell: 'echo "$FLOW_STEP_ID $FLOW_IDEMPOTENCY_TOKEN" >> tokens; test -f undo-works || { echo "cannot reach the API" >&2; exit 3; }' }
  boom:
    type: exec
    with: { shell: 'test -f fixed || { echo "restart failed" >&2; exit 1; }' }
finally:
  fin:
    type: exec
    with: { shell: 'echo "$FLOW_STEP_ID $FLOW_IDEMPOTENCY_TOKEN" >> tokens' }
"#;

#[test]
fn an_undo_and_a_finally_step_get_tokens_of_their_own_stable_across_resumes() {
    let (dir, id) = applied(UNDO_TOKENS, &[], 4);
    let dir = dir.path();
    let made = |n: u32| {
        let run = if n == 0 {
            id.clone()
        } else {
            format!("{id}~{n}")
        };
        (
            format!("made {}", idempotency_token(&run, "made", None)),
            format!("made.undo {}", undo_token(&run, "made", None)),
        )
    };
    let fin = format!("fin {}", idempotency_token(&id, "fin", None));
    let (made0, undo0) = made(0);
    assert_eq!(
        lines(dir, "tokens"),
        vec![made0.clone(), undo0.clone(), fin.clone()]
    );
    // The undo still fails: the resume runs it again with the same token, and nothing else
    // but `finally`.
    flow(dir, &["apply", "--resume", &id], &[]).code(4);
    assert_eq!(
        lines(dir, "tokens")[3..],
        [undo0.clone(), fin.clone()],
        "the resume ran something forward, or the undo with another token"
    );
    // The undo works now, `boom` still fails: the undo runs again with its token, then `made`
    // runs again with a new one (what the first made is gone), and its undo has a new one too.
    write(dir, "undo-works", "");
    flow(dir, &["apply", "--resume", &id], &[]).code(1);
    let (made1, undo1) = made(1);
    assert_eq!(
        lines(dir, "tokens")[5..],
        [undo0.clone(), made1.clone(), undo1.clone(), fin.clone()]
    );
    // `boom` fixed: `made` runs a third time, with a third token.
    write(dir, "fixed", "");
    flow(dir, &["apply", "--resume", &id], &[]).code(0);
    let (made2, _) = made(2);
    assert_eq!(lines(dir, "tokens")[9..], [made2, fin.clone()]);
    let all = lines(dir, "tokens");
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    // made ×3, its undo ×2 (the first one tried three times), fin once for every attempt.
    assert_eq!(distinct.len(), 6, "{all:#?}");
}

// ---------------------------------------------------------------- status

/// A write whose undo fails, then a step that fails: the rollback is incomplete.
const UNDO_FAILS: &str = r#"flow: 1
name: half-rolled-back
steps:
  rotate_secret:
    type: exec
    with: { shell: 'echo new > secret' }
    undo:
      type: exec
      with: { shell: 'echo "ResourceExistsException: token already in use" >&2; exit 2' }
  set_env:
    type: exec
    with: { shell: 'echo new > env' }
    undo: { type: exec, with: { shell: 'echo old > env' } }
  restart:
    type: exec
    with: { shell: 'echo "appctl restart exited with 1" >&2; exit 1' }
"#;

#[test]
fn a_failed_undo_makes_the_run_rollback_incomplete_with_exit_4_in_every_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    write(dir, "playbook.yaml", UNDO_FAILS);
    let summary_file = dir.join("step-summary.md");
    let summary_env = summary_file.display().to_string();
    let out = flow(
        dir,
        &["apply", "playbook.yaml"],
        &[("GITHUB_STEP_SUMMARY", &summary_env)],
    );
    out.code(4);
    let id = run_id(dir);
    // The other undo still ran.
    assert_eq!(read(&dir.join("env")), "old\n");
    assert_eq!(read(&dir.join("secret")), "new\n");
    // The summary names the failed undo, its error and what it left, and the last line says it.
    out.stdout_has("Rollback incomplete\n")
        .stdout_has("✘ `rotate_secret` (exec) is still applied: its undo (exec) failed: `echo")
        .stdout_has("ResourceExistsException: token already in use")
        .stdout_has(&format!(
            "`flow apply --resume {id}` runs the failed undo again"
        ));
    let last = out.stdout.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Run failed — rollback incomplete after ")
            && last.contains("`rotate_secret` is still applied (its undo failed)")
            && last.contains("the run stopped on: step `restart` failed"),
        "last line: {last}\n{}",
        out.context()
    );
    // `flow runs` and `flow show`.
    let line = runs_line(dir, &id);
    assert!(line.contains("failed — rollback incomplete"), "{line}");
    assert!(line.trim_end().ends_with("yes"), "not resumable: {line}");
    let show = flow(dir, &["show", &id], &[]);
    show.code(0)
        .stdout_has("failed — rollback incomplete (exit 4)")
        .stdout_has("Rollback incomplete\n")
        .stdout_has("✘ `rotate_secret` (exec) is still applied: its undo (exec) failed:");
    // run.json and the JSON of `flow show`.
    let record = run_json(&only_run(&dir.join(".flow")));
    assert_eq!(record["status"], "rollback_incomplete");
    assert_eq!(record["exit_code"], 4);
    // The GitHub step summary.
    let markdown = read(&summary_file);
    assert!(
        markdown.contains("— failed — rollback incomplete")
            && markdown.contains("**Rollback incomplete**")
            && markdown.contains("\\`rotate\\_secret\\` (exec) is still applied")
                | markdown.contains("\\`rotate_secret\\` (exec) is still applied"),
        "{markdown}"
    );
}

#[test]
fn the_json_events_carry_the_rollback_incomplete_status_and_each_failed_undo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    write(dir, "playbook.yaml", UNDO_FAILS);
    let out = flow(dir, &["apply", "playbook.yaml", "--output", "json"], &[]);
    out.code(4);
    let events = out.events();
    let end = events.last().expect("events");
    assert_eq!(end["event"], "run_finished");
    assert_eq!(end["status"], "rollback_incomplete");
    assert_eq!(end["exit_code"], 4);
    let failed = end["failed_undos"].as_array().expect("failed_undos");
    assert_eq!(failed.len(), 1, "{end:#}");
    assert_eq!(failed[0]["step"], "rotate_secret");
    assert_eq!(failed[0]["type"], "exec");
    assert_eq!(failed[0]["undo_type"], "exec");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ResourceExistsException")),
        "{end:#}"
    );
    let undo = finished(&events, "rotate_secret.undo");
    assert_eq!(undo["status"], "failed");
}

#[test]
fn a_declined_run_whose_undo_fails_is_rollback_incomplete_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let playbook = UNDO_FAILS.replace(
        "  restart:\n    type: exec\n",
        "  restart:\n    type: exec\n    confirm: Restart the app?\n",
    );
    write(dir, "playbook.yaml", &playbook);
    // No terminal and no --yes: the approval is needed, the run stops and rolls back.
    let out = flow(dir, &["apply", "playbook.yaml"], &[]);
    out.code(4)
        .stdout_has("`rotate_secret` (exec) is still applied")
        .stdout_has("the run stopped on: step `restart` needs approval");
    assert_eq!(read(&dir.join("env")), "old\n");
}

#[test]
fn a_run_whose_undos_all_succeed_is_failed_not_rollback_incomplete() {
    let playbook = UNDO_FAILS.replace(
        "with: { shell: 'echo \"ResourceExistsException: token already in use\" >&2; exit 2' }",
        "with: { shell: 'echo old > secret' }",
    );
    let (dir, id) = applied(&playbook, &[], 1);
    let dir = dir.path();
    assert_eq!(read(&dir.join("secret")), "old\n");
    let line = runs_line(dir, &id);
    assert!(
        line.contains("failed") && !line.contains("rollback"),
        "{line}"
    );
}

#[test]
fn an_interrupted_run_whose_undo_fails_is_rollback_incomplete_with_exit_4() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    write(
        dir,
        "playbook.yaml",
        r#"flow: 1
steps:
  rotate_secret:
    type: exec
    with: { shell: 'echo new > secret' }
    undo: { type: exec, with: { shell: 'echo "cannot reach the API" >&2; exit 2' } }
  long:
    type: exec
    with: { shell: 'sleep 30 & echo $! > sleep.pid; wait' }
"#,
    );
    let out = std::fs::File::create(dir.join("flow.out")).expect("flow.out");
    let mut child = std::process::Command::new(flow_bin())
        .args(["apply", "playbook.yaml"])
        .current_dir(dir)
        .env_remove("FLOW_STATE_DIR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn flow");
    assert!(wait_for_file(
        &dir.join("sleep.pid"),
        std::time::Duration::from_secs(20)
    ));
    signal(child.id(), "INT");
    let code = wait_bounded(&mut child, std::time::Duration::from_secs(25));
    let stdout = read(&dir.join("flow.out"));
    assert_eq!(code, 4, "{stdout}");
    assert!(
        stdout.contains("`rotate_secret` (exec) is still applied: its undo (exec) failed")
            && stdout.contains("the run stopped on: interrupted"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------- resume

#[test]
fn a_resume_runs_the_failed_undo_first_and_goes_no_further_while_it_fails() {
    let playbook = UNDO_FAILS.replace(
        "with: { shell: 'echo \"ResourceExistsException: token already in use\" >&2; exit 2' }",
        "with: { shell: 'echo undo >> undo.log; test -f undo-works && echo old > secret' }",
    );
    let (dir, id) = applied(&playbook, &[], 4);
    let dir = dir.path();
    // Fails again: exit 4, the message names it, nothing forward ran (env stays old).
    let again = flow(dir, &["apply", "--resume", &id], &[]);
    again
        .code(4)
        .stdout_has(&format!(
            "Resume 1 of run {id}: undos that had failed run again first: rotate_secret;"
        ))
        .stdout_has("`rotate_secret` (exec) is still applied: its undo (exec) failed")
        .stdout_has("the undo that failed before failed again, so nothing else ran");
    assert_eq!(lines(dir, "undo.log").len(), 2);
    assert_eq!(read(&dir.join("env")), "old\n", "a step ran forward");
    assert!(
        runs_line(dir, &id).contains("failed — rollback incomplete (resumed 1×)"),
        "{}",
        runs_line(dir, &id)
    );
    // The undo works now: the secret is put back, then the steps run again; `restart` still
    // fails, so they are undone again — all of them, this time: a plain failure.
    write(dir, "undo-works", "");
    let resumed = flow(dir, &["apply", "--resume", &id], &[]);
    resumed.code(1).stdout_lacks("Rollback incomplete");
    assert_eq!(read(&dir.join("secret")), "old\n");
    assert_eq!(read(&dir.join("env")), "old\n");
    assert_eq!(lines(dir, "undo.log").len(), 4, "undone first, then again");
    let line = runs_line(dir, &id);
    assert!(
        line.contains("failed (resumed 2×)") && !line.contains("rollback"),
        "{line}"
    );
    // Never `succeeded` until it did.
    let finished_json = flow(dir, &["--output", "json", "runs"], &[]);
    let runs: Value = serde_json::from_str(&finished_json.stdout).expect("runs JSON");
    assert_eq!(runs[0]["status"], "failed");
}

#[test]
fn a_failed_element_undo_runs_again_for_that_element_only() {
    // Element `b`'s undo fails until `undo-works` exists; `a` and `c` are undone at once.
    let playbook = r#"flow: 1
steps:
  each:
    type: exec
    for_each: [a, b, c]
    with: { shell: 'echo {{ item }} >> made' }
    undo:
      type: exec
      with: { shell: '{ test {{ item }} != b || test -f undo-works; } && echo {{ item }} >> undone' }
  boom:
    type: exec
    with: { shell: 'test -f fixed' }
"#;
    let (dir, id) = applied(playbook, &[], 4);
    let dir = dir.path();
    assert_eq!(lines(dir, "undone"), vec!["c", "a"]);
    let show = flow(dir, &["show", &id], &[]);
    show.stdout_has("✘ `each[1]` (exec) is still applied: its undo (exec) failed");
    write(dir, "undo-works", "");
    write(dir, "fixed", "");
    flow(dir, &["apply", "--resume", &id], &[])
        .code(0)
        .stdout_has("undos that had failed run again first: each[1];");
    // `b` undone, then every element made again (each was undone).
    assert_eq!(lines(dir, "undone"), vec!["c", "a", "b"]);
    assert_eq!(lines(dir, "made"), vec!["a", "b", "c", "a", "b", "c"]);
}

/// UNDO_FAILS with a restart that works once `fixed` exists.
fn restart_fixed_later() -> String {
    UNDO_FAILS.replace(
        "'echo \"appctl restart exited with 1\" >&2; exit 1'",
        "'test -f fixed'",
    )
}

#[test]
fn a_resume_never_reports_success_while_an_undo_is_outstanding() {
    // Before: the step whose undo failed was kept as done, the restart fixed, and the run
    // reported `succeeded (resumed 1×)` with the secret half rotated.
    let (dir, id) = applied(&restart_fixed_later(), &[], 4);
    let dir = dir.path();
    write(dir, "fixed", "");
    flow(dir, &["apply", "--resume", &id], &[]).code(4);
    let record = run_json(&only_run(&dir.join(".flow")));
    assert_eq!(record["status"], "rollback_incomplete", "{record:#}");
    assert!(!runs_line(dir, &id).contains("succeeded"));
}

#[test]
fn removing_the_undo_from_the_playbook_keeps_the_step_as_applied() {
    let playbook = restart_fixed_later();
    let (dir, id) = applied(&playbook, &[], 4);
    let dir = dir.path();
    // The operator decides the new secret stays: the undo is taken out, the rest resumes.
    let without = playbook.replace(
        "    undo:\n      type: exec\n      with: { shell: 'echo \"ResourceExistsException: token already in use\" >&2; exit 2' }\n",
        "",
    );
    assert_ne!(without, playbook);
    write(dir, "playbook.yaml", &without);
    write(dir, "fixed", "");
    flow(dir, &["apply", "--resume", &id], &[])
        .code(0)
        .stdout_has("✔ rotate_secret kept (succeeded before)");
    assert_eq!(read(&dir.join("env")), "new\n");
}

// ---------------------------------------------------------------- plan

const PLANNED: &str = r#"flow: 1
name: planned-rollback
steps:
  current:
    type: exec
    effect: read
    with: { command: [echo, old-value] }
  launch:
    type: exec
    with: { command: [echo, i-0abc] }
    undo:
      type: exec
      with: { command: [echo, "terminate {{ steps.launch.stdout }} (was {{ steps.current.stdout }})"] }
  switch:
    type: file.write
    with: { path: app.env, content: "HOST=new" }
    undo:
      type: file.write
      with: { path: app.env, content: "HOST=old" }
  each:
    type: exec
    for_each: [a, b]
    with: { command: [echo, "{{ item }}"] }
    undo: { type: exec, with: { command: [echo, "undo {{ item }}"] } }
  done: { type: log, with: { message: done } }
"#;

#[test]
fn the_plan_shows_what_each_write_would_undo_and_in_what_order() {
    let out = Flow::new()
        .playbook(PLANNED)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has("        undo if a later step fails: ~ run: echo 'terminate (known after apply: steps.launch.stdout) (was old-value)'  (exec)")
        .stdout_has("        undo if a later step fails: + create app.env (8 bytes)  (file.write)")
        .stdout_has("        undo if a later step fails: ~ 2 elements  (exec)\n            [a] run: echo 'undo a'\n            [b] run: echo 'undo b'")
        .stdout_has("\nRollback: if a step fails, the undo of each completed step runs, last completed first: each, then switch, then launch.\n");
    // The plan's last line is still the counts.
    let last = out.stdout.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Plan: "), "{last}");
    // Nothing of the undo ran.
    assert!(!out.exists("app.env"));
    let json = Flow::new()
        .playbook(PLANNED)
        .args(&["plan", "playbook.yaml", "--output", "json"])
        .run();
    json.code(0);
    let events = json.events();
    let launch = plan_step(&events, "launch");
    assert_eq!(launch["undo"]["type"], "exec");
    assert_eq!(launch["undo"]["action"], "change");
    assert!(
        launch["undo"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("(known after apply: steps.launch.stdout)")),
        "{launch:#}"
    );
    assert!(plan_step(&events, "current").get("undo").is_none());
    let rollback = events
        .iter()
        .find(|e| e["event"] == "plan_rollback")
        .expect("a plan_rollback event");
    assert_eq!(
        rollback["steps"],
        serde_json::json!(["each", "switch", "launch"])
    );
}

#[test]
fn a_saved_plan_keeps_each_undo_and_the_rollback_order() {
    let out = Flow::new()
        .playbook(PLANNED)
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    out.code(0);
    let saved: Value = serde_json::from_str(&out.file("plan.json")).expect("plan JSON");
    let line = saved["lines"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["step"] == "switch"))
        .expect("switch's line");
    assert_eq!(line["undo"]["type"], "file.write");
    assert!(
        line["undo"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("app.env")),
        "{line:#}"
    );
    assert_eq!(
        saved["rollback"],
        serde_json::json!(["each", "switch", "launch"])
    );
}

#[test]
fn a_skipped_step_has_no_undo_in_the_plan_and_is_not_in_the_rollback() {
    let playbook = PLANNED.replace(
        "  switch:\n    type: file.write\n",
        "  switch:\n    type: file.write\n    when: false\n",
    );
    let out = Flow::new()
        .playbook(&playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_lacks("app.env (8 bytes)  (file.write)")
        .stdout_has("last completed first: each, then launch.");
}

// ---------------------------------------------------------------- AWS undos on moto

fn apply_on(moto: &Moto, playbook: &str, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    moto.apply(Flow::new().playbook(playbook), code)
}

fn secret_value(moto: &Moto, name: &str) -> String {
    moto.boto(&format!(
        "sm = boto3.client('secretsmanager', **kw)\n\
         print(sm.get_secret_value(SecretId='{name}')['SecretString'])"
    ))
}

#[test]
fn a_secrets_put_undone_by_putting_the_old_value_back_is_not_refused() {
    // The story's failure: the undo reused the forward token with another value, and
    // Secrets Manager (moto too) answered ResourceExistsException.
    let moto = Moto::start();
    moto.boto(
        "sm = boto3.client('secretsmanager', **kw)\n\
         sm.create_secret(Name='app/redis', SecretString='old-Pa55word')",
    );
    let playbook = r#"flow: 1
steps:
  old:
    type: secrets.get
    with: { name: app/redis }
  rotate_secret:
    type: secrets.put
    with: { name: app/redis, value: new-Pa55word }
    undo:
      type: secrets.put
      with: { name: app/redis, value: "{{ steps.old.value }}" }
  restart:
    type: exec
    with: { shell: "exit 1" }
"#;
    let (out, events) = apply_on(&moto, playbook, 1);
    assert_eq!(
        finished(&events, "rotate_secret.undo")["status"],
        "succeeded"
    );
    assert_eq!(secret_value(&moto, "app/redis"), "old-Pa55word");
    assert!(!out.both().contains("Pa55word"), "{}", out.both());
}

#[test]
fn an_ssm_put_is_undone_by_putting_the_old_value_back() {
    let moto = Moto::start();
    moto.boto("ssm.put_parameter(Name='/app/redis/host', Value='old.internal', Type='String')");
    let playbook = r#"flow: 1
steps:
  old:
    type: ssm.get
    with: { name: /app/redis/host }
  point:
    type: ssm.put
    with: { name: /app/redis/host, value: new.internal, overwrite: true }
    undo:
      type: ssm.put
      with: { name: /app/redis/host, value: "{{ steps.old.value }}", overwrite: true }
  restart:
    type: exec
    with: { shell: "exit 1" }
"#;
    let (_, events) = apply_on(&moto, playbook, 1);
    assert_eq!(finished(&events, "point.undo")["status"], "succeeded");
    let now = moto.boto(
        "p = ssm.get_parameter(Name='/app/redis/host')['Parameter']\nprint(p['Value'], p['Version'])",
    );
    assert_eq!(now, "old.internal 3");
}

#[test]
fn a_launched_instance_is_terminated_by_its_undo() {
    let moto = Moto::start();
    let template = moto.launch_template("rollback-lt");
    let playbook = format!(
        r#"flow: 1
steps:
  launch:
    type: ec2.run
    with: {{ launch_template: {{ id: {template} }}, tags: {{ Purpose: rollback-test }} }}
    undo:
      type: ec2.terminate
      with: {{ instance_ids: ["{{{{ steps.launch.instance_id }}}}"] }}
  restore:
    type: exec
    with: {{ shell: "exit 1" }}
"#
    );
    let (_, events) = apply_on(&moto, &playbook, 1);
    assert_eq!(finished(&events, "launch.undo")["status"], "succeeded");
    let instances = moto.instances();
    let states: Vec<&str> = instances
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["tags"]["Purpose"] == "rollback-test")
        .map(|i| i["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, vec!["terminated"]);
}

#[test]
fn an_uploaded_object_is_deleted_by_its_undo() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let flow = Flow::new().playbook(
        r#"flow: 1
steps:
  upload:
    type: s3.put
    with: { bucket: backups, key: redis/dump.rdb, path: dump.rdb }
    undo:
      type: s3.delete
      with: { bucket: backups, keys: [redis/dump.rdb] }
  restore:
    type: exec
    with: { shell: "exit 1" }
"#,
    );
    std::fs::write(flow.path("dump.rdb"), "REDIS0011").expect("dump");
    let (_, events) = moto.apply(flow, 1);
    assert_eq!(finished(&events, "upload.undo")["status"], "succeeded");
    assert!(
        moto.keys("backups").is_empty(),
        "{:?}",
        moto.keys("backups")
    );
}

#[test]
fn a_stack_update_is_undone_by_deploying_the_previous_template() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let template = |value: &str| {
        format!(
            "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Param:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /app/mode\n      Type: String\n      Value: {value}\n"
        )
    };
    write(dir.path(), "old.yaml", &template("kv"));
    write(dir.path(), "new.yaml", &template("sql"));
    let deploy = |file: &str| {
        format!(
            "type: cfn.deploy\n    with: {{ stack_name: app, template: \"{}\" }}",
            dir.path().join(file).display()
        )
    };
    let first = format!("flow: 1\nsteps:\n  deploy:\n    {}\n", deploy("old.yaml"));
    apply_on(&moto, &first, 0);
    let playbook = format!(
        "flow: 1\nsteps:\n  deploy:\n    {}\n    undo:\n      {}\n  check:\n    type: exec\n    with: {{ shell: \"exit 1\" }}\n",
        deploy("new.yaml"),
        deploy("old.yaml").replace("\n    with", "\n      with")
    );
    let (_, events) = apply_on(&moto, &playbook, 1);
    assert_eq!(finished(&events, "deploy.undo")["status"], "succeeded");
    let value = moto.boto("print(ssm.get_parameter(Name='/app/mode')['Parameter']['Value'])");
    assert_eq!(value, "kv");
}

#[test]
fn a_resume_refuses_an_undo_that_would_put_back_a_secret_read_again() {
    // The old value came from a read whose outputs the journal keeps only as `***`: a
    // resume would read it again — and get the new value the rotation wrote.
    let moto = Moto::start();
    moto.boto(
        "sm = boto3.client('secretsmanager', **kw)\n\
         sm.create_secret(Name='app/redis', SecretString='old-Pa55word')",
    );
    let playbook = |undo_value: &str, endpoint: &str| {
        format!(
            r#"flow: 1
params:
  old_password: {{ type: string, secret: true, required: false }}
steps:
  old:
    type: secrets.get
    with: {{ name: app/redis }}
  rotate_secret:
    type: secrets.put
    with: {{ name: app/redis, value: new-Pa55word }}
    undo:
      type: secrets.put
      with: {{ name: app/redis, value: "{undo_value}"{endpoint} }}
  restart:
    type: exec
    with: {{ shell: "exit 1" }}
"#
        )
    };
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (dir, id) = applied(
        &playbook(
            "{{ steps.old.value }}",
            ", endpoint_url: \"http://127.0.0.1:9\"",
        ),
        &env,
        4,
    );
    let dir = dir.path();
    flow(dir, &["apply", "--resume", &id], &env)
        .code(2)
        .stderr_has(
            "the `undo` of step `rotate_secret` reads `steps.old.value`, which held a secret",
        )
        .stderr_has("let it take the value from a param instead");
    assert_eq!(secret_value(&moto, "app/redis"), "new-Pa55word");
    // As the help says: the undo takes the old value from a param, given again now.
    write(
        dir,
        "playbook.yaml",
        &playbook("{{ params.old_password }}", ""),
    );
    flow(
        dir,
        &["apply", "--resume", &id, "-p", "old_password=old-Pa55word"],
        &env,
    )
    .code(1)
    .stdout_has("undos that had failed run again first: rotate_secret;");
    assert_eq!(secret_value(&moto, "app/redis"), "old-Pa55word");
}

// ---------------------------------------------------------------- the story

/// The rotation of the issue: Secrets Manager (moto), the app's env file over SSH (sshd), and
/// Redis's `requirepass`, each with an undo; then the restart, which fails. Both passwords are
/// secret params: what an undo puts back must be the value the run started from (a resume is
/// given it again), never a read of the secret run again after the rotation changed it.
fn rotation(
    sshd: &Sshd,
    redis: &RedisServer,
    env_file: &Path,
    secret_undo_endpoint: &str,
) -> String {
    format!(
        r#"flow: 1
name: rotate-redis-password
params:
  old_password: {{ type: string, secret: true }}
  new_password: {{ type: string, secret: true }}
defaults:
  ssh: {ssh}
  redis: {{ url: "redis://127.0.0.1:{port}" }}
steps:
  rotate_secret:
    type: secrets.put
    with: {{ name: app/redis, value: "{{{{ params.new_password }}}}" }}
    undo:
      type: secrets.put
      with: {{ name: app/redis, value: "{{{{ params.old_password }}}}"{secret_undo_endpoint} }}
  set_env:
    type: envfile.set
    with:
      ssh: {{ host: flowtest }}
      path: "{env}"
      set: {{ REDIS_PASSWORD: "{{{{ params.new_password }}}}" }}
      backup: true
    undo:
      type: envfile.set
      with:
        ssh: {{ host: flowtest }}
        path: "{env}"
        set: {{ REDIS_PASSWORD: "{{{{ params.old_password }}}}" }}
  set_redis:
    type: redis.command
    with:
      password: "{{{{ params.old_password }}}}"
      command: [CONFIG, SET, requirepass, "{{{{ params.new_password }}}}"]
    undo:
      type: redis.command
      with:
        password: "{{{{ params.new_password }}}}"
        command: [CONFIG, SET, requirepass, "{{{{ params.old_password }}}}"]
  restart:
    type: exec
    with: {{ shell: 'test -f app-fixed || {{ echo "appctl: restart exited with 1" >&2; exit 1; }}' }}
"#,
        ssh = sshd.block("flowtest"),
        port = redis.port(),
        env = env_file.display(),
    )
}

const OLD: &str = "old-Redis-Pa55";
const NEW: &str = "new-Redis-Pa55";

struct Story {
    moto: Moto,
    sshd: Sshd,
    redis: RedisServer,
    remote: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl Story {
    fn start() -> Self {
        let moto = Moto::start();
        moto.boto(&format!(
            "sm = boto3.client('secretsmanager', **kw)\n\
             sm.create_secret(Name='app/redis', SecretString='{OLD}')"
        ));
        let remote = tempfile::tempdir().expect("remote dir");
        write(
            remote.path(),
            "app.env",
            &format!("# the app's Redis\nREDIS_HOST=10.0.0.5\nREDIS_PASSWORD={OLD}\n"),
        );
        Story {
            moto,
            sshd: Sshd::start(),
            redis: RedisServer::start_with(&["--requirepass", OLD]),
            remote,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn env_file(&self) -> std::path::PathBuf {
        self.remote.path().join("app.env")
    }

    fn write_playbook(&self, secret_undo_endpoint: &str) {
        let text = rotation(
            &self.sshd,
            &self.redis,
            &self.env_file(),
            secret_undo_endpoint,
        );
        write(self.dir.path(), "playbook.yaml", &text);
    }

    /// `flow ARGS` in the story's folder, reaching moto; `apply` gets the passwords (secret
    /// params: a resume needs them again).
    fn flow(&self, args: &[&str], extra: &[(&str, &str)]) -> Ran {
        let mut env: Vec<(String, String)> = self.moto.env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let old_password = format!("old_password={OLD}");
        let new_password = format!("new_password={NEW}");
        let mut args: Vec<&str> = args.to_vec();
        if args.first() == Some(&"apply") {
            args.extend(["-p", old_password.as_str(), "-p", new_password.as_str()]);
        }
        flow(self.dir.path(), &args, &env)
    }

    /// What each server holds now: the secret, the env file's password, the password Redis
    /// takes.
    fn state(&self) -> (String, String, String) {
        let secret = secret_value(&self.moto, "app/redis");
        let env = read(&self.env_file());
        let env = env
            .lines()
            .find_map(|l| l.strip_prefix("REDIS_PASSWORD="))
            .unwrap_or_default()
            .to_string();
        let redis = [OLD, NEW]
            .into_iter()
            .find(|pw| {
                crate::common::redis::raw_command(self.redis.port(), Some(pw), &["PING"])
                    .is_ok_and(|r| r.to_text() == "PONG")
            })
            .unwrap_or("neither")
            .to_string();
        (secret, env, redis)
    }

    fn assert_nowhere(&self, ran: &Ran) {
        for pw in [OLD, NEW] {
            assert!(
                !ran.stdout.contains(pw) && !ran.stderr.contains(pw),
                "{pw} shown:\n{}",
                ran.context()
            );
            assert!(
                !read_tree(&self.dir.path().join(".flow")).contains(pw),
                "{pw} in the journal"
            );
        }
    }
}

fn old_everywhere() -> (String, String, String) {
    (OLD.into(), OLD.into(), OLD.into())
}

#[test]
fn a_failed_rotation_with_working_undos_puts_the_old_password_back_everywhere() {
    let story = Story::start();
    story.write_playbook("");
    let out = story.flow(&["apply", "playbook.yaml"], &[]);
    out.code(1).stdout_lacks("Rollback incomplete");
    story.assert_nowhere(&out);
    assert_eq!(story.state(), old_everywhere());
    let last = out.stdout.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Run failed after "), "{last}");
    // The env file kept its comment and other lines; the forward edit left a backup.
    assert!(read(&story.env_file()).starts_with("# the app's Redis\nREDIS_HOST=10.0.0.5\n"));
}

#[test]
fn a_failed_rotation_whose_secret_undo_fails_says_rollback_incomplete_everywhere_and_resumes() {
    let story = Story::start();
    // The undo of the secret cannot reach Secrets Manager (port 9: nothing listens).
    story.write_playbook(", endpoint_url: \"http://127.0.0.1:9\"");
    let summary_file = story.dir.path().join("step-summary.md");
    let summary_env = summary_file.display().to_string();
    let out = story.flow(
        &["apply", "playbook.yaml"],
        &[("GITHUB_STEP_SUMMARY", &summary_env)],
    );
    out.code(4);
    story.assert_nowhere(&out);
    let id = run_id(story.dir.path());
    // The half-rotated credential: the secret is new, the env file and Redis are old again.
    assert_eq!(story.state(), (NEW.into(), OLD.into(), OLD.into()));
    // The summary, its last line.
    out.stdout_has(
        "✘ `rotate_secret` (secrets.put) is still applied: its undo (secrets.put) failed: ",
    );
    let last = out.stdout.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Run failed — rollback incomplete after ")
            && last.contains("`rotate_secret` is still applied (its undo failed)")
            && last.contains("appctl: restart exited with 1"),
        "{last}"
    );
    // `flow runs`, `flow show`.
    assert!(runs_line(story.dir.path(), &id).contains("failed — rollback incomplete"));
    let show = story.flow(&["show", &id], &[]);
    show.code(0)
        .stdout_has("failed — rollback incomplete (exit 4)")
        .stdout_has(
            "✘ `rotate_secret` (secrets.put) is still applied: its undo (secrets.put) failed: ",
        );
    // `--output json` (of `flow show`: the run's own events).
    let json = story.flow(&["--output", "json", "show", &id], &[]);
    let shown: Value = serde_json::from_str(&json.stdout).expect("show JSON");
    assert_eq!(shown["run"]["status"], "rollback_incomplete");
    let end = shown["events"]
        .as_array()
        .and_then(|e| e.iter().rev().find(|e| e["event"] == "run_finished"))
        .expect("run_finished");
    assert_eq!(end["exit_code"], 4);
    assert_eq!(end["failed_undos"][0]["step"], "rotate_secret");
    assert_eq!(end["failed_undos"][0]["undo_type"], "secrets.put");
    // GITHUB_STEP_SUMMARY.
    let markdown = read(&summary_file);
    assert!(
        markdown.contains("**Rollback incomplete**")
            && markdown.contains("(secrets.put) is still applied"),
        "{markdown}"
    );
    // `flow serve`'s API and page.
    let server = Server::start(&story.dir.path().join(".flow"), "127.0.0.1", &[], &[]);
    let api = server.get(&format!("/api/runs/{id}"));
    api.status(200);
    let detail = api.json();
    assert_eq!(detail["status"], "rollback_incomplete");
    assert_eq!(detail["failed_undos"][0]["step"], "rotate_secret");
    let runs = server.get("/api/runs");
    assert_eq!(
        runs.json()[0]["status_text"],
        "failed — rollback incomplete"
    );
    server
        .get(&format!("/runs/{id}"))
        .has("badge st-rollback_incomplete")
        .has("⚠ Rollback incomplete")
        .has("is still applied: its undo (secrets.put) failed");
    server.stop();

    // A resume runs that undo first: still unreachable, so it fails again and nothing else
    // runs — the env file and Redis stay old.
    let again = story.flow(&["apply", "--resume", &id], &[]);
    again
        .code(4)
        .stdout_has("undos that had failed run again first: rotate_secret;");
    assert_eq!(story.state(), (NEW.into(), OLD.into(), OLD.into()));
    // Fixed in the playbook: the undo puts the old secret back, then the rotation runs again
    // and fails at the restart again — fully rolled back this time.
    story.write_playbook("");
    let fixed = story.flow(&["apply", "--resume", &id], &[]);
    fixed.code(1).stdout_lacks("Rollback incomplete");
    story.assert_nowhere(&fixed);
    assert_eq!(story.state(), old_everywhere(), "{}", fixed.context());
    assert!(!runs_line(story.dir.path(), &id).contains("rollback incomplete"));
    // The app fixed: the rotation goes through.
    write(story.dir.path(), "app-fixed", "");
    story.flow(&["apply", "--resume", &id], &[]).code(0);
    assert_eq!(story.state(), (NEW.into(), NEW.into(), NEW.into()));
    assert!(runs_line(story.dir.path(), &id).contains("succeeded (resumed 3×)"));
}
