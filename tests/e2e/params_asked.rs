//! Params no source gives: `ask: true` asks for them on a terminal (checked like a `-p`
//! value, asked again until it passes; a secret is not echoed) and fails with the usual hint
//! without one; a plan needs no secret values — a secret param not given shows as
//! `(given at apply)` and apply asks for it as always.

use crate::common::pty::Terminal;
use crate::common::{Flow, read};

const ASKED: &str = "flow: 1
params:
  who: { type: string, ask: true, pattern: \"^[a-z]+$\", description: Who is on call }
  count: { type: integer, ask: true, default: 3 }
  token: { type: string, secret: true, ask: true, env: FLOW_TEST_TOKEN_UNSET }
steps:
  note:
    type: file.write
    with: { path: note.txt, content: \"{{ params.who }} {{ params.count }}\" }
  show:
    type: log
    with: { message: \"token {{ params.token }}\" }
";

/// Waits for a question, and a moment more for the prompt to take the terminal (a password
/// prompt turns echo off only then: keys typed before it would be echoed, as with any
/// program), then answers.
fn answer(terminal: &mut Terminal, question: &str, keys: &str) {
    terminal.wait_for(question);
    terminal.drawn_during(std::time::Duration::from_millis(300));
    terminal.type_keys(keys);
}

#[test]
fn ask_params_are_asked_on_a_terminal_checked_and_a_secret_is_not_echoed() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("playbook.yaml"), ASKED).expect("write");
    let mut terminal = Terminal::start(dir.path(), "apply playbook.yaml");
    answer(&mut terminal, "who (Who is on call)", "Ann1\r");
    answer(&mut terminal, "does not match the pattern", "ann\r");
    // The default is offered; Enter takes it.
    answer(&mut terminal, "count [Enter: 3]", "\r");
    answer(
        &mut terminal,
        "token [or set FLOW_TEST_TOKEN_UNSET]",
        "hunter2-secret\r",
    );
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(read(&dir.path().join("note.txt")), "ann 3");
    assert!(screen.contains("token ***"), "{screen}");
    assert!(
        !screen.contains("hunter2-secret"),
        "the secret was echoed:\n{screen}"
    );
    assert!(
        !crate::common::read_tree(&dir.path().join(".flow")).contains("hunter2-secret"),
        "the secret reached the journal"
    );
}

#[test]
fn ask_params_given_otherwise_are_not_asked_and_without_a_terminal_are_missing() {
    // Given with -p and by env: no question, on a terminal too.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("playbook.yaml"), ASKED).expect("write");
    let terminal = Terminal::start_with_env(
        dir.path(),
        "apply playbook.yaml -p who=bob -p count=5",
        &[(
            "FLOW_TEST_TOKEN_UNSET".to_string(),
            "t0ken-value".to_string(),
        )],
    );
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("Who is on call"), "{screen}");
    assert_eq!(read(&dir.path().join("note.txt")), "bob 5");

    // No terminal: the default for `count`, the usual error for the others.
    Flow::new()
        .playbook(ASKED)
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("missing required param `who`")
        .stderr_has("pass `-p who=VALUE` (on a terminal flow asks for it)")
        .stderr_has("missing required param `token`")
        .stderr_lacks("`count`");
}

const SECRET_USED: &str = "flow: 1
params:
  host: { type: string, default: db.internal }
  password: { type: string, secret: true, env: FLOW_TEST_PASSWORD_UNSET }
steps:
  login:
    type: exec
    with: { command: [echo, \"--host={{ params.host }}\", \"--password={{ params.password }}\"] }
  check:
    type: assert
    when: params.password | length > 8
    with: { that: true }
";

#[test]
fn a_plan_needs_no_secret_values_a_missing_one_is_given_at_apply() {
    for offline in [true, false] {
        let mut args = vec!["plan", "playbook.yaml"];
        if offline {
            args.push("--offline");
        }
        Flow::new()
            .playbook(SECRET_USED)
            .args(&args)
            .run()
            .code(0)
            .stdout_has("run: echo --host=db.internal '--password=(given at apply)'")
            .stdout_has("[only if: params.password | length > 8]");
    }
    // Saved, the plan holds nothing of it; applied, it needs the secret as always.
    let out = Flow::new()
        .playbook(SECRET_USED)
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    out.code(0);
    Flow::new()
        .playbook(SECRET_USED)
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("missing required param `password`")
        .stderr_has("or set `FLOW_TEST_PASSWORD_UNSET`");
    let given = Flow::new()
        .playbook(SECRET_USED)
        .env("FLOW_TEST_PASSWORD_UNSET", "pa55word-long")
        .args(&["apply", "playbook.yaml"])
        .run();
    given.code(0);
    assert!(!given.both().contains("pa55word-long"));
}
