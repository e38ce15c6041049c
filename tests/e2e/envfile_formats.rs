//! `envfile.set`'s `format`: who reads the file decides how a value that needs quotes is
//! written (REALITY.md: `docker run --env-file` takes each line literally, quotes and
//! backslashes included; a shell and docker compose unquote). Seed 000's `secrets.env`
//! feeds containers: `A="p\$w!x"` there gave the container `"p\$w!x"`, quotes and all.

use crate::common::Flow;
use serde_json::Value;

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))
}

/// What `docker run --env-file` takes from a file (docker/cli `opts/envfile.go`): each line
/// that is not empty or a `#` comment, split at its first `=`, the value as it is.
fn as_docker_reads(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `format: docker` writes each value as it is — `p\$w!x`, a space, quotes — so docker reads
/// exactly the value set; the values it had are read back the same way.
#[test]
fn a_docker_env_file_gets_values_docker_reads_as_they_were_set() {
    let out = Flow::new()
        .file("secrets.env", "BLOT_REDIS_HOST=\"10.0.0.1\"\nOTHER=1\n")
        .playbook(
            r#"flow: 1
steps:
  point:
    type: envfile.set
    with:
      path: secrets.env
      format: docker
      set: { BLOT_REDIS_HOST: 10.0.0.5, REDIS_PASSWORD: 'p\$w!x', GREETING: 'hello "you" $HOME' }
"#,
        )
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(0);
    let text = out.file("secrets.env");
    assert_eq!(
        as_docker_reads(&text),
        vec![
            ("BLOT_REDIS_HOST".to_string(), "10.0.0.5".to_string()),
            ("OTHER".into(), "1".into()),
            ("REDIS_PASSWORD".into(), r"p\$w!x".into()),
            ("GREETING".into(), r#"hello "you" $HOME"#.into()),
        ],
        "{text}"
    );
    let events = out.events();
    // What docker read before: the quotes were part of the value.
    assert_eq!(
        finished(&events, "point")["outputs"]["previous"]["BLOT_REDIS_HOST"],
        "\"10.0.0.1\""
    );
}

/// A value that needs quotes in a file that does not say who reads it: refused (plan and
/// apply, nothing written, the value never shown) until `format` says; a file with quoted
/// values or `export` lines is read by a shell, and gets shell quoting as before.
#[test]
fn a_value_that_needs_quotes_is_refused_until_the_format_is_known() {
    let playbook = r#"flow: 1
steps:
  point:
    type: envfile.set
    with: { path: app.env, set: { REDIS_PASSWORD: 'p$w!x' } }
"#;
    let plan = Flow::new()
        .file("app.env", "HOST=db\n")
        .playbook(playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("will fail: the value of REDIS_PASSWORD needs quotes")
        .stdout_has("`format: docker`");
    let apply = Flow::new()
        .file("app.env", "HOST=db\n")
        .playbook(playbook)
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    apply
        .code(1)
        .stdout_has("needs quotes")
        .stdout_has("nothing was written");
    assert_eq!(apply.file("app.env"), "HOST=db\n");

    let shell = Flow::new()
        .file("app.env", "export HOST=db\n")
        .playbook(playbook)
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    shell.code(0);
    assert_eq!(
        shell.file("app.env"),
        "export HOST=db\nREDIS_PASSWORD=\"p\\$w!x\"\n"
    );
}
