//! `password.generate`: a password made without `exec`, a secret from birth — in no channel
//! flow writes (terminal, JSON, journal, plan file, GitHub summary, `flow serve`); the plan
//! says it is generated at apply; and a resumed run makes the same one again, so what a
//! finished step wrote stays true (checked on the real server: Redis's `requirepass`).

use crate::common::Flow;
use crate::common::channels::Channels;
use crate::common::redis::{RedisServer, raw_command};
use crate::common::run::{flow, only_run, only_run_id, run_dirs, walk};

#[test]
fn a_generated_password_appears_in_no_channel() {
    let channels = Channels::of_except(
        r#"flow: 1
steps:
  pw:
    type: password.generate
    with: { length: 24, symbols: true }
  write:
    type: file.write
    with: { path: "out-{{ run.id }}.txt", content: "{{ steps.pw.value }}" }
  tell:
    type: log
    with: { message: "new password {{ steps.pw.value }} ({{ steps.pw.bits }} bits)" }
outputs:
  password: "{{ steps.pw.value }}"
"#,
        &[],
        &[],
        &["secret-key"],
    );
    let written: Vec<String> = std::fs::read_dir(channels.dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("out-"))
        })
        .map(|p| std::fs::read_to_string(p).expect("written"))
        .collect();
    // Three applies, three passwords, each of 24 characters from the classes asked for.
    assert_eq!(written.len(), 3, "{written:?}");
    for password in &written {
        assert_eq!(password.chars().count(), 24, "{password}");
        assert!(
            password.chars().any(|c| c.is_ascii_uppercase()),
            "{password}"
        );
        assert!(
            password.chars().any(|c| "!*+,-.=_~".contains(c)),
            "{password}"
        );
        channels.lack(password);
        // A piece of it is no safer.
        channels.lack(&password[..8]);
    }
    assert_ne!(written[0], written[1]);
    let plan = channels.channel("plan");
    assert!(
        plan.contains("24 characters of A-Z a-z 0-9 !*+,-.=_~ (generated at apply)"),
        "{plan}"
    );
    // What reads it is not known before apply.
    assert!(
        plan.contains("new password (known after apply: steps.pw.value)"),
        "{plan}"
    );
    let verbose = channels.channel("apply -v");
    assert!(verbose.contains("new password *** (147 bits)"), "{verbose}");
    // The key it comes from: one per run, readable by its owner only, in no event.
    use std::os::unix::fs::PermissionsExt as _;
    for run in run_dirs(&channels.path(".flow")) {
        let key = run.join("secret-key");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        let hex = std::fs::read_to_string(&key).expect("key");
        channels.lack(hex.trim());
    }
}

/// The run fails after the password was generated and written to a file; the resume
/// generates it again and sets it on Redis: the file and `requirepass` hold the same one.
#[test]
fn a_resumed_run_writes_the_same_generated_password() {
    let redis = RedisServer::start();
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  pw:
    type: password.generate
  save:
    type: file.write
    with: {{ path: saved.txt, content: "{{{{ steps.pw.value }}}}" }}
  gate:
    type: exec
    with: {{ command: [test, -e, go] }}
  rotate:
    type: redis.command
    with:
      url: "{url}"
      command: [CONFIG, SET, requirepass, "{{{{ steps.pw.value }}}}"]
"#,
            url = redis.url()
        ))
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    let saved = out.file("saved.txt");
    assert_eq!(saved.chars().count(), 32);
    std::fs::write(out.path("go"), "").expect("go");
    let state = out.path(".flow");
    let id = only_run_id(&state);
    let resumed = flow(out.dir.path(), &["apply", "--resume", &id, "-v"], &[]);
    resumed.code(0);
    assert!(resumed.stdout.contains("save"), "{}", resumed.context());
    assert!(!resumed.both().contains(&saved), "{}", resumed.context());
    // The file was kept from the first attempt; Redis got its password in the second.
    assert_eq!(out.file("saved.txt"), saved);
    let reply = raw_command(
        redis.port(),
        Some(&saved),
        &["CONFIG", "GET", "requirepass"],
    )
    .expect("redis");
    assert_eq!(reply.to_text(), format!("requirepass\n{saved}"));
    // And the password is nowhere in the state dir but as the key it came from.
    for file in walk(&state) {
        if file.file_name().is_some_and(|n| n == "secret-key") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        assert!(!text.contains(&saved), "{} holds it", file.display());
    }
}

/// A resume without the run's key (the folder copied without it) cannot make the same password
/// again: it refuses, naming the file, rather than making another one.
#[test]
fn a_resume_without_the_runs_key_refuses_rather_than_generate_another_password() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  pw:
    type: password.generate
  save:
    type: file.write
    with: { path: saved.txt, content: "{{ steps.pw.value }}" }
  gate:
    type: exec
    with: { command: [test, -e, go] }
  again:
    type: file.write
    with: { path: again.txt, content: "{{ steps.pw.value }}" }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    std::fs::write(out.path("go"), "").expect("go");
    let run = only_run(&out.path(".flow"));
    std::fs::remove_file(run.join("secret-key")).expect("remove the key");
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let resumed = flow(out.dir.path(), &["apply", "--resume", &id], &[]);
    resumed.code(1);
    assert!(
        resumed.both().contains("secret-key is missing"),
        "{}",
        resumed.context()
    );
    assert!(!out.exists("again.txt"));
}

#[test]
fn a_generators_alphabet_and_classes_are_checked_before_anything_runs() {
    Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  pw:\n    type: password.generate\n    with: { alphabet: \"abcdefa\" }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("`with.alphabet`: `a` is there more than once")
        .stderr_has("playbook.yaml:5:23");
    Flow::new()
        .playbook("flow: 1\nsteps:\n  pw:\n    type: password.generate\n    with: { length: 4 }\n")
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("must be at least 8");
    let plan = Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  pw:\n    type: password.generate\n    with: { upper: false, lower: false, digits: false }\n",
        )
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(1).stdout_has("no characters to use");
}
