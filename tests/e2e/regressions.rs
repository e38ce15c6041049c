//! Behaviour an operator relies on, pinned after a first-use review found it wrong.

use crate::common::Flow;

#[test]
fn a_templated_line_keeps_its_final_newline() {
    let ran = Flow::new()
        .playbook("flow: 1\nparams:\n  who: { type: string, default: bob }\nsteps:\n  a:\n    type: file.write\n    with: { path: log.txt, append: true, content: \"line for {{ params.who }}\\n\" }\n  b:\n    type: file.write\n    with: { path: log.txt, append: true, content: \"line for {{ params.who }}\\n\" }\n")
        .args(&["apply", "playbook.yaml"])
        .run();
    ran.code(0);
    assert_eq!(ran.file("log.txt"), "line for bob\nline for bob\n");
}

#[test]
fn python_string_methods_work_in_templates() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  launch: { type: exec, with: { command: [echo, \"  i-0abc  \"] } }\n  check:\n    type: assert\n    with: { that: \"steps.launch.stdout.strip().startswith('i-')\" }\n")
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0);
}

#[test]
fn a_script_handed_to_sh_dash_c_gets_the_quote_warning() {
    Flow::new()
        .playbook("flow: 1\nparams:\n  name: { type: string, default: x }\nsteps:\n  a:\n    type: exec\n    with: { command: [sh, -c, \"echo hello {{ params.name }}\"] }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(0)
        .stderr_has("warning: step `a`: `with.command[2]` interpolates `{{ params.name }}` without `| quote`");
}

#[test]
fn a_read_behind_confirm_does_not_run_during_plan() {
    let ran = Flow::new()
        .playbook("flow: 1\nsteps:\n  look:\n    type: exec\n    effect: read\n    confirm: Look?\n    with: { command: [touch, looked] }\n")
        .args(&["plan", "playbook.yaml"])
        .run();
    ran.code(0).stdout_has("asks first: Look?");
    assert!(
        !ran.exists("looked"),
        "the read ran during plan without its approval"
    );
}

#[test]
fn a_one_letter_secret_does_not_garble_output_but_is_masked_as_a_whole_value() {
    let ran = Flow::new()
        .playbook("flow: 1\nparams:\n  pw: { type: string, secret: true }\nsteps:\n  exec_step: { type: exec, with: { command: [echo, \"{{ params.pw }}\"] } }\noutputs:\n  said: \"{{ steps.exec_step.stdout }}\"\n")
        .args(&["apply", "playbook.yaml", "-p", "pw=x"])
        .run();
    ran.code(0).stdout_has("exec_step").stdout_has("said  ***");
}

#[test]
fn a_password_inside_a_url_param_is_kept_out_of_output_and_journal() {
    let ran = Flow::new()
        .playbook("flow: 1\nparams:\n  url: { type: string }\nsteps:\n  a: { type: log, with: { message: \"target {{ params.url }}\" } }\n")
        .args(&["apply", "playbook.yaml", "-p", "url=redis://:Sup3rS3cret@127.0.0.1:6379"])
        .run();
    ran.code(0).stdout_lacks("Sup3rS3cret");
    let run = std::fs::read_dir(ran.path(".flow/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for file in ["run.json", "events.jsonl"] {
        let text = std::fs::read_to_string(run.join(file)).unwrap();
        assert!(!text.contains("Sup3rS3cret"), "{file}: {text}");
    }
}

#[test]
fn rotating_an_env_key_to_a_secret_masks_the_old_value_too() {
    let ran = Flow::new()
        .file("app.env", "API_TOKEN=oldTokenValue42\nOTHER=1\n")
        .playbook("flow: 1\nparams:\n  token: { type: string, secret: true }\nsteps:\n  rotate:\n    type: envfile.set\n    with: { path: app.env, set: { API_TOKEN: \"{{ params.token }}\" } }\noutputs:\n  previous: \"{{ steps.rotate.previous }}\"\n")
        .args(&["--output", "json", "apply", "playbook.yaml", "-p", "token=newTokenValue77"])
        .run();
    ran.code(0)
        .stdout_lacks("oldTokenValue42")
        .stdout_lacks("newTokenValue77");
    assert!(ran.file("app.env").contains("API_TOKEN=newTokenValue77"));
}

#[test]
fn for_each_reports_elements_it_did_not_start_and_keeps_every_item() {
    let ran = Flow::new()
        .playbook("flow: 1\nsteps:\n  deploy:\n    type: exec\n    for_each: [ok1, bad, ok3]\n    with: { shell: \"test {{ item | quote }} != bad\" }\n")
        .args(&["--output", "json", "apply", "playbook.yaml"])
        .run();
    ran.code(1);
    let events = ran.events();
    let skipped = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["element"] == 2)
        .expect("element 2 is reported");
    assert_eq!(skipped["status"], "skipped");
    let step = events
        .iter()
        .find(|e| {
            e["event"] == "step_finished" && e["step"] == "deploy" && e.get("element").is_none()
        })
        .unwrap();
    let results = &step["outputs"];
    assert_eq!(step["status"], "failed", "{step}");
    assert!(
        results.is_null() || results["results"][2]["item"] == "ok3",
        "{step}"
    );
}

#[test]
fn for_each_with_continue_on_error_runs_every_element() {
    let ran = Flow::new()
        .playbook("flow: 1\nsteps:\n  deploy:\n    type: exec\n    continue_on_error: true\n    for_each: [ok1, bad, ok3]\n    with: { shell: \"test {{ item | quote }} != bad && touch {{ item | quote }}\" }\n  report:\n    type: log\n    with: { message: \"{{ steps.deploy.results | map(attribute='status') | join(',') }}\" }\n")
        .args(&["apply", "playbook.yaml"])
        .run();
    ran.code(0).stdout_has("succeeded,failed,succeeded");
    assert!(
        ran.exists("ok1") && ran.exists("ok3"),
        "every element must run"
    );
}

#[test]
fn a_warning_shows_in_the_summary() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  chk:\n    type: assert\n    with: { that: false, message: disk almost full, severity: warning }\n")
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("chk   succeeded (warning)")
        .stdout_has("disk almost full");
}

#[test]
fn every_validation_error_shows_in_one_round() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a:\n    type: exec\n    with: { comand: [ls] }\n    retry: { attempts: three }\n    timeout: 5 minutes\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("unknown field `with.comand`")
        .stderr_has("`retry.attempts` of step `a` must be a whole number")
        .stderr_has("`timeout` of step `a`");
}

#[test]
fn a_runtime_with_error_names_the_field() {
    Flow::new()
        .playbook("flow: 1\nsteps:\n  empty: { type: exec, effect: read, with: { command: [echo] } }\n  set:\n    type: envfile.set\n    with: { path: a.env, create: true, set: { EMPTY: \"{{ none }}\" } }\n")
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(1)
        .stdout_has("invalid `with.set.EMPTY`");
}

#[test]
fn duration_of_whole_seconds_is_an_integer() {
    Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  a: { type: log, with: { message: \"{{ '12h' | duration }}\" } }\n",
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("a: 43200\n");
}

#[test]
fn plan_offline_reaches_no_server() {
    // Nothing listens on port 9: any attempt to connect would be an error in the plan.
    Flow::new()
        .playbook("flow: 1\nsteps:\n  count: { type: redis.command, with: { url: \"redis://127.0.0.1:9\", command: [DBSIZE] } }\n  purge:\n    type: redis.delete\n    with: { url: \"redis://127.0.0.1:9\", pattern: \"session:*\" }\n")
        .args(&["plan", "playbook.yaml", "--offline"])
        .run()
        .code(0)
        .stdout_lacks("cannot")
        .stdout_has("not counted: --offline");
}

#[test]
fn ctrl_c_during_plan_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("playbook.yaml"), "flow: 1\nsteps:\n  slow: { type: exec, effect: read, with: { shell: \"touch started; sleep 20\" } }\n").unwrap();
    let mut child = std::process::Command::new(crate::common::flow_bin())
        .args(["plan", "playbook.yaml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = dir.path().join("started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !started.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(started.exists(), "the read never started");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "flow plan did not stop on SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
}

#[test]
fn reading_a_skipped_step_skips_the_reader_and_says_why() {
    Flow::new()
        .playbook("flow: 1\nparams:\n  do_b: { type: boolean, default: false }\nsteps:\n  b:\n    type: exec\n    when: params.do_b\n    with: { command: [echo, hi] }\n  c:\n    type: log\n    with: { message: \"{{ steps.b.stdout }}\" }\n")
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("  c     skipped  ")
        .stdout_has("needs `b`, which was skipped: when: params.do_b");
}

#[test]
fn json_output_of_runs_show_and_steps_is_json() {
    let ran = Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: log, with: { message: hi } }\n")
        .args(&["apply", "playbook.yaml"])
        .run();
    ran.code(0);
    let json = |args: &[&str]| -> serde_json::Value {
        let output = std::process::Command::new(crate::common::flow_bin())
            .args(args)
            .current_dir(ran.dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?} is not JSON: {e}"))
    };
    let runs = json(&["--output", "json", "runs"]);
    let id = runs[0]["run_id"].as_str().expect("a run id").to_string();
    assert_eq!(runs[0]["status"], "succeeded");
    let shown = json(&["--output", "json", "show", &id]);
    assert_eq!(shown["run"]["run_id"], id.as_str());
    assert!(shown["events"].as_array().is_some_and(|e| e.len() >= 4));
    let steps = json(&["--output", "json", "steps"]);
    assert!(
        steps
            .as_array()
            .is_some_and(|s| s.iter().any(|t| t["type"] == "redis.delete"))
    );
    assert_eq!(
        json(&["--output", "json", "steps", "exec"])["effect_overridable"],
        true
    );
}

#[test]
fn a_step_name_is_its_display_name_in_plan_lines_and_summary() {
    let playbook = "flow: 1\nsteps:\n  restart:\n    name: Restart containers\n    type: exec\n    with: { command: [echo, ok] }\n";
    Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("~ Restart containers [restart]  (exec)");
    let ran = Flow::new()
        .playbook(playbook)
        .args(&["apply", "playbook.yaml"])
        .run();
    ran.code(0)
        .stdout_has("✔ Restart containers ")
        .stdout_has("  Restart containers  succeeded");
    // Machines keep the id.
    Flow::new()
        .playbook(playbook)
        .args(&["--output", "json", "apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has(r#""step":"restart","name":"Restart containers""#);
}

#[test]
fn a_redis_command_the_plan_cannot_classify_says_why() {
    // Nothing listens on port 9: a command that is not a well-known read is shown as a write.
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: redis.command, with: { url: \"redis://127.0.0.1:9\", command: [FT.SEARCH, idx, x] } }\n")
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("shown as a write: could not ask the server whether it only reads (cannot connect to redis://127.0.0.1:9");
    // A well-known read is a read that failed.
    Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: redis.command, with: { url: \"redis://127.0.0.1:9\", command: [DBSIZE] } }\n")
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(1)
        .stdout_has("read failed: cannot connect to redis://127.0.0.1:9")
        .stdout_lacks("shown as a write");
}
