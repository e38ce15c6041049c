//! The core step types as a user sees them through `flow apply`: exec, confirm, choose,
//! assert, log, sleep, file.write, envfile.set.

use crate::common::Flow;
use serde_json::Value;

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))
}

/// Applies `playbook` with `--yes --output json`, expects `code`, returns the events.
fn apply_json(flow: Flow, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    let out = flow
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(code);
    let events = out.events();
    (out, events)
}

fn outputs<'a>(events: &'a [Value], step: &str) -> &'a Value {
    &finished(events, step)["outputs"]
}

// ---------------------------------------------------------------- exec

#[test]
fn exec_argv_passes_each_argument_literally_without_a_shell() {
    let (out, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  argv:
    type: exec
    with: { command: [printf, "%s|", "a; touch injected", "two  words", "$HOME"] }
"#,
        ),
        0,
    );
    assert_eq!(
        outputs(&events, "argv")["stdout"],
        "a; touch injected|two  words|$HOME|"
    );
    assert!(
        !out.exists("injected"),
        "an argv argument went through a shell"
    );
}

#[test]
fn exec_shell_runs_a_script_with_pipes() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  sh: { type: exec, with: { shell: "echo abc | tr a-z A-Z" } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "sh")["stdout"], "ABC");
    assert_eq!(outputs(&events, "sh")["exit_code"], 0);
}

#[test]
fn exec_cwd_env_and_stdin() {
    let (_, events) = apply_json(
        Flow::new().file("sub/here.txt", "inside\n").playbook(
            r#"flow: 1
steps:
  in_dir: { type: exec, with: { command: [cat, here.txt], cwd: sub } }
  with_env: { type: exec, with: { shell: "echo \"$GREETING\"", env: { GREETING: "hi there" } } }
  with_stdin: { type: exec, with: { command: [tr, a-z, A-Z], stdin: "piped in\n" } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "in_dir")["stdout"], "inside");
    assert_eq!(outputs(&events, "with_env")["stdout"], "hi there");
    assert_eq!(outputs(&events, "with_stdin")["stdout"], "PIPED IN");
}

#[test]
fn exec_keeps_stdout_and_stderr_apart() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  both: { type: exec, with: { shell: "echo to-out; echo to-err >&2" } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "both")["stdout"], "to-out");
    assert_eq!(outputs(&events, "both")["stderr"], "to-err");
}

#[test]
fn exec_ok_codes_accept_a_non_zero_exit() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  grep_none: { type: exec, with: { shell: "exit 3", ok_codes: [0, 3] } }
"#,
        ),
        0,
    );
    assert_eq!(finished(&events, "grep_none")["status"], "succeeded");
    assert_eq!(outputs(&events, "grep_none")["exit_code"], 3);
}

#[test]
fn exec_parse_json_gives_typed_values_to_later_steps() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  data:
    type: exec
    with: { shell: "echo '{\"n\": [10, 20], \"name\": \"db\"}'", parse: json }
  use:
    type: log
    with: { message: "second={{ steps.data.json.n[1] }} sum={{ steps.data.json.n | sum }} name={{ steps.data.json.name }}" }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("second=20 sum=30 name=db");
}

#[test]
fn exec_parse_json_on_bad_json_fails_clearly() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  data: { type: exec, with: { command: [echo, "not json"], parse: json } }
"#,
        ),
        1,
    );
    let error = finished(&events, "data")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.to_lowercase().contains("json"), "{error}");
}

#[test]
fn exec_parse_lines_drops_blank_lines() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  hosts: { type: exec, with: { shell: "printf 'web1\n\nweb2\n'", parse: lines } }
"#,
        ),
        0,
    );
    assert_eq!(
        outputs(&events, "hosts")["lines"],
        serde_json::json!(["web1", "web2"])
    );
}

#[test]
fn exec_missing_program_is_a_clear_error() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  missing: { type: exec, with: { command: [no-such-program-xyz, arg] } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1)
        .stdout_has("no-such-program-xyz")
        .stdout_has("not found");
}

#[test]
fn exec_non_zero_exit_shows_the_code_and_the_tail_of_stderr() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  broken:
    type: exec
    with: { shell: "echo early-noise >&2; echo permission denied on /data >&2; exit 7" }
"#,
        ),
        1,
    );
    let error = finished(&events, "broken")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains('7'), "{error}");
    assert!(error.contains("permission denied on /data"), "{error}");
}

#[test]
fn exec_stderr_tail_is_bounded_for_long_output() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  noisy:
    type: exec
    with: { shell: "for i in $(seq 1 200); do echo noise-line-$i >&2; done; echo the-real-cause >&2; exit 2" }
"#,
        ),
        1,
    );
    let error = finished(&events, "noisy")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("the-real-cause"), "{error}");
    assert!(
        !error.contains("noise-line-1\n"),
        "the whole stderr: {error}"
    );
}

#[test]
fn exec_output_lines_stream_as_step_output_events() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  talk: { type: exec, with: { shell: "echo one; echo two >&2" } }
"#,
        ),
        0,
    );
    let lines: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "step_output" && e["step"] == "talk")
        .map(|e| {
            (
                e["stream"].as_str().unwrap_or("").to_string(),
                e["line"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("stdout".into(), "one".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stderr".into(), "two".into())),
        "{lines:?}"
    );
}

// ---------------------------------------------------------------- confirm

#[test]
fn confirm_with_yes_is_approved_and_recorded() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  go: { type: confirm, with: { message: Proceed? } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "go")["approved"], true);
    let approval = events
        .iter()
        .find(|e| e["event"] == "approval")
        .expect("an approval event");
    assert_eq!(approval["step"], "go");
    assert_eq!(approval["approved"], true);
    assert_eq!(approval["how"], "--yes");
}

#[test]
fn confirm_without_terminal_or_flag_exits_3_before_later_steps() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  go: { type: confirm, with: { message: Proceed? } }
  after: { type: exec, with: { shell: "touch after.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(3);
    assert!(!out.exists("after.marker"));
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("--approve go"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

// ---------------------------------------------------------------- choose

#[test]
fn choose_without_terminal_takes_the_default() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  pick: { type: choose, with: { prompt: Which?, options: [red, green, blue], default: green } }
  show: { type: log, with: { message: "picked {{ steps.pick.value }} at {{ steps.pick.index }}" } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "pick")["value"], "green");
    assert_eq!(outputs(&events, "pick")["index"], 1);
}

#[test]
fn choose_labelled_options_give_the_value_of_the_default_label() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  pick:
    type: choose
    with:
      prompt: Which size?
      options: [{ label: Small, value: t3.small }, { label: Large, value: r6g.large }]
      default: Large
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "pick")["value"], "r6g.large");
}

#[test]
fn choose_default_from_a_param() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  snap: { type: string, required: false }
steps:
  pick: { type: choose, with: { prompt: Which?, options: [a, b, c], default: "{{ params.snap }}" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "-p", "snap=c", "--output", "json"])
        .run();
    out.code(0);
    assert_eq!(outputs(&out.events(), "pick")["value"], "c");
}

#[test]
fn choose_without_default_exits_3_and_names_the_param_to_pass() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  snap: { type: string, required: false }
steps:
  pick: { type: choose, with: { prompt: Which?, options: [a, b, c], default: "{{ params.snap }}" } }
  after: { type: exec, with: { shell: "touch after.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(3);
    assert!(!out.exists("after.marker"));
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("-p snap="),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn choose_without_any_default_exits_3() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  pick: { type: choose, with: { prompt: Which?, options: [a, b] } }
"#,
        )
        .args(&["apply", "playbook.yaml", "--yes"])
        .run()
        .code(3)
        .stdout_has("Which?");
}

#[test]
fn choose_default_that_is_not_an_option_fails() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  pick: { type: choose, with: { prompt: Which?, options: [a, b], default: z } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    assert_ne!(out.code, 0, "{}", out.stdout);
    out.stdout_has("z");
}

// ---------------------------------------------------------------- assert

#[test]
fn assert_error_fails_the_run_with_its_message() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  count: { type: exec, with: { command: [echo, "3"] } }
  enough:
    type: assert
    with: { that: "steps.count.stdout | int > 5", message: not enough replicas }
  after: { type: exec, with: { shell: "touch after.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1).stdout_has("not enough replicas");
    assert!(!out.exists("after.marker"));
}

#[test]
fn assert_true_passes() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  fine: { type: assert, with: { that: "1 + 1 == 2" } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "fine")["passed"], true);
}

#[test]
fn assert_warning_succeeds_with_a_warning_and_passed_false() {
    let playbook = r#"flow: 1
steps:
  soft:
    type: assert
    with: { that: "1 > 2", message: memory is high, severity: warning }
  after: { type: exec, with: { shell: "touch after.marker" } }
"#;
    let (out, events) = apply_json(Flow::new().playbook(playbook), 0);
    assert!(out.exists("after.marker"));
    assert_eq!(finished(&events, "soft")["status"], "succeeded");
    assert_eq!(outputs(&events, "soft")["passed"], false);
    let warning = events
        .iter()
        .find(|e| e["event"] == "warning")
        .expect("a warning event");
    assert!(
        warning["message"]
            .as_str()
            .unwrap_or("")
            .contains("memory is high"),
        "{warning}"
    );
    Flow::new()
        .playbook(playbook)
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stderr_has("warning")
        .stderr_has("memory is high");
}

#[test]
fn assert_list_of_conditions_names_the_false_ones() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  checks:
    type: assert
    with:
      that: ["1 == 1", "'a' == 'b'", "2 > 1"]
"#,
        ),
        1,
    );
    let error = finished(&events, "checks")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("'a' == 'b'"), "{error}");
    assert!(
        !error.contains("1 == 1") && !error.contains("2 > 1"),
        "{error}"
    );
}

// ---------------------------------------------------------------- log and sleep

#[test]
fn log_prints_its_message_and_a_table() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  say:
    type: log
    with:
      message: "hello ops"
      table: [{ host: web1, state: up }, { host: web2, state: down }]
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("hello ops")
        .stdout_has("web2")
        .stdout_has("down");
}

#[test]
fn sleep_waits_and_succeeds() {
    let started = std::time::Instant::now();
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  nap: { type: sleep, with: { duration: 300ms } }
"#,
        ),
        0,
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(finished(&events, "nap")["status"], "succeeded");
}

// ---------------------------------------------------------------- file.write

#[test]
fn file_write_creates_a_file_and_reports_changed() {
    let (out, events) = apply_json(
        Flow::new()
            .playbook(
                r#"flow: 1
steps:
  write: { type: file.write, with: { path: out/note.txt, content: "line one\n" } }
"#,
            )
            .file("out/.keep", ""),
        0,
    );
    assert_eq!(out.file("out/note.txt"), "line one\n");
    assert_eq!(outputs(&events, "write")["changed"], true);
}

#[test]
fn file_write_same_content_again_is_unchanged() {
    let (out, events) = apply_json(
        Flow::new().file("note.txt", "same\n").playbook(
            r#"flow: 1
steps:
  first: { type: file.write, with: { path: note.txt, content: "same\n" } }
  second: { type: file.write, with: { path: note.txt, content: "new\n" } }
  third: { type: file.write, with: { path: note.txt, content: "new\n" } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "first")["changed"], false);
    assert_eq!(outputs(&events, "second")["changed"], true);
    assert_eq!(outputs(&events, "third")["changed"], false);
    assert_eq!(out.file("note.txt"), "new\n");
}

#[test]
fn file_write_append_adds_to_the_end() {
    let (out, _) = apply_json(
        Flow::new().file("audit.log", "old\n").playbook(
            r#"flow: 1
steps:
  one: { type: file.write, with: { path: audit.log, content: "first\n", append: true } }
  two: { type: file.write, with: { path: audit.log, content: "second\n", append: true } }
"#,
        ),
        0,
    );
    assert_eq!(out.file("audit.log"), "old\nfirst\nsecond\n");
}

#[test]
fn file_write_mode_sets_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let (out, _) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  key: { type: file.write, with: { path: secret.key, content: "k\n", mode: "0600" } }
"#,
        ),
        0,
    );
    let mode = std::fs::metadata(out.path("secret.key"))
        .expect("the file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600);
}

#[test]
fn file_write_creates_missing_folders_and_fails_with_the_path_when_it_cannot() {
    let (out, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  write: { type: file.write, with: { path: no/such/dir/f.txt, content: x } }
"#,
        ),
        0,
    );
    assert_eq!(finished(&events, "write")["outputs"]["changed"], true);
    assert_eq!(crate::common::read(&out.path("no/such/dir/f.txt")), "x");

    // A folder on the way that is a file: the error names the path.
    let (_, events) = apply_json(
        Flow::new().file("blocker", "a file").playbook(
            r#"flow: 1
steps:
  write: { type: file.write, with: { path: blocker/dir/f.txt, content: x } }
"#,
        ),
        1,
    );
    let error = finished(&events, "write")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("blocker/dir/f.txt"), "{error}");
}

// ---------------------------------------------------------------- envfile.set

const ENV_BEFORE: &str = "# app settings\nexport A=1\nB=old\n\n# keep me\nC=\"quoted value\"\n";

#[test]
fn envfile_set_keeps_comments_order_and_other_lines_and_reports_previous() {
    let (out, events) = apply_json(
        Flow::new().file("app.env", ENV_BEFORE).playbook(
            r#"flow: 1
steps:
  point:
    type: envfile.set
    with: { path: app.env, set: { B: new, D: "two words" } }
"#,
        ),
        0,
    );
    assert_eq!(
        out.file("app.env"),
        "# app settings\nexport A=1\nB=new\n\n# keep me\nC=\"quoted value\"\nD=\"two words\"\n"
    );
    let outputs = outputs(&events, "point");
    assert_eq!(outputs["changed"], true);
    assert_eq!(outputs["previous"]["B"], "old");
    assert_eq!(outputs["previous"]["D"], Value::Null);
}

#[test]
fn envfile_set_same_values_again_is_unchanged() {
    let (out, events) = apply_json(
        Flow::new().file("app.env", ENV_BEFORE).playbook(
            r#"flow: 1
steps:
  first: { type: envfile.set, with: { path: app.env, set: { B: new } } }
  again: { type: envfile.set, with: { path: app.env, set: { B: new } } }
"#,
        ),
        0,
    );
    assert_eq!(outputs(&events, "first")["changed"], true);
    assert_eq!(outputs(&events, "again")["changed"], false);
    assert_eq!(outputs(&events, "again")["previous"]["B"], "new");
    assert_eq!(
        out.file("app.env"),
        ENV_BEFORE.replace("B=old", "B=new"),
        "the second run rewrote the file"
    );
}

#[test]
fn envfile_set_unset_removes_the_line() {
    let (out, events) = apply_json(
        Flow::new().file("app.env", ENV_BEFORE).playbook(
            r#"flow: 1
steps:
  drop: { type: envfile.set, with: { path: app.env, unset: [B] } }
"#,
        ),
        0,
    );
    assert_eq!(
        out.file("app.env"),
        "# app settings\nexport A=1\n\n# keep me\nC=\"quoted value\"\n"
    );
    assert_eq!(outputs(&events, "drop")["previous"]["B"], "old");
}

#[test]
fn envfile_set_backup_leaves_a_bak_copy_of_the_old_file() {
    let (out, _) = apply_json(
        Flow::new().file("app.env", ENV_BEFORE).playbook(
            r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: new }, backup: true } }
"#,
        ),
        0,
    );
    let backups: Vec<String> = std::fs::read_dir(out.dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.env") && n.ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1, "backups: {backups:?}");
    assert_eq!(out.file(&backups[0]), ENV_BEFORE);
    assert!(out.file("app.env").contains("B=new"));
}

#[test]
fn envfile_set_no_backup_when_nothing_changes() {
    let (out, _) = apply_json(
        Flow::new().file("app.env", "B=same\n").playbook(
            r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: same }, backup: true } }
"#,
        ),
        0,
    );
    let backups = std::fs::read_dir(out.dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".bak"))
        .count();
    assert_eq!(backups, 0);
}

#[test]
fn envfile_set_on_a_missing_file_fails_unless_create() {
    let (_, events) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: missing.env, set: { A: "1" } } }
"#,
        ),
        1,
    );
    assert!(
        finished(&events, "point")["error"]
            .as_str()
            .unwrap_or("")
            .contains("missing.env")
    );
    let (out, _) = apply_json(
        Flow::new().playbook(
            r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: missing.env, set: { A: "1" }, create: true } }
"#,
        ),
        0,
    );
    assert_eq!(out.file("missing.env"), "A=1\n");
}

#[test]
fn a_whole_expression_giving_a_number_is_accepted_where_text_is_expected() {
    // `"{{ expr }}"` yields the value with its type (DESIGN §3); a number handed to a text
    // field (file content, a log message, a shell script) is that number as text.
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  count: { type: exec, with: { command: [echo, '{"n": 42}'], parse: json } }
  write: { type: file.write, with: { path: count.txt, content: "{{ steps.count.json.n }}" } }
  say: { type: log, with: { message: "{{ steps.count.json.n + 1 }}" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("say: 43");
    assert_eq!(out.file("count.txt"), "42");
}
