//! Every static error is printed with file:line:col, the line and a caret, and exits 2.

use crate::common::Flow;

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

#[test]
fn github_actions_gets_error_annotations() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a:\n    type: log\n    with: { mesage: hi }\n")
        .env("GITHUB_ACTIONS", "true")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has(
            "::error file=playbook.yaml,line=5,col=13::step `a`: unknown field `with.mesage`",
        );
}

#[test]
fn usage_errors_exit_2() {
    Flow::new()
        .args(&["apply"])
        .run()
        .code(2)
        .stderr_has("PLAYBOOK");
    Flow::new().args(&["frobnicate"]).run().code(2);
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: log, with: { message: hi } }\n")
        .args(&["apply", "playbook.yaml", "--concurrency", "0"])
        .run()
        .code(2);
}

#[test]
fn missing_playbook_file_is_exit_2_naming_the_file() {
    Flow::new()
        .args(&["validate", "nope.yaml"])
        .run()
        .code(2)
        .stderr_has("error: cannot read playbook nope.yaml");
}

#[test]
fn approve_must_name_a_step() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  go: { type: confirm, with: { message: ok? } }\n")
        .args(&["apply", "playbook.yaml", "--approve", "goo"])
        .run()
        .code(2)
        .stderr_has("error: `--approve goo`: the playbook has no step `goo`")
        .stderr_has("did you mean `go`?");
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let playbook = "flow: 1\nsteps:\n  a: { type: log, with: { message: a } }\n  b: { type: log, with: { message: b } }\n  c: { type: log, needs: [a], with: { message: c } }\nfinally:\n  z: { type: log, with: { message: z } }\n";
    Flow::new()
        .playbook(playbook)
        .args(&["graph", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("digraph")
        .stdout_has("  a -> b;\n")
        .stdout_has("  a -> c;\n")
        .stdout_lacks("b -> c")
        .stdout_has("subgraph cluster_finally");
    Flow::new()
        .playbook(playbook)
        .args(&["graph", "playbook.yaml", "--format", "mermaid"])
        .run()
        .code(0)
        .stdout_has("flowchart TD")
        .stdout_has("  a --> c\n");
}

#[test]
fn warnings_do_not_fail_validation() {
    Flow::new()
        .playbook("flow: 1\nparams:\n  name: { type: string }\nsteps:\n  a:\n    type: exec\n    with: { shell: \"echo {{ params.name }}\" }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(0)
        .stderr_has("warning: step `a`: `with.shell` interpolates `{{ params.name }}` without `| quote`")
        .stderr_has("  --> playbook.yaml:7:26");
}

#[test]
fn json_output_carries_diagnostics_and_the_verdict_on_stdout() {
    let bad = Flow::new()
        .playbook("flow: 1\nsteps:\n  a:\n    type: exek\n")
        .args(&["--output", "json", "validate", "playbook.yaml"])
        .run();
    bad.code(2).stderr_has("error: unknown step type `exek`");
    let events = bad.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "diagnostic");
    assert_eq!(events[0]["severity"], "error");
    assert_eq!(events[0]["message"], "unknown step type `exek`");
    assert_eq!(events[0]["file"], "playbook.yaml");
    assert_eq!(
        (events[0]["line"].as_u64(), events[0]["col"].as_u64()),
        (Some(4), Some(11))
    );
    assert_eq!(events[0]["help"], "did you mean `exec`?");
    let good = Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: log, with: { message: hi } }\n")
        .args(&["--output", "json", "validate", "playbook.yaml"])
        .run();
    good.code(0);
    assert_eq!(
        good.events(),
        vec![
            serde_json::json!({"event": "validated", "playbook": "playbook.yaml", "steps": 1, "params": 0})
        ]
    );
}

/// `defaults` takes connection-block keys and the families where a default makes sense,
/// nothing internal: the whole message is the point, so it is pinned whole.
#[test]
fn unknown_defaults_keys_are_named_with_what_defaults_takes() {
    Flow::new()
        .playbook(
            "flow: 1\ndefaults:\n  exce: { cwd: /tmp }\n  log: { message: hi }\nsteps:\n  a: { type: log, with: { message: hi } }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_is(
            "error: unknown defaults key `exce`
  --> playbook.yaml:3:3
  |
3 |   exce: { cwd: /tmp }
  |   ^^^^
  = help: did you mean `exec`?
error: unknown defaults key `log`
  --> playbook.yaml:4:3
  |
4 |   log: { message: hi }
  |   ^^^
  = help: `defaults` takes: aws, envfile, exec, file, files, redis, ssh
error: 2 problems found
",
        );
}

/// A Redis block nested under `redis.compare` is checked with `defaults.redis` merged in:
/// a field the block does not take is named at its place in `defaults`.
#[test]
fn a_wrong_field_in_defaults_redis_is_reported_under_redis_compare_too() {
    let out = Flow::new()
        .playbook(
            "flow: 1\ndefaults:\n  redis: { url: \"redis://127.0.0.1:1\", pasword: x }\nsteps:\n  cmp:\n    type: redis.compare\n    with:\n      left: { url: \"redis://127.0.0.1:2\" }\n      right: { url: \"redis://127.0.0.1:3\" }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run();
    // Checked once, where it is written: `defaults.redis` takes only what a Redis block takes.
    out.code(2)
        .stderr_has("`defaults.redis` takes no `pasword`")
        .stderr_has("playbook.yaml:3:40")
        .stderr_has("did you mean `password`?")
        .stderr_lacks("with.left.pasword")
        .stderr_lacks("with.right.pasword");
}

/// `defaults.ssh` is connection settings only: a `command` there would otherwise become the
/// command of every `ssh.exec` that has none.
#[test]
fn defaults_ssh_takes_only_connection_settings() {
    Flow::new()
        .playbook(
            "flow: 1\ndefaults:\n  ssh: { host: web1, command: [echo, hi] }\nsteps:\n  a: { type: ssh.exec, with: { shell: uptime } }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("error: `defaults.ssh` takes no `command`")
        .stderr_has("playbook.yaml:3:22");
}

/// A port past 65535 is caught before anything runs, not when the step does.
#[test]
fn an_out_of_range_port_is_a_validation_error() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: ssh.exec, with: { host: web1, port: 99999, command: [uptime] } }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("`with.port` must be at most 65535, found 99999");
}
