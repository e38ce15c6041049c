//! Every static error is printed with file:line:col, the line and a caret, and exits 2.

mod common;
use common::Flow;

#[test]
fn unknown_top_level_key_points_at_it() {
    Flow::new()
        .playbook("flow: 1\nstepz:\n  a: { type: log, with: { message: hi } }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("error: unknown field `stepz` in the playbook\n  --> playbook.yaml:2:1\n  |\n2 | stepz:\n  | ^^^^^\n  = help: did you mean `steps`?\n");
}

#[test]
fn unknown_step_type_suggests_the_closest() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a:\n    type: exek\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("error: unknown step type `exek`\n  --> playbook.yaml:4:11\n")
        .stderr_has("help: did you mean `exec`?");
}

#[test]
fn valid_playbook_says_so() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: log, with: { message: hi } }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("✔ playbook.yaml is valid: 1 step, 0 params");
}
