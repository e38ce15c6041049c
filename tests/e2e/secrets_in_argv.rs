//! A secret in a process's command line is readable by every user of the machine (`ps`),
//! whatever flow masks in its own output. `flow validate` warns, at the place, where one
//! reaches `exec`'s or `ssh.exec`'s `command` or `shell` — a secret param or its environment
//! variable, a generated password, a `secrets.get` value, an `ssm.get` value that may be a
//! SecureString, an output declared secret — and says to pass it in `env:` or on `stdin:`;
//! passed that way, it is in no process's command line while the step runs, locally and on a
//! host over SSH.

use crate::common::sshd::Sshd;
use crate::common::{Flow, flow_bin};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn validate_warns_where_a_secret_reaches_a_command_line() {
    let ran = Flow::new()
        .playbook(
            r#"flow: 1
params:
  pw: { type: string, secret: true, env: APP_PW }
steps:
  gen:
    type: password.generate
  mint:
    type: exec
    secret_outputs: [stdout]
    with: { command: [echo, x] }
  fetch:
    type: secrets.get
    with: { name: app/db }
  param:
    type: ssm.get
    with: { name: /app/token }
  in_argv:
    type: exec
    with: { command: [tool, "--password={{ params.pw }}"] }
  in_shell:
    type: exec
    with: { shell: "tool --token {{ steps.gen.value | quote }}" }
  from_env:
    type: exec
    with: { command: [tool, "{{ env.APP_PW }}"] }
  declared:
    type: exec
    with: { command: [tool, "{{ steps.mint.stdout }}", "{{ steps.fetch.value }}", "{{ steps.param.value }}"] }
  remote:
    type: ssh.exec
    with: { host: web1, command: [tool, "{{ steps.gen.value }}"] }
  fine:
    type: exec
    with:
      shell: 'tool --password "$PW"'
      env: { PW: "{{ params.pw }}" }
      stdin: "{{ steps.gen.value }}"
"#,
        )
        .args(&["validate", "playbook.yaml"])
        .run();
    ran.code(0);
    let warned = |at: &str, message: &str| {
        let found = ran
            .stderr
            .split("warning: ")
            .any(|w| w.contains(message) && w.contains(&format!("playbook.yaml:{at}")));
        assert!(found, "no warning {message:?} at {at}:\n{}", ran.stderr);
    };
    warned(
        "19:44",
        "step `in_argv`: `with.command` puts `params.pw` (a secret param) in a command line",
    );
    warned(
        "22:37",
        "`with.shell` puts `steps.gen.value` (a secret output of `password.generate`)",
    );
    warned("25:33", "`env.APP_PW` (the value of secret param `pw`)");
    warned(
        "28:33",
        "`steps.mint.stdout` (an output the playbook declares secret)",
    );
    warned(
        "28:60",
        "`steps.fetch.value` (a secret output of `secrets.get`)",
    );
    warned(
        "28:87",
        "`steps.param.value` (a secret when the parameter is a SecureString)",
    );
    warned(
        "31:45",
        "step `remote`: `with.command` puts `steps.gen.value`",
    );
    assert!(
        ran.stderr
            .contains("pass it in `env:` (`env: { PW: \"{{ params.pw }}\" }`, then `\"$PW\"` in a `shell:` script) or on `stdin:`"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        ran.stderr.matches("in a command line").count(),
        7,
        "{}",
        ran.stderr
    );
}

/// Every process's command line, as `ps -eo args` shows them.
fn command_lines() -> String {
    let out = Command::new("ps")
        .args(["-eo", "args"])
        .stdin(Stdio::null())
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `flow apply` on `playbook` in `dir`, its params `pw` and `shown` read from
/// `TEST_PS_PW` and `TEST_PS_SHOWN` (`-p` would put them in flow's own command line), looking
/// at every command line on the machine until it ends. Returns whether each was seen.
fn watch(dir: &Path, playbook: &str, pw: &str, shown: &str) -> (bool, bool) {
    std::fs::write(dir.join("playbook.yaml"), playbook).expect("playbook");
    let mut child = Command::new(flow_bin());
    for var in crate::common::CLEARED_ENV {
        child.env_remove(var);
    }
    let mut child = child
        .env("TEST_PS_PW", pw)
        .env("TEST_PS_SHOWN", shown)
        .args(["apply", "playbook.yaml"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flow");
    let stdout = crate::common::run::reader(child.stdout.take().expect("stdout"));
    let stderr = crate::common::run::reader(child.stderr.take().expect("stderr"));
    let (mut seen_pw, mut seen_shown, mut samples) = (false, false, 0);
    let began = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "flow did not finish"
        );
        let lines = command_lines();
        if dir.join("started").exists() {
            samples += 1;
        }
        seen_pw |= lines.contains(pw);
        seen_shown |= lines.contains(shown);
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = child.wait().expect("wait").code();
    let output = format!(
        "{}\n{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    assert_eq!(code, Some(0), "{output}");
    assert!(
        samples > 10,
        "the steps were hardly looked at ({samples} times):\n{output}"
    );
    (seen_pw, seen_shown)
}

/// Params: `pw`, passed in `env` and on `stdin`; `shown`, passed in a command line — which
/// the check must see, or it could not fail.
const PARAMS: &str = "params:
  pw: { type: string, secret: true, env: TEST_PS_PW }
  shown: { type: string, secret: true, env: TEST_PS_SHOWN }
";

#[test]
fn a_secret_passed_in_env_or_stdin_is_in_no_command_line_while_exec_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seen = watch(
        dir.path(),
        &format!(
            r#"flow: 1
{PARAMS}steps:
  via_env:
    type: exec
    with:
      shell: 'touch started; sleep 1.5; test "$PW" = "$(cat)"'
      env: {{ PW: "{{{{ params.pw }}}}" }}
      stdin: "{{{{ params.pw }}}}"
  via_argv:
    type: exec
    with:
      command: [sh, -c, 'sleep 1', sh, "{{{{ params.shown }}}}"]
"#
        ),
        "Ps-Hidden-Pw-6650",
        "Ps-Shown-Pw-1187",
    );
    assert_eq!(seen, (false, true));
}

#[test]
fn a_secret_passed_in_env_or_stdin_is_in_no_command_line_while_ssh_exec_runs() {
    let server = Sshd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let seen = watch(
        dir.path(),
        &format!(
            r#"flow: 1
{PARAMS}defaults:
  ssh: {block}
steps:
  via_env:
    type: ssh.exec
    with:
      shell: 'touch {started}; sleep 1.5; test "$PW" = "$(cat)"'
      env: {{ PW: "{{{{ params.pw }}}}" }}
      stdin: "{{{{ params.pw }}}}"
  via_argv:
    type: ssh.exec
    with:
      command: [sh, -c, 'sleep 1', sh, "{{{{ params.shown }}}}"]
"#,
            block = server.block("flowtest"),
            started = dir.path().join("started").display(),
        ),
        "Ssh-Hidden-Pw-7371",
        "Ssh-Shown-Pw-2290",
    );
    assert_eq!(seen, (false, true));
}

#[test]
fn a_secret_param_given_with_p_is_warned_about() {
    Flow::new()
        .playbook(
            "flow: 1\nparams:\n  pw: { type: string, secret: true, env: APP_PW }\n  who: { type: string }\nsteps:\n  a: { type: log, with: { message: hi } }\n",
        )
        .args(&["plan", "playbook.yaml", "-p", "pw=Cli-Visible-1", "-p", "who=ops"])
        .run()
        .code(0)
        .stderr_has("warning: secret param `pw` is given with `-p`: every user of this machine can read flow's command line (`ps`)")
        .stderr_has("set APP_PW (its `env`) or put it in a `--params-file` instead")
        .stderr_lacks("`who`");
}
