//! Saved plans (DESIGN §4): `flow plan --out plan.json` records the playbook, the params (no
//! secrets) and a fingerprint of each read; `flow apply plan.json` refuses with exit 2 and
//! says what moved when any of that changed, and applies the plan when nothing did.

use crate::common::run::*;
use serde_json::{Value, json};

/// `look` reads a folder; `write` records what it saw. `early` is a write placed before the
/// read, so a drift check that only happens when the read is reached would be too late.
const PLAYBOOK: &str = r#"flow: 1
name: inbox
params:
  who: { type: string, default: ops }
steps:
  early:
    type: file.write
    with: { path: early.txt, content: "{{ params.who }}" }
  look:
    type: exec
    effect: read
    with: { command: [ls, inbox] }
  write:
    type: file.write
    with: { path: out.txt, content: "{{ params.who }}: {{ steps.look.stdout }}" }
"#;

/// A folder with the playbook, `inbox/a`, and a plan saved from them.
fn planned(extra_args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "playbook.yaml", PLAYBOOK);
    write(dir.path(), "inbox/a", "");
    let mut args = vec!["plan", "playbook.yaml", "--out", "plan.json"];
    args.extend_from_slice(extra_args);
    flow(dir.path(), &args, &[]).code(0);
    assert!(dir.path().join("plan.json").exists());
    dir
}

fn plan_file(dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(dir.join("plan.json")).expect("plan.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("plan.json is not JSON ({e}):\n{text}"))
}

fn nothing_written(dir: &std::path::Path, ran: &Ran) {
    for file in ["early.txt", "out.txt"] {
        assert!(
            !dir.join(file).exists(),
            "a refused plan still wrote {file}\n{}",
            ran.context()
        );
    }
}

#[test]
fn the_plan_file_records_playbook_params_and_read_fingerprints() {
    let dir = planned(&["-p", "who=alice"]);
    let plan = plan_file(dir.path());
    assert!(
        plan["playbook"]
            .as_str()
            .unwrap_or("")
            .ends_with("playbook.yaml"),
        "{plan:#}"
    );
    assert_eq!(
        plan["playbook_hash"],
        sha256_of(&dir.path().join("playbook.yaml")).as_str()
    );
    assert_eq!(plan["params"], json!({ "who": "alice" }));
    let look = &plan["reads"]["look"];
    assert!(
        look["sha256"].as_str().is_some_and(|h| h.len() == 64),
        "no fingerprint of the read: {plan:#}"
    );
    assert!(
        plan["reads"].get("early").is_none() && plan["reads"].get("write").is_none(),
        "only reads are fingerprinted: {plan:#}"
    );
}

#[test]
fn unchanged_it_applies_the_plan() {
    let dir = planned(&[]);
    let ran = flow(dir.path(), &["apply", "plan.json"], &[]);
    ran.code(0);
    assert_eq!(read(&dir.path().join("out.txt")), "ops: a");
    assert_eq!(read(&dir.path().join("early.txt")), "ops");
    let run = only_run(&dir.path().join(".flow"));
    assert_eq!(run_json(&run)["status"], "succeeded");
}

#[test]
fn it_applies_the_params_of_the_plan_and_accepts_the_same_value_again() {
    let dir = planned(&["-p", "who=alice"]);
    flow(dir.path(), &["apply", "plan.json"], &[]).code(0);
    assert_eq!(read(&dir.path().join("out.txt")), "alice: a");
    std::fs::remove_file(dir.path().join("out.txt")).unwrap();
    flow(dir.path(), &["apply", "plan.json", "-p", "who=alice"], &[]).code(0);
    assert_eq!(read(&dir.path().join("out.txt")), "alice: a");
}

#[test]
fn a_read_that_lists_a_new_entry_is_drift_exit_2_naming_the_step() {
    let dir = planned(&[]);
    write(dir.path(), "inbox/b", "");
    let ran = flow(dir.path(), &["apply", "plan.json"], &[]);
    ran.code(2)
        .stderr_has("step `look`")
        .stderr_has("nothing was applied");
    // The diff shows what the read returns now.
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.contains('+') && l.contains("a\\nb")),
        "no `+` line with the new listing:\n{}",
        ran.context()
    );
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.contains('-') && l.contains("\"a\"")),
        "no `-` line with the planned listing:\n{}",
        ran.context()
    );
    nothing_written(dir.path(), &ran);
}

#[test]
fn a_param_changed_at_apply_is_drift_exit_2_naming_the_param_and_both_values() {
    let dir = planned(&[]);
    let ran = flow(
        dir.path(),
        &["apply", "plan.json", "-p", "who=mallory"],
        &[],
    );
    ran.code(2)
        .stderr_has("param `who`")
        .stderr_has("ops")
        .stderr_has("mallory");
    nothing_written(dir.path(), &ran);
}

#[test]
fn an_edited_playbook_is_drift_exit_2_with_a_diff_of_the_edit() {
    let dir = planned(&[]);
    let edited = PLAYBOOK.replace("content: \"{{ params.who }}\" }", "content: \"edited\" }");
    assert_ne!(edited, PLAYBOOK);
    write(dir.path(), "playbook.yaml", &edited);
    let ran = flow(dir.path(), &["apply", "plan.json"], &[]);
    ran.code(2).stderr_has("playbook").stderr_has("changed");
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.trim_start().starts_with('+') && l.contains("edited")),
        "no `+` line with the edit:\n{}",
        ran.context()
    );
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.trim_start().starts_with('-') && l.contains("{{ params.who }}\" }")),
        "no `-` line with the planned text:\n{}",
        ran.context()
    );
    nothing_written(dir.path(), &ran);
}

#[test]
fn a_playbook_edited_back_to_what_was_planned_applies() {
    let dir = planned(&[]);
    write(dir.path(), "playbook.yaml", &format!("{PLAYBOOK}# note\n"));
    flow(dir.path(), &["apply", "plan.json"], &[]).code(2);
    write(dir.path(), "playbook.yaml", PLAYBOOK);
    flow(dir.path(), &["apply", "plan.json"], &[]).code(0);
    assert_eq!(read(&dir.path().join("out.txt")), "ops: a");
}

const SECRET: &str = "plan-S3cret-Qx81-zz";

const WITH_SECRET: &str = r#"flow: 1
params:
  token: { type: string, secret: true, env: PLAN_TEST_TOKEN }
steps:
  look:
    type: exec
    effect: read
    with:
      shell: 'echo "token:$T"'
      env: { T: "{{ params.token }}" }
  use:
    type: exec
    with:
      shell: 'echo "$T" | wc -c > used.txt'
      env: { T: "{{ params.token }}" }
"#;

#[test]
fn a_secret_given_for_the_plan_must_be_given_again_and_is_not_in_the_plan_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "playbook.yaml", WITH_SECRET);
    let plan = flow(
        dir.path(),
        &["plan", "playbook.yaml", "--out", "plan.json"],
        &[("PLAN_TEST_TOKEN", SECRET)],
    );
    plan.code(0);
    assert!(!plan.both().contains(SECRET), "{}", plan.context());
    let text = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert!(
        !text.contains(SECRET),
        "plan.json holds the secret:\n{text}"
    );
    assert!(
        !text.contains("S3cret"),
        "plan.json holds part of the secret:\n{text}"
    );
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["secret_params"], json!(["token"]));
    assert!(saved["params"].get("token").is_none(), "{saved:#}");

    // Not given again: refused, naming the param and how to give it.
    let ran = flow(dir.path(), &["apply", "plan.json"], &[]);
    ran.code(2)
        .stderr_has("`token`")
        .stderr_has("-p token=")
        .stderr_has("PLAN_TEST_TOKEN");
    assert!(!dir.path().join("used.txt").exists(), "{}", ran.context());

    // Given again: applied, and the secret still nowhere.
    let secret_arg = format!("token={SECRET}");
    let ran = flow(dir.path(), &["apply", "plan.json", "-p", &secret_arg], &[]);
    ran.code(0);
    assert!(!ran.both().contains(SECRET), "{}", ran.context());
    assert!(dir.path().join("used.txt").exists());
    for file in walk(dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains(SECRET),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn a_plan_of_another_format_or_a_broken_plan_is_exit_2() {
    let dir = planned(&[]);
    let mut plan = plan_file(dir.path());
    plan["flow_plan"] = json!(99);
    write(dir.path(), "future.json", &plan.to_string());
    let ran = flow(dir.path(), &["apply", "future.json"], &[]);
    ran.code(2).stderr_has("format");
    nothing_written(dir.path(), &ran);

    let mut plan = plan_file(dir.path());
    plan.as_object_mut().unwrap().remove("playbook_hash");
    write(dir.path(), "broken.json", &plan.to_string());
    let ran = flow(dir.path(), &["apply", "broken.json"], &[]);
    ran.code(2);
    nothing_written(dir.path(), &ran);
}
