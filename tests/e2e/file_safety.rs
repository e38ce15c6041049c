//! Edits of real files by `file.write` and `envfile.set` as an operator running `sudo flow
//! apply` sees them: owner, group and mode kept, symlinks followed, backups never lost,
//! concurrent edits serialized, newlines refused, temp files cleaned up, secrets masked,
//! line endings and inline comments kept.

use crate::common::Flow;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))
}

/// Applies `playbook.yaml` with `--yes --output json`, expects `code`, returns the events.
fn apply_json(flow: Flow, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    let out = flow
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(code);
    let events = out.events();
    (out, events)
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown (the tests run as root)");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// (uid, gid, permission bits) of a file, not following a symlink.
fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// Names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn backups(dir: &Path, of: &str) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(&format!("{of}.")) && n.ends_with(".bak"))
        .collect()
}

/// Files flow left beside the ones it edits (temp files of any naming).
fn leftovers(dir: &Path, expected: &[&str]) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n != ".flow" && !expected.contains(&n.as_str()) && !n.ends_with(".bak"))
        .collect()
}

// ---------------------------------------------------------------- 1. owner, group, mode

#[test]
fn envfile_set_keeps_owner_group_and_mode_of_the_file() {
    let flow = Flow::new().file("app.env", "A=1\nB=old\n").playbook(
        r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: new } } }
"#,
    );
    chown(&flow.path("app.env"), NOBODY, NOGROUP);
    chmod(&flow.path("app.env"), 0o640);
    let (out, _) = apply_json(flow, 0);
    assert_eq!(out.file("app.env"), "A=1\nB=new\n");
    assert_eq!(
        owner_and_mode(&out.path("app.env")),
        (NOBODY, NOGROUP, 0o640)
    );
}

#[test]
fn file_write_keeps_owner_group_and_mode_of_the_file() {
    let flow = Flow::new().file("app.conf", "old\n").playbook(
        r#"flow: 1
steps:
  write: { type: file.write, with: { path: app.conf, content: "new\n" } }
"#,
    );
    chown(&flow.path("app.conf"), NOBODY, NOGROUP);
    chmod(&flow.path("app.conf"), 0o640);
    let (out, _) = apply_json(flow, 0);
    assert_eq!(out.file("app.conf"), "new\n");
    assert_eq!(
        owner_and_mode(&out.path("app.conf")),
        (NOBODY, NOGROUP, 0o640)
    );
}

#[test]
fn file_write_mode_keeps_the_owner_and_sets_the_mode() {
    let flow = Flow::new().file("app.key", "old\n").playbook(
        r#"flow: 1
steps:
  write: { type: file.write, with: { path: app.key, content: "new\n", mode: "0600" } }
"#,
    );
    chown(&flow.path("app.key"), NOBODY, NOGROUP);
    chmod(&flow.path("app.key"), 0o644);
    let (out, _) = apply_json(flow, 0);
    assert_eq!(
        owner_and_mode(&out.path("app.key")),
        (NOBODY, NOGROUP, 0o600)
    );
}

/// Runs `flow` while another thread stats every file of the folder as fast as it can;
/// returns the widest permission bits seen on any file but `ignore`.
fn widest_mode_seen_during(flow: Flow, ignore: &[&str]) -> (crate::common::Outcome, u32) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let dir = flow.dir.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let widest = Arc::new(AtomicU32::new(0));
    let ignore: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
    let watcher = {
        let (stop, widest) = (stop.clone(), widest.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.filter_map(|e| e.ok()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if ignore.contains(&name) || name == ".flow" {
                        continue;
                    }
                    if let Ok(meta) = std::fs::symlink_metadata(entry.path())
                        && meta.len() > 0
                    {
                        widest.fetch_or(meta.mode() & 0o777, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let out = flow
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    (out, widest.load(Ordering::Relaxed))
}

#[test]
fn file_write_mode_is_on_the_file_before_it_has_content() {
    let big = "secret line\n".repeat(400_000);
    let flow = Flow::new().file("big.txt", &big).playbook(
        r#"flow: 1
steps:
  write: { type: file.write, with: { path: key.pem, content: "{{ read_file('big.txt') }}", mode: "0600" } }
"#,
    );
    let (out, widest) = widest_mode_seen_during(flow, &["playbook.yaml", "big.txt"]);
    out.code(0);
    assert_eq!(out.file("key.pem").len(), big.len());
    assert_eq!(
        widest, 0o600,
        "a file holding the content was {widest:o} at some point"
    );
}

#[test]
fn envfile_set_never_shows_a_private_file_with_wider_permissions() {
    let big: String = (0..600_000).map(|i| format!("K{i}=secret{i}\n")).collect();
    let flow = Flow::new().file("secrets.env", &big).playbook(
        r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: secrets.env, set: { K1: changed } } }
"#,
    );
    chmod(&flow.path("secrets.env"), 0o600);
    let (out, widest) = widest_mode_seen_during(flow, &["playbook.yaml"]);
    out.code(0);
    assert!(out.file("secrets.env").contains("\nK1=changed\n"));
    assert_eq!(
        widest, 0o600,
        "a copy of the secrets was {widest:o} at some point"
    );
}

// ---------------------------------------------------------------- 2. symlinks

#[test]
fn envfile_set_through_a_symlink_edits_the_target_and_keeps_the_link() {
    let flow = Flow::new()
        .file("real/app.env", "A=1\nB=old\n")
        .file("conf/.keep", "")
        .playbook(
            r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: conf/app.env, set: { B: new }, backup: true } }
"#,
        );
    std::os::unix::fs::symlink("../real/app.env", flow.path("conf/app.env")).expect("symlink");
    let (out, events) = apply_json(flow, 0);
    let link = std::fs::symlink_metadata(out.path("conf/app.env")).expect("link");
    assert!(
        link.file_type().is_symlink(),
        "the link became a plain file"
    );
    assert_eq!(out.file("real/app.env"), "A=1\nB=new\n");
    // The backup sits beside the real file and holds the old content.
    let backups = backups(&out.path("real"), "app.env");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(out.file(&format!("real/{}", backups[0])), "A=1\nB=old\n");
    let reported = finished(&events, "point")["outputs"]["backup_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reported.ends_with(&format!("real/{}", backups[0])),
        "{reported}"
    );
    assert_eq!(names(&out.path("conf")), [".keep", "app.env"]);
}

#[test]
fn file_write_through_a_symlink_edits_the_target_and_keeps_the_link() {
    let flow = Flow::new().file("real/app.conf", "old\n").playbook(
        r#"flow: 1
steps:
  write: { type: file.write, with: { path: app.conf, content: "new\n" } }
"#,
    );
    chown(&flow.path("real/app.conf"), NOBODY, NOGROUP);
    chmod(&flow.path("real/app.conf"), 0o640);
    std::os::unix::fs::symlink(flow.path("real/app.conf"), flow.path("app.conf")).expect("link");
    let (out, _) = apply_json(flow, 0);
    assert!(
        std::fs::symlink_metadata(out.path("app.conf"))
            .expect("link")
            .file_type()
            .is_symlink(),
        "the link became a plain file"
    );
    assert_eq!(out.file("real/app.conf"), "new\n");
    assert_eq!(
        owner_and_mode(&out.path("real/app.conf")),
        (NOBODY, NOGROUP, 0o640)
    );
}

// ---------------------------------------------------------------- 3. backups

#[test]
fn two_backups_in_the_same_second_are_both_kept() {
    let (out, events) = apply_json(
        Flow::new().file("app.env", "B=zero\n").playbook(
            r#"flow: 1
steps:
  one: { type: envfile.set, with: { path: app.env, set: { B: one }, backup: true } }
  two: { type: envfile.set, with: { path: app.env, set: { B: two }, backup: true } }
"#,
        ),
        0,
    );
    let first = finished(&events, "one")["outputs"]["backup_path"]
        .as_str()
        .expect("a backup")
        .to_string();
    let second = finished(&events, "two")["outputs"]["backup_path"]
        .as_str()
        .expect("a backup")
        .to_string();
    assert_ne!(first, second);
    assert_eq!(crate::common::read(&out.path(&first)), "B=zero\n");
    assert_eq!(crate::common::read(&out.path(&second)), "B=one\n");
    assert_eq!(backups(out.dir.path(), "app.env").len(), 2);
    assert_eq!(out.file("app.env"), "B=two\n");
}

#[test]
fn a_backup_never_overwrites_an_existing_file() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut flow = Flow::new().file("app.env", "B=old\n").playbook(
        r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: new }, backup: true } }
"#,
    );
    // Whatever second the edit happens in, its first choice of name is taken.
    let taken: Vec<String> = (now..now + 30)
        .map(|t| format!("app.env.{t}.bak"))
        .collect();
    for name in &taken {
        flow = flow.file(name, "precious\n");
    }
    let (out, events) = apply_json(flow, 0);
    for name in &taken {
        assert_eq!(out.file(name), "precious\n", "{name} was overwritten");
    }
    let made = finished(&events, "point")["outputs"]["backup_path"]
        .as_str()
        .expect("a backup")
        .to_string();
    assert!(made.ends_with(".1.bak"), "{made}");
    assert_eq!(crate::common::read(&out.path(&made)), "B=old\n");
}

#[test]
fn backups_keep_the_owner_and_mode_of_the_original() {
    let flow = Flow::new().file("app.env", "B=old\n").playbook(
        r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: new }, backup: true } }
"#,
    );
    chown(&flow.path("app.env"), NOBODY, NOGROUP);
    chmod(&flow.path("app.env"), 0o640);
    let (out, _) = apply_json(flow, 0);
    let backups = backups(out.dir.path(), "app.env");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        owner_and_mode(&out.path(&backups[0])),
        (NOBODY, NOGROUP, 0o640)
    );
}

// ---------------------------------------------------------------- 4. concurrent edits

#[test]
fn eight_parallel_envfile_set_steps_on_one_file_all_land() {
    let mut yaml = String::from("flow: 1\nsteps:\n");
    for i in 1..=8 {
        yaml.push_str(&format!(
            "  s{i}: {{ type: envfile.set, needs: [], with: {{ path: app.env, set: {{ K{i}: v{i} }}, backup: true }} }}\n"
        ));
    }
    let (out, events) = apply_json(Flow::new().file("app.env", "A=1\n").playbook(&yaml), 0);
    let text = out.file("app.env");
    for i in 1..=8 {
        assert_eq!(finished(&events, &format!("s{i}"))["status"], "succeeded");
        assert!(
            text.contains(&format!("\nK{i}=v{i}\n")),
            "K{i} lost:\n{text}"
        );
    }
    assert_eq!(text.lines().count(), 9, "{text}");
    assert_eq!(backups(out.dir.path(), "app.env").len(), 8);
    assert_eq!(
        leftovers(out.dir.path(), &["app.env", "playbook.yaml"]),
        Vec::<String>::new()
    );
}

#[test]
fn two_flow_processes_editing_one_file_lose_no_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("app.env"), "A=1\n").expect("env file");
    for p in ["p", "q"] {
        let mut yaml = String::from("flow: 1\nsteps:\n");
        for i in 0..25 {
            yaml.push_str(&format!(
                "  s{i}: {{ type: envfile.set, with: {{ path: app.env, set: {{ {p}{i}: x }} }} }}\n"
            ));
        }
        std::fs::write(dir.path().join(format!("{p}.yaml")), yaml).expect("playbook");
    }
    let spawn = |p: &str| {
        std::process::Command::new(crate::common::flow_bin())
            .args(["apply", &format!("{p}.yaml"), "--yes"])
            .current_dir(dir.path())
            .env_remove("FLOW_STATE_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn flow")
    };
    let (p, q) = (spawn("p"), spawn("q"));
    for child in [p, q] {
        let out = child.wait_with_output().expect("flow");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(dir.path().join("app.env")).expect("env file");
    for p in ["p", "q"] {
        for i in 0..25 {
            assert!(
                text.contains(&format!("\n{p}{i}=x\n")),
                "{p}{i} lost:\n{text}"
            );
        }
    }
}

// ---------------------------------------------------------------- 5. newlines

#[test]
fn envfile_set_rejects_a_value_with_a_newline_naming_the_key() {
    for evil in ["evil\nINJECTED=1", "evil\rINJECTED=1"] {
        let out = Flow::new()
            .file("app.env", "HOST=old\n")
            .playbook(
                r#"flow: 1
params:
  host: { type: string }
steps:
  point: { type: envfile.set, with: { path: app.env, set: { HOST: "{{ params.host }}" } } }
"#,
            )
            .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
            .args(&["-p", &format!("host={evil}")])
            .run();
        out.code(1);
        let events = out.events();
        let error = finished(&events, "point")["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains("HOST"), "{error}");
        assert!(error.contains("line break"), "{error}");
        assert_eq!(out.file("app.env"), "HOST=old\n");
    }
}

#[test]
fn plan_never_prints_a_raw_newline_from_a_value() {
    let out = Flow::new()
        .file("app.env", "HOST=old\n")
        .playbook(
            r#"flow: 1
params:
  host: { type: string }
steps:
  point: { type: envfile.set, with: { path: app.env, set: { HOST: "{{ params.host }}", NEW: "{{ params.host }}" } } }
"#,
        )
        .args(&["plan", "playbook.yaml", "-p", "host=evil\nINJECTED=1\rRET=2"])
        .run();
    out.code(0);
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        assert!(
            !line.trim_start().starts_with("INJECTED") && !line.contains('\r'),
            "a raw line break from the value reached the plan: {line:?}\n{}",
            out.stdout
        );
    }
    out.stdout_has("HOST")
        .stdout_has("evil\\nINJECTED=1\\rRET=2");
}

// ---------------------------------------------------------------- 6. temp files

/// Runs `flow apply playbook.yaml --yes` with files limited to `limit_kb` (and SIGXFSZ
/// ignored, so a too-large write fails with EFBIG like a full disk does).
fn apply_with_file_size_limit(flow: Flow, limit_kb: u32) -> crate::common::Outcome {
    let state = tempfile::tempdir().expect("state dir");
    let script = format!(
        "trap '' XFSZ; ulimit -f {limit_kb}; exec '{}' apply playbook.yaml --yes --state-dir '{}'",
        crate::common::flow_bin(),
        state.path().display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(flow.dir.path())
        .env_remove("FLOW_STATE_DIR")
        .output()
        .expect("bash");
    crate::common::Outcome {
        ran: crate::common::Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        dir: flow.dir,
    }
}

#[test]
fn a_failed_file_write_leaves_no_temp_file() {
    let big = "x".repeat(300_000);
    let flow = Flow::new()
        .file("big.txt", &big)
        .file("out.txt", "old\n")
        .playbook(
            r#"flow: 1
steps:
  write: { type: file.write, with: { path: out.txt, content: "{{ read_file('big.txt') }}" } }
"#,
        );
    let out = apply_with_file_size_limit(flow, 128);
    out.code(1);
    assert_eq!(out.file("out.txt"), "old\n");
    assert_eq!(
        leftovers(out.dir.path(), &["big.txt", "out.txt", "playbook.yaml"]),
        Vec::<String>::new()
    );
}

#[test]
fn a_failed_envfile_edit_leaves_no_temp_file_and_no_partial_backup() {
    let big: String = (0..20_000).map(|i| format!("K{i}=value{i}\n")).collect();
    let flow = Flow::new().file("app.env", &big).playbook(
        r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { K1: changed }, backup: true } }
"#,
    );
    let out = apply_with_file_size_limit(flow, 128);
    out.code(1);
    assert_eq!(out.file("app.env"), big);
    assert_eq!(names(out.dir.path()), ["app.env", "playbook.yaml"]);
}

// ---------------------------------------------------------------- 7. secrets in previous

#[test]
fn envfile_set_masks_previous_values_of_keys_named_like_secrets() {
    let before = "DB_PASSWORD=hunter2-old\napi_token=tok-old-123\nSecretSauce=ketchup-old\nSSH_KEY=key-old-456\nHOST=old-host\n";
    let playbook = r#"flow: 1
steps:
  rotate:
    type: envfile.set
    with:
      path: app.env
      set: { DB_PASSWORD: fresh, HOST: new-host }
      unset: [api_token, SecretSauce, SSH_KEY]
"#;
    let olds = ["hunter2-old", "tok-old-123", "ketchup-old", "key-old-456"];
    let (out, events) = apply_json(Flow::new().file("app.env", before).playbook(playbook), 0);
    let previous = &finished(&events, "rotate")["outputs"]["previous"];
    assert_eq!(previous["DB_PASSWORD"], "***");
    assert_eq!(previous["api_token"], "***");
    assert_eq!(previous["SecretSauce"], "***");
    assert_eq!(previous["SSH_KEY"], "***");
    assert_eq!(previous["HOST"], "old-host");
    for old in olds {
        out.stdout_lacks(old).stderr_lacks(old);
    }
    // The journal and `flow show` of it: nothing of the old secrets either.
    let runs = names(&out.path(".flow/runs"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    let journal = crate::common::read(&out.path(&format!(".flow/runs/{}/events.jsonl", runs[0])));
    assert!(journal.contains("old-host"), "{journal}");
    let show = std::process::Command::new(crate::common::flow_bin())
        .args(["show", &runs[0]])
        .current_dir(out.dir.path())
        .env_remove("FLOW_STATE_DIR")
        .output()
        .expect("flow show");
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(show.contains("rotate"), "{show}");
    for old in olds {
        assert!(!journal.contains(old), "{old} in the journal");
        assert!(!show.contains(old), "{old} in flow show:\n{show}");
    }
    let plan = Flow::new()
        .file("app.env", before)
        .playbook(playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0);
    for old in olds {
        plan.stdout_lacks(old).stderr_lacks(old);
    }
    plan.stdout_has("old-host");
}

// ---------------------------------------------------------------- 8. line endings, comments

#[test]
fn crlf_env_file_stays_crlf_after_an_edit() {
    let (out, _) = apply_json(
        Flow::new()
            .file("app.env", "# settings\r\nA=1\r\nB=old\r\n")
            .playbook(
                r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { B: new, C: added } } }
"#,
            ),
        0,
    );
    assert_eq!(
        out.file("app.env"),
        "# settings\r\nA=1\r\nB=new\r\nC=added\r\n"
    );
}

#[test]
fn inline_comment_after_a_rewritten_value_is_kept() {
    let (out, events) = apply_json(
        Flow::new()
            .file(
                "app.env",
                "HOST=old # the primary\nPORT=\"1\"\t# quoted\nURL=a#b\n",
            )
            .playbook(
                r#"flow: 1
steps:
  point: { type: envfile.set, with: { path: app.env, set: { HOST: new, PORT: "2", URL: c#d } } }
"#,
            ),
        0,
    );
    assert_eq!(
        out.file("app.env"),
        "HOST=new # the primary\nPORT=2\t# quoted\nURL=\"c#d\"\n"
    );
    let previous = &finished(&events, "point")["outputs"]["previous"];
    assert_eq!(previous["HOST"], "old");
    assert_eq!(previous["PORT"], "1");
    assert_eq!(previous["URL"], "a#b");
}

// ---------------------------------------------------------------- 9. not a regular file

/// Runs `flow args…` in `dir`, killing it after `seconds`: a hang is a failure, not a hung
/// test suite.
fn run_with_deadline(dir: &Path, args: &[&str], seconds: u64) -> (i32, String) {
    crate::common::run::flow_within(dir, args, &[], seconds)
}

#[test]
fn a_fifo_or_device_is_never_replaced_nor_read_forever() {
    use std::os::unix::fs::FileTypeExt;
    let flow = Flow::new().playbook(
        r#"flow: 1
steps:
  write: { type: file.write, with: { path: link, content: "x\n" } }
  edit: { type: envfile.set, needs: [], with: { path: pipe, set: { A: "1" } } }
"#,
    );
    let status = std::process::Command::new("mkfifo")
        .arg(flow.path("pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    // Through a symlink too: the link is followed to the FIFO, which stays a FIFO.
    std::os::unix::fs::symlink("pipe", flow.path("link")).expect("symlink");
    let dir = flow.dir.path();
    let (code, plan) = run_with_deadline(dir, &["plan", "playbook.yaml"], 30);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("will fail"), "{plan}");
    let (code, apply) = run_with_deadline(dir, &["apply", "playbook.yaml", "--yes"], 30);
    assert_eq!(code, 1, "{apply}");
    assert!(apply.contains("is a FIFO, not a regular file"), "{apply}");
    let meta = std::fs::symlink_metadata(flow.path("pipe")).expect("pipe");
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
    assert!(
        std::fs::symlink_metadata(flow.path("link"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
}

/// A `kill -9` in the middle of an edit leaves a half-written temp file (perhaps of a secrets
/// file) that no code of the killed flow can remove: the next edit of that file, holding the
/// folder's lock, removes it.
#[test]
fn a_temp_file_left_by_a_killed_flow_is_removed_by_the_next_edit() {
    let flow = Flow::new()
        .file("app.env", "A=1\n")
        .file(".app.env.flow-0123456789abcdef.tmp", "DB_PASSWORD=half-writ")
        .file(".other.env.flow-0123456789abcdef.tmp", "not ours to touch")
        .playbook(
            "flow: 1\nsteps:\n  edit:\n    type: envfile.set\n    with: { path: app.env, set: { B: \"2\" } }\n",
        );
    let (out, _) = apply_json(flow, 0);
    assert_eq!(out.file("app.env"), "A=1\nB=2\n");
    assert!(!out.exists(".app.env.flow-0123456789abcdef.tmp"));
    assert!(out.exists(".other.env.flow-0123456789abcdef.tmp"));
}
