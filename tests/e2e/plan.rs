//! `flow plan`: reads run, writes are only described, values that depend on writes are
//! "known after apply", every step gets a symbol, and the plan ends with counts.

use crate::common::Flow;
use serde_json::Value;

/// The human plan line of `step` (`  <symbol> <step>  (<type>)  <summary>`).
fn plan_line<'a>(out: &'a crate::common::Outcome, step: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some() && words.next() == Some(step)
        })
        .unwrap_or_else(|| panic!("no plan line for `{step}`:\n{}", out.stdout))
}

fn symbol<'a>(out: &'a crate::common::Outcome, step: &str) -> &'a str {
    plan_line(out, step).split_whitespace().next().unwrap_or("")
}

pub use crate::common::run::plan_step;

const MIXED: &str = r#"flow: 1
name: mixed
steps:
  probe:
    type: exec
    effect: read
    with: { shell: "touch read.marker; echo v1.2" }
  create:
    type: file.write
    with: { path: new.txt, content: "hello\n" }
  change:
    type: file.write
    with: { path: existing.txt, content: "replaced\n" }
  ask:
    type: confirm
    with: { message: Go ahead? }
  never:
    type: exec
    when: "false"
    with: { shell: "touch never.marker" }
"#;

#[test]
fn plan_shows_a_symbol_per_step_and_the_counts() {
    let out = Flow::new()
        .file("existing.txt", "original\n")
        .playbook(MIXED)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    assert_eq!(symbol(&out, "probe"), "=");
    assert_eq!(symbol(&out, "create"), "+");
    assert_eq!(symbol(&out, "change"), "~");
    assert_eq!(symbol(&out, "ask"), "?");
    assert_eq!(symbol(&out, "never"), "…");
    assert!(plan_line(&out, "never").contains("when: false"));
    out.stdout_has("Plan: 1 to read, 1 to create, 1 to change, 0 to delete, 1 to ask, 1 skipped.");
}

#[test]
fn plan_changes_nothing_but_runs_reads() {
    let out = Flow::new()
        .file("existing.txt", "original\n")
        .playbook(MIXED)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    assert!(
        out.exists("read.marker"),
        "the read step did not run in plan"
    );
    assert!(!out.exists("new.txt"), "a write ran during plan");
    assert_eq!(out.file("existing.txt"), "original\n");
    assert!(!out.exists("never.marker"));
}

#[test]
fn plan_does_not_need_approval_flags() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  ask: { type: confirm, with: { message: Go ahead? } }
  pick: { type: choose, with: { prompt: Which?, options: [a, b] } }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("Go ahead?")
        .stdout_has("Which?");
}

#[test]
fn plan_shows_the_choose_default() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  pick: { type: choose, with: { prompt: Which backup?, options: [old, new], default: new } }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    let line = plan_line(&out, "pick");
    assert!(
        line.contains("Which backup?") && line.contains("new"),
        "{line}"
    );
}

#[test]
fn a_read_steps_output_feeds_later_plan_lines() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  version:
    type: exec
    effect: read
    with: { command: [echo, "v1.2.3"] }
  write:
    type: file.write
    with: { path: "release-{{ steps.version.stdout }}.txt", content: x }
  say:
    type: log
    with: { message: "deploying {{ steps.version.stdout }}" }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    assert!(
        plan_line(&out, "write").contains("release-v1.2.3.txt"),
        "{}",
        out.stdout
    );
    out.stdout_has("deploying v1.2.3");
    assert!(!out.exists("release-v1.2.3.txt"));
}

#[test]
fn values_depending_on_a_write_are_known_after_apply() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  launch:
    type: exec
    with: { shell: "touch launched.marker; echo i-123" }
  record:
    type: file.write
    with: { path: instance.txt, content: "{{ steps.launch.stdout }}" }
  say:
    type: log
    with: { message: "launched {{ steps.launch.stdout }}" }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has("(known after apply: steps.launch.stdout)")
        .stdout_lacks("launched i-123");
    assert!(
        !out.exists("launched.marker"),
        "the write exec ran during plan"
    );
    assert!(!out.exists("instance.txt"));
}

#[test]
fn a_new_file_whose_content_is_known_after_apply_is_still_a_create() {
    // The path is known and the file does not exist: the plan should say `+`, not `~`.
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  launch: { type: exec, with: { command: [echo, i-123] } }
  record:
    type: file.write
    with: { path: instance.txt, content: "{{ steps.launch.stdout }}" }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    assert_eq!(symbol(&out, "record"), "+", "{}", out.stdout);
    assert!(
        plan_line(&out, "record").contains("instance.txt"),
        "{}",
        out.stdout
    );
}

#[test]
fn when_on_an_unknown_value_shows_the_step_as_conditional() {
    let playbook = r#"flow: 1
steps:
  launch: { type: exec, with: { command: [echo, i-123] } }
  tag:
    type: exec
    when: "steps.launch.stdout != ''"
    with: { shell: "touch tagged" }
"#;
    let human = Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    human.code(0);
    let line = plan_line(&human, "tag");
    assert!(line.contains("steps.launch.stdout != ''"), "{line}");
    assert_ne!(symbol(&human, "tag"), "…", "shown as skipped: {line}");
    let json = Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml", "--output", "json"])
        .run();
    json.code(0);
    let events = json.events();
    let tag = plan_step(&events, "tag");
    assert_eq!(tag["condition"], "steps.launch.stdout != ''");
    assert_ne!(tag["action"], "skip");
}

#[test]
fn when_on_a_known_false_value_shows_the_step_skipped() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  force: { type: boolean, default: false }
steps:
  wipe: { type: exec, when: params.force, with: { shell: "touch wiped" } }
"#,
        )
        .args(&["plan", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    let wipe = plan_step(&events, "wipe");
    assert_eq!(wipe["action"], "skip");
    assert_eq!(wipe["reason"], "when: params.force");
}

#[test]
fn offline_does_not_run_reads_and_shows_their_outputs_as_unknown() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  probe:
    type: exec
    effect: read
    with: { shell: "touch read.marker; echo v1.2" }
  say:
    type: log
    with: { message: "version {{ steps.probe.stdout }}" }
"#,
        )
        .args(&["plan", "playbook.yaml", "--offline"])
        .run();
    out.code(0)
        .stdout_has("(known after apply: steps.probe.stdout)")
        .stdout_lacks("version v1.2");
    assert!(!out.exists("read.marker"), "--offline ran a read");
    assert_eq!(symbol(&out, "probe"), "=");
}

#[test]
fn plan_lists_steps_in_execution_order() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  second: { type: exec, needs: [first], with: { command: [echo, two] } }
  first: { type: exec, needs: [], with: { command: [echo, one] } }
finally:
  last: { type: exec, with: { command: [echo, three] } }
"#,
        )
        .args(&["plan", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let order: Vec<String> = out
        .events()
        .iter()
        .filter(|e| e["event"] == "plan_step")
        .map(|e| e["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(order, vec!["first", "second", "last"]);
}

#[test]
fn plan_describes_writes_with_their_resolved_arguments() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  replicas: { type: integer, default: 3 }
steps:
  scale:
    type: exec
    with: { command: [kubectl, scale, "--replicas={{ params.replicas }}", "deploy/my worker"] }
"#,
        )
        .args(&["plan", "playbook.yaml", "-p", "replicas=5"])
        .run();
    out.code(0);
    let line = plan_line(&out, "scale");
    assert_eq!(symbol(&out, "scale"), "~");
    assert!(line.contains("--replicas=5"), "{line}");
    assert!(
        line.contains("'deploy/my worker'"),
        "argv shown unquoted: {line}"
    );
}

#[test]
fn plan_lists_each_for_each_element() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  each:
    type: file.write
    for_each: [alpha, beta]
    with: { path: "{{ item }}.txt", content: x }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("alpha.txt").stdout_has("beta.txt");
    assert!(!out.exists("alpha.txt"));
}

#[test]
fn envfile_set_plan_shows_the_lines_that_would_change_and_changes_nothing() {
    let out = Flow::new()
        .file("app.env", "A=1\nB=old\n")
        .playbook(
            r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: new, C: added } } }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has("B")
        .stdout_has("new")
        .stdout_has("C=added");
    assert_eq!(symbol(&out, "point"), "~");
    assert_eq!(out.file("app.env"), "A=1\nB=old\n");
}

#[test]
fn a_failing_read_fails_the_plan() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  probe:
    type: exec
    effect: read
    with: { shell: "echo cannot reach api >&2; exit 3" }
"#,
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(1).stdout_has("cannot reach api");
}

#[test]
fn plan_with_a_bad_param_exits_2_before_running_reads() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  count: { type: integer }
steps:
  probe: { type: exec, effect: read, with: { shell: "touch read.marker" } }
"#,
        )
        .args(&["plan", "playbook.yaml", "-p", "count=many"])
        .run();
    out.code(2).stderr_has("count");
    assert!(!out.exists("read.marker"));
}

#[test]
fn plan_json_is_one_event_per_line_with_actions() {
    let out = Flow::new()
        .file("existing.txt", "original\n")
        .playbook(MIXED)
        .args(&["plan", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    assert_eq!(
        events.first().map(|e| &e["event"]),
        Some(&Value::from("run_started"))
    );
    assert_eq!(
        events.last().map(|e| &e["event"]),
        Some(&Value::from("run_finished"))
    );
    let actions: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "plan_step")
        .map(|e| {
            (
                e["step"].as_str().unwrap_or("").to_string(),
                e["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("probe", "read"),
        ("create", "create"),
        ("change", "change"),
        ("ask", "ask"),
        ("never", "skip"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(actions, expected);
}
