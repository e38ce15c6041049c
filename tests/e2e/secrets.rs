//! `secret: true` values never appear in anything flow prints (DESIGN §7): plan and apply,
//! human and JSON output, step output, errors, summaries and outputs. They show as `***`.

use crate::common::Flow;

const SECRET: &str = "Sup3r-S3cret-9f2a";

/// Echoes the secret on stdout and stderr, passes it as an argv argument, and puts it in
/// the playbook outputs.
const ECHOES: &str = r#"flow: 1
params:
  pw: { type: string, secret: true, env: TEST_FLOW_PW }
steps:
  echo_both:
    type: exec
    with:
      shell: 'echo "out:$PW"; echo "err:$PW" >&2'
      env: { PW: "{{ params.pw }}" }
  as_argument:
    type: exec
    with: { command: [echo, "password={{ params.pw }}"] }
  say:
    type: log
    with: { message: "using {{ params.pw }} now" }
outputs:
  echoed: "{{ steps.echo_both.stdout }}"
  raw: "{{ params.pw }}"
"#;

fn assert_hidden(out: &crate::common::Outcome, secret: &str) {
    out.stdout_lacks(secret).stderr_lacks(secret);
    for part in secret.lines().filter(|l| l.len() >= 4) {
        out.stdout_lacks(part).stderr_lacks(part);
    }
    // Whatever flow leaves in its state folder (the run journal) is covered too.
    let state = out.path(".flow");
    if state.exists() {
        for file in walk(&state) {
            let text =
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
            assert!(
                !text.contains(secret),
                "{} holds the secret",
                file.display()
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn combined(out: &crate::common::Outcome) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn secret_from_p_is_masked_in_human_apply_including_step_output() {
    let out = Flow::new()
        .playbook(ECHOES)
        .args(&[
            "apply",
            "playbook.yaml",
            "-v",
            "-p",
            &format!("pw={SECRET}"),
        ])
        .run();
    out.code(0);
    assert_hidden(&out, SECRET);
    // -v shows every line a step prints: masked, not dropped.
    out.stdout_has("out:***")
        .stdout_has("err:***")
        .stdout_has("using *** now");
}

#[test]
fn secret_from_env_is_masked_in_json_apply() {
    let out = Flow::new()
        .playbook(ECHOES)
        .env("TEST_FLOW_PW", SECRET)
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    assert_hidden(&out, SECRET);
    let events = out.events();
    let finished = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "echo_both")
        .expect("echo_both finished");
    assert_eq!(finished["outputs"]["stdout"], "out:***");
    assert_eq!(finished["outputs"]["stderr"], "err:***");
    let end = events.last().expect("events");
    assert_eq!(end["event"], "run_finished");
    assert_eq!(end["outputs"]["raw"], "***");
    assert_eq!(end["outputs"]["echoed"], "out:***");
}

#[test]
fn secret_is_masked_in_the_summary_outputs() {
    let out = Flow::new()
        .playbook(ECHOES)
        .env("TEST_FLOW_PW", SECRET)
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert_hidden(&out, SECRET);
    let outputs = out
        .stdout
        .split("Outputs")
        .nth(1)
        .expect("an Outputs block");
    assert!(outputs.contains("out:***"), "{outputs}");
}

#[test]
fn secret_is_masked_in_plan_human_and_json() {
    for output in ["human", "json"] {
        let out = Flow::new()
            .playbook(ECHOES)
            .args(&[
                "plan",
                "playbook.yaml",
                "--output",
                output,
                "-p",
                &format!("pw={SECRET}"),
            ])
            .run();
        out.code(0);
        assert_hidden(&out, SECRET);
        // The argv is described with the secret masked.
        out.stdout_has("password=***");
    }
}

#[test]
fn secret_echoed_by_a_read_step_during_plan_is_masked() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  pw: { type: string, secret: true }
steps:
  probe:
    type: exec
    effect: read
    with: { shell: 'echo "token=$PW"; echo "warn $PW" >&2', env: { PW: "{{ params.pw }}" } }
  say:
    type: log
    with: { message: "probe said {{ steps.probe.stdout }}" }
"#,
        )
        .args(&[
            "plan",
            "playbook.yaml",
            "--output",
            "json",
            "-p",
            &format!("pw={SECRET}"),
        ])
        .run();
    out.code(0);
    assert_hidden(&out, SECRET);
    out.stdout_has("token=***");
}

#[test]
fn secret_in_a_failing_commands_stderr_is_masked_in_the_error() {
    for output in ["human", "json"] {
        let out = Flow::new()
            .playbook(
                r#"flow: 1
params:
  pw: { type: string, secret: true }
steps:
  login:
    type: exec
    with:
      shell: 'echo "auth failed for password $PW" >&2; exit 1'
      env: { PW: "{{ params.pw }}" }
finally:
  report:
    type: log
    with: { message: "login error: {{ steps.login.error }}" }
"#,
            )
            .args(&[
                "apply",
                "playbook.yaml",
                "--output",
                output,
                "-p",
                &format!("pw={SECRET}"),
            ])
            .run();
        out.code(1);
        assert_hidden(&out, SECRET);
        // The error still says what happened.
        out.stdout_has("auth failed for password ***");
    }
}

#[test]
fn secret_in_an_assert_message_or_warning_is_masked() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  pw: { type: string, secret: true }
steps:
  soft:
    type: assert
    with: { that: "params.pw | length > 100", message: "weak password {{ params.pw }}", severity: warning }
  hard:
    type: assert
    with: { that: "params.pw | length > 100", message: "weak password {{ params.pw }}" }
"#,
        )
        .args(&["apply", "playbook.yaml", "-p", &format!("pw={SECRET}")])
        .run();
    out.code(1);
    assert_hidden(&out, SECRET);
    assert!(
        combined(&out).contains("weak password ***"),
        "{}",
        combined(&out)
    );
}

#[test]
fn secret_from_a_params_file_is_masked() {
    let out = Flow::new()
        .file("prod.yaml", &format!("pw: {SECRET}\n"))
        .playbook(ECHOES)
        .args(&["apply", "playbook.yaml", "-v", "--params-file", "prod.yaml"])
        .run();
    out.code(0);
    assert_hidden(&out, SECRET);
    out.stdout_has("out:***");
}

#[test]
fn a_secret_that_fails_validation_is_not_echoed_in_the_error() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  pw: { type: string, secret: true, pattern: "^[a-z]+$" }
steps:
  a: { type: exec, with: { shell: "touch ran" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "-p", &format!("pw={SECRET}")])
        .run();
    out.code(2).stderr_has("pw");
    assert_hidden(&out, SECRET);
    assert!(!out.exists("ran"));
}

#[test]
fn json_secret_has_each_leaf_masked() {
    let document = r#"{"user":"admin-7c1","password":"leaf-Pa55-0d9e"}"#;
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  creds: { type: string, secret: true }
steps:
  leak_leaf:
    type: exec
    with:
      shell: 'printf "%s\n" "$CREDS" | sed -e "s/.*password\":\"//" -e "s/\".*//"'
      env: { CREDS: "{{ params.creds }}" }
"#,
        )
        .args(&[
            "apply",
            "playbook.yaml",
            "-v",
            "-p",
            &format!("creds={document}"),
        ])
        .run();
    out.code(0);
    assert_hidden(&out, document);
    assert_hidden(&out, "leaf-Pa55-0d9e");
    out.stdout_has("leak_leaf: ***");
}

#[test]
fn secret_containing_a_quote_is_masked_in_the_plan_command_line() {
    // The plan shows argv shell-quoted; the quoted form of the secret must be masked too.
    let secret = "it's-S3cret-77ab";
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  pw: { type: string, secret: true }
steps:
  login:
    type: exec
    with: { command: [login-tool, "{{ params.pw }}"] }
"#,
        )
        .args(&["plan", "playbook.yaml", "-p", &format!("pw={secret}")])
        .run();
    out.code(0);
    assert_hidden(&out, secret);
    for fragment in ["S3cret-77ab", "it'"] {
        out.stdout_lacks(fragment);
    }
}

#[test]
fn multi_line_secret_is_masked_in_streamed_output_lines() {
    // A private key or certificate is a multi-line secret; a command that prints it line by
    // line must not reveal any of its lines.
    let secret = "-----KEY-----\nline-one-8a7f3e\nline-two-41bc9d\n-----END-----";
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  key: { type: string, secret: true, env: TEST_FLOW_KEY }
steps:
  show:
    type: exec
    with: { shell: 'printf "%s\n" "$KEY"', env: { KEY: "{{ params.key }}" } }
"#,
        )
        .env("TEST_FLOW_KEY", secret)
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    out.stdout_lacks("line-one-8a7f3e")
        .stdout_lacks("line-two-41bc9d");
}
