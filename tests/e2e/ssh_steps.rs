//! The SSH step types as a user sees them, against a real `sshd` on 127.0.0.1: commands with
//! their quoting, sudo, env, cwd and stdin; one connection per host shared by the steps of a
//! run and closed when it ends; host keys checked; waits; clear failures within timeouts.

use crate::common::Flow;
use crate::common::sshd::Sshd;
use serde_json::Value;

pub(crate) fn outputs<'a>(events: &'a [Value], step: &str) -> &'a Value {
    &events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))["outputs"]
}

/// `defaults.ssh` points every step at the test server under `alias`.
pub(crate) fn playbook(server: &Sshd, steps: &str) -> String {
    format!(
        "flow: 1\ndefaults:\n  ssh: {}\nsteps:\n{steps}",
        server.block("flowtest")
    )
}

pub(crate) fn apply_json(text: &str, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    let out = Flow::new()
        .playbook(text)
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(code);
    let events = out.events();
    (out, events)
}

#[test]
fn ssh_exec_quotes_each_argument_for_the_remote_shell() {
    let server = Sshd::start();
    let (_, events) = apply_json(
        &playbook(
            &server,
            "  echo:\n    type: ssh.exec\n    with: { command: [printf, \"%s|\", \"a b\", \"$HOME\", \"*\", \"it's\", \"a;b\"] }\n",
        ),
        0,
    );
    assert_eq!(outputs(&events, "echo")["stdout"], "a b|$HOME|*|it's|a;b|");
}

#[test]
fn ssh_exec_runs_a_shell_script_with_env_cwd_and_stdin() {
    let server = Sshd::start();
    let (_, events) = apply_json(
        &playbook(
            &server,
            "  script:\n    type: ssh.exec\n    with:\n      shell: \"read line; echo \\\"$GREETING $line from $(pwd)\\\" | tr a-z A-Z\"\n      env: { GREETING: hello }\n      cwd: /tmp\n      stdin: \"world\\n\"\n      parse: lines\n",
        ),
        0,
    );
    assert_eq!(
        outputs(&events, "script")["lines"],
        serde_json::json!(["HELLO WORLD FROM /TMP"])
    );
}

#[test]
fn ssh_exec_failure_names_the_exit_code_the_stderr_and_the_host() {
    let server = Sshd::start();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  broken:\n    type: ssh.exec\n    with: { shell: \"echo disk full >&2; exit 3\" }\n",
        ),
        1,
    );
    out.stdout_has("exited with 3 (expected 0): disk full (on flowtest)");
}

#[test]
fn ssh_exec_with_sudo_runs_as_root_without_a_password_prompt() {
    let server = Sshd::start();
    let (_, events) = apply_json(
        &playbook(
            &server,
            "  who:\n    type: ssh.exec\n    with: { command: [id, -un], sudo: true }\n",
        ),
        0,
    );
    assert_eq!(outputs(&events, "who")["stdout"], "root");
}

/// `SSH_CONNECTION` names the client's port: the same port is the same connection.
#[test]
fn the_steps_of_a_run_share_one_connection_per_host_closed_when_the_run_ends() {
    let server = Sshd::start();
    let step = |id: &str| {
        format!("  {id}:\n    type: ssh.exec\n    with: {{ shell: \"echo $SSH_CONNECTION\" }}\n")
    };
    let (_, events) = apply_json(
        &playbook(&server, &[step("a"), step("b"), step("c")].concat()),
        0,
    );
    let ports: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            outputs(&events, s)["stdout"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(!ports[0].is_empty());
    assert!(ports.iter().all(|p| p == &ports[0]), "{ports:?}");
    assert_eq!(
        server.client_processes(),
        0,
        "an ssh process outlived the run"
    );
}

#[test]
fn ten_hosts_in_a_for_each_each_get_their_own_connection() {
    let server = Sshd::start();
    let hosts: Vec<String> = (0..10).map(|i| format!("web{i}")).collect();
    server.write_config(&hosts.iter().map(String::as_str).collect::<Vec<_>>());
    let text = format!(
        "flow: 1\nparams:\n  hosts: {{ type: list, default: [{}] }}\ndefaults:\n  ssh: {{ config: \"{}\", connect_timeout: 5s }}\nsteps:\n  first:\n    type: ssh.exec\n    for_each: params.hosts\n    concurrency: 5\n    with: {{ host: \"{{{{ item }}}}\", shell: \"echo $SSH_CONNECTION\" }}\n  again:\n    type: ssh.exec\n    for_each: params.hosts\n    concurrency: 5\n    with: {{ host: \"{{{{ item }}}}\", shell: \"echo $SSH_CONNECTION\" }}\n",
        hosts.join(", "),
        server.config().display()
    );
    let (_, events) = apply_json(&text, 0);
    let connections = |step: &str| -> Vec<String> {
        outputs(&events, step)["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["stdout"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let first = connections("first");
    assert_eq!(
        first,
        connections("again"),
        "a host's second command used a new connection"
    );
    let distinct: std::collections::BTreeSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), 10, "{first:?}");
}

#[test]
fn a_host_key_that_does_not_match_is_refused_before_any_command_runs() {
    let server = Sshd::start();
    // Another key in known_hosts for this server.
    let other = tempfile::tempdir().expect("temp dir");
    let key = other.path().join("k");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    std::fs::write(
        server.known_hosts(),
        format!("[127.0.0.1]:{} {}\n", server.port(), public.join(" ")),
    )
    .expect("write known_hosts");
    let marker = other.path().join("ran");
    let (out, _) = apply_json(
        &playbook(
            &server,
            &format!(
                "  touch:\n    type: ssh.exec\n    with: {{ command: [touch, \"{}\"] }}\n",
                marker.display()
            ),
        ),
        1,
    );
    out.stdout_has(&format!(
        "cannot connect to flowtest: the host key does not match known_hosts ({}:1)",
        server.known_hosts().display()
    ));
    assert!(
        !marker.exists(),
        "the command ran despite the wrong host key"
    );
}

#[test]
fn accept_new_records_the_key_of_a_host_not_yet_known() {
    let server = Sshd::start();
    std::fs::write(server.known_hosts(), "").expect("empty known_hosts");
    let strict = playbook(
        &server,
        "  hi:\n    type: ssh.exec\n    with: { command: [\"true\"] }\n",
    );
    apply_json(&strict, 1)
        .0
        .stdout_has("the host key is not in known_hosts, and host_key_check is strict");
    let accept_new = playbook(
        &server,
        "  hi:\n    type: ssh.exec\n    with: { command: [\"true\"], host_key_check: accept-new }\n",
    );
    apply_json(&accept_new, 0);
    let known = std::fs::read_to_string(server.known_hosts()).expect("known_hosts");
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", server.port())),
        "{known}"
    );
}

#[test]
fn an_unreachable_host_fails_within_its_connect_timeout() {
    let port = crate::common::redis::free_port();
    let started = std::time::Instant::now();
    let (out, _) = apply_json(
        &format!(
            "flow: 1\nsteps:\n  hi:\n    type: ssh.exec\n    with: {{ host: 127.0.0.1, port: {port}, connect_timeout: 2s, command: [\"true\"] }}\n"
        ),
        1,
    );
    out.stdout_has(&format!(
        "cannot connect to 127.0.0.1:{port}: connection refused"
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn ssh_wait_waits_until_the_server_answers() {
    let mut server = Sshd::prepare();
    let text = playbook(
        &server,
        "  up:\n    type: ssh.wait\n    with: { timeout: 30s, interval: 200ms }\n",
    );
    let starter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        server.spawn();
        server
    });
    let (_, events) = apply_json(&text, 0);
    let _server = starter.join().expect("sshd started");
    let waited = outputs(&events, "up")["waited"].as_f64().expect("waited");
    assert!(waited >= 1.0, "waited only {waited}s");
}

#[test]
fn a_killed_connection_is_reopened_once() {
    let server = Sshd::start();
    let text = playbook(
        &server,
        &format!(
            "  before:\n    type: ssh.exec\n    with: {{ command: [\"true\"] }}\n  kill_master:\n    type: exec\n    with: {{ command: [pkill, -f, \"ssh .*-M.*{}\"] }}\n  after:\n    type: ssh.exec\n    with: {{ command: [echo, reopened] }}\n",
            server.config().display()
        ),
    );
    let (_, events) = apply_json(&text, 0);
    assert_eq!(outputs(&events, "after")["stdout"], "reopened");
}

#[test]
fn a_tree_goes_up_and_comes_back_the_same_over_one_connection() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote dir");
    let remote_dest = remote.path().join("deep/helpers");
    let flow = Flow::new()
        .file("scripts/restore.sh", "#!/bin/sh\necho restoring\n")
        .file("scripts/lib/common.sh", "x=1\n")
        .file("scripts/empty.txt", "")
        .playbook(&playbook(
            &server,
            &format!(
                "  up:\n    type: ssh.upload\n    with: {{ src: scripts, dest: \"{dest}\", mode: \"0750\" }}\n  run:\n    type: ssh.exec\n    with: {{ command: [\"{dest}/restore.sh\"] }}\n  down:\n    type: ssh.download\n    with: {{ src: \"{dest}\", dest: back }}\n",
                dest = remote_dest.display()
            ),
        ));
    let plan = Flow::new()
        .file("scripts/restore.sh", "#!/bin/sh\necho restoring\n")
        .file("scripts/lib/common.sh", "x=1\n")
        .file("scripts/empty.txt", "")
        .playbook(&playbook(
            &server,
            &format!(
                "  up:\n    type: ssh.upload\n    with: {{ src: scripts, dest: \"{}\" }}\n",
                remote_dest.display()
            ),
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("upload 3 file(s) to flowtest:")
        .stdout_has("scripts/lib/common.sh →");
    assert!(!remote_dest.exists(), "the plan copied something");
    let (out, events) = apply_json_in(flow, 0);
    assert_eq!(outputs(&events, "up")["bytes"], 29);
    assert_eq!(outputs(&events, "run")["stdout"], "restoring");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(remote_dest.join("restore.sh"))
            .expect("uploaded")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o750);
    assert_eq!(out.file("back/restore.sh"), "#!/bin/sh\necho restoring\n");
    assert_eq!(out.file("back/lib/common.sh"), "x=1\n");
    assert_eq!(out.file("back/empty.txt"), "");
    assert_eq!(
        outputs(&events, "down")["files"].as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn downloading_what_is_not_there_names_the_host_and_path() {
    let server = Sshd::start();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  down:\n    type: ssh.download\n    with: { src: /nonexistent/dump.rdb, dest: dump.rdb }\n",
        ),
        1,
    );
    out.stdout_has("cannot read flowtest:/nonexistent/dump.rdb: no such file or folder");
}

pub(crate) fn apply_json_in(flow: Flow, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    let out = flow
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(code);
    let events = out.events();
    (out, events)
}

/// The headline SSH edit: `/etc/blot/secrets.env` on the main host, owned by the app, with
/// comments — changed over SSH, owner, mode and comments kept, the plan showing the lines.
#[test]
fn envfile_set_over_ssh_keeps_owner_mode_and_comments_and_the_plan_shows_the_lines() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote dir");
    let env = remote.path().join("secrets.env");
    std::fs::write(
        &env,
        "# Redis of the app\nBLOT_REDIS_HOST=old.internal # primary\nOTHER=1\n",
    )
    .expect("write env");
    std::os::unix::fs::chown(&env, Some(65534), Some(65534)).expect("chown");
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let text = playbook(
        &server,
        &format!(
            "  point:\n    type: envfile.set\n    with:\n      ssh: {{ host: flowtest }}\n      sudo: true\n      path: \"{}\"\n      set: {{ BLOT_REDIS_HOST: new.internal }}\n      backup: true\n",
            env.display()
        ),
    );
    let plan = Flow::new()
        .playbook(&text)
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("edit flowtest:")
        .stdout_has("BLOT_REDIS_HOST: old.internal → new.internal");
    assert!(
        std::fs::read_to_string(&env)
            .expect("env")
            .contains("old.internal")
    );
    let (_, events) = apply_json(&text, 0);
    assert_eq!(outputs(&events, "point")["changed"], true);
    assert_eq!(
        std::fs::read_to_string(&env).expect("env"),
        "# Redis of the app\nBLOT_REDIS_HOST=new.internal # primary\nOTHER=1\n"
    );
    let meta = std::fs::metadata(&env).expect("meta");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o640)
    );
    let backup = outputs(&events, "point")["backup_path"]
        .as_str()
        .expect("backup")
        .to_string();
    assert!(
        std::fs::read_to_string(&backup)
            .expect("backup")
            .contains("old.internal")
    );
}

#[test]
fn an_unknown_alias_and_a_refused_key_each_get_a_clear_error() {
    let server = Sshd::start();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  hi:\n    type: ssh.exec\n    with: { host: no-such-alias.invalid, command: [\"true\"] }\n",
        ),
        1,
    );
    out.stdout_has("cannot connect to no-such-alias.invalid: unknown host");
    // A key the server does not know: the message names it and says no password is tried.
    let other = tempfile::tempdir().expect("temp dir");
    let key = other.path().join("stranger");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    let (out, _) = apply_json(
        &format!(
            "flow: 1\nsteps:\n  hi:\n    type: ssh.exec\n    with: {{ host: 127.0.0.1, port: {}, key: \"{}\", known_hosts: \"{}\", connect_timeout: 5s, command: [\"true\"] }}\n",
            server.port(),
            key.display(),
            server.known_hosts().display()
        ),
        1,
    );
    out.stdout_has("authentication failed")
        .stdout_has(&format!("key {}", key.display()));
}

/// A step's `timeout` ends the command on the host too, not only the wait for it.
#[test]
fn a_timeout_ends_the_remote_command() {
    let server = Sshd::start();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  slow:\n    type: ssh.exec\n    timeout: 1s\n    with: { command: [sleep, \"37.125\"] }\n",
        ),
        1,
    );
    out.stdout_has("timed out after 1");
    let running = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == "sleep 37.125")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!running(), "the remote command outlived its timeout");
}

/// Seed 000's comparison: the restored Redis is reachable only from its own host, so each
/// side goes through an SSH tunnel — here both to servers that listen on 127.0.0.1 of the
/// "host", reached through the test sshd.
#[test]
fn redis_through_ssh_tunnels_on_both_sides_of_a_compare() {
    let server = Sshd::start();
    let left = crate::common::redis::RedisServer::start();
    let right = crate::common::redis::RedisServer::start();
    left.cli(&["SET", "k", "v"]);
    right.cli(&["SET", "k", "v"]);
    let text = format!(
        "flow: 1\ndefaults:\n  ssh: {}\n  redis: {{ tunnel: {{ host: flowtest }} }}\nsteps:\n  ping:\n    type: redis.command\n    with: {{ url: \"{}\", command: [PING] }}\n  who:\n    type: exec\n    with: {{ shell: \"ss -tnpH state established '( dport = :{} )'\" }}\n  cmp:\n    type: redis.compare\n    with:\n      left: {{ url: \"{}\" }}\n      right: {{ url: \"{}\" }}\n",
        server.block("flowtest"),
        left.url(),
        left.port(),
        left.url(),
        right.url()
    );
    let (_, events) = apply_json(&text, 0);
    assert_eq!(outputs(&events, "ping")["reply"], "PONG");
    assert_eq!(outputs(&events, "cmp")["equal"], true);
    // While the run went on, the connection to Redis was sshd's (the forward), not flow's.
    let connected = outputs(&events, "who")["stdout"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(connected.contains("sshd"), "{connected}");
    assert!(!connected.contains("\"flow\""), "{connected}");
    // The connections came through sshd, not straight from flow: Redis saw them from the
    // forward, and none is left after the run.
    let clients = left.cli(&["CLIENT", "LIST"]);
    assert_eq!(clients.lines().count(), 1, "{clients}");
}

/// A host that accepts the connection and then says nothing (a hung sshd, a firewall that
/// swallows packets) fails within its `connect_timeout`, never hangs the run.
#[test]
fn a_silent_host_fails_within_its_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _silent = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4).flatten() {
            held.push(stream); // accepted, never answered
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let started = std::time::Instant::now();
    let (out, _) = apply_json(
        &format!(
            "flow: 1\nsteps:\n  hi:\n    type: ssh.exec\n    with: {{ host: 127.0.0.1, port: {port}, connect_timeout: 2s, command: [\"true\"] }}\n"
        ),
        1,
    );
    out.stdout_has(&format!("cannot connect to 127.0.0.1:{port}"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// An upload over a file keeps that file's owner and mode; a new file gets the host's umask;
/// a destination that is a folder receives the file inside it.
#[test]
fn an_upload_keeps_the_replaced_files_owner_and_mode_and_fills_a_folder() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let existing = remote.path().join("app.conf");
    std::fs::write(&existing, "old\n").expect("write");
    std::os::unix::fs::chown(&existing, Some(65534), Some(65534)).expect("chown");
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let folder = remote.path().join("drop");
    std::fs::create_dir(&folder).expect("mkdir");
    let text = playbook(
        &server,
        &format!(
            "  over:\n    type: ssh.upload\n    with: {{ src: app.conf, dest: \"{}\" }}\n  fresh:\n    type: ssh.upload\n    with: {{ src: app.conf, dest: \"{}\" }}\n  into:\n    type: ssh.upload\n    with: {{ src: app.conf, dest: \"{}\" }}\n",
            existing.display(),
            remote.path().join("new.conf").display(),
            folder.display()
        ),
    );
    let (_, events) = apply_json_in(Flow::new().file("app.conf", "new\n").playbook(&text), 0);
    let meta = std::fs::metadata(&existing).expect("meta");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o640)
    );
    assert_eq!(std::fs::read_to_string(&existing).expect("read"), "new\n");
    let fresh = std::fs::metadata(remote.path().join("new.conf")).expect("new file");
    assert_eq!(
        fresh.mode() & 0o777,
        0o644,
        "a new file takes the umask, not 0600"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("app.conf")).expect("inside the folder"),
        "new\n"
    );
    assert_eq!(
        outputs(&events, "into")["files"][0],
        folder.join("app.conf").display().to_string()
    );
    let leftovers: Vec<_> = std::fs::read_dir(remote.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".flow-upload"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Sixteen `envfile.set` steps of one run on one remote file, at once: every key lands.
#[test]
fn parallel_remote_edits_of_one_file_in_a_run_lose_no_key() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let env = remote.path().join("app.env");
    std::fs::write(&env, "# keys\n").expect("write");
    let text = format!(
        "flow: 1\nparams:\n  keys: {{ type: list, default: [{}] }}\ndefaults:\n  ssh: {}\nsteps:\n  set:\n    type: envfile.set\n    for_each: params.keys\n    concurrency: 16\n    with: {{ ssh: {{ host: flowtest }}, path: \"{}\", set: \"{{{{ {{item: '1'}} }}}}\" }}\n",
        (0..16)
            .map(|i| format!("K{i}"))
            .collect::<Vec<_>>()
            .join(", "),
        server.block("flowtest"),
        env.display()
    );
    apply_json(&text, 0);
    let written = std::fs::read_to_string(&env).expect("env");
    for i in 0..16 {
        assert!(
            written.contains(&format!("K{i}=1\n")),
            "K{i} lost:\n{written}"
        );
    }
}

#[test]
fn ssh_wait_ends_at_its_timeout_even_when_the_command_hangs() {
    let server = Sshd::start();
    let started = std::time::Instant::now();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  up:\n    type: ssh.wait\n    with: { command: [sleep, \"780\"], timeout: 2s }\n",
        ),
        1,
    );
    out.stdout_has("did not answer within 2.0s");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // Nor is the command left running there.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let left = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == "sleep 780");
    assert!(!left, "the hung command outlived the wait");
}

#[test]
fn an_env_name_that_is_not_a_variable_is_refused() {
    let server = Sshd::start();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  bad:\n    type: ssh.exec\n    with: { command: [\"true\"], env: { \"A B\": x } }\n",
        ),
        1,
    );
    out.stdout_has("`env` name `A B` is not a variable name");
}

/// `env` values reach the command but never a command line: another user of the host would
/// see a secret in `ps`.
#[test]
fn env_values_are_not_in_any_command_line_on_the_host() {
    let server = Sshd::start();
    let (_, events) = apply_json(
        &playbook(
            &server,
            "  look:\n    type: ssh.exec\n    with: { shell: \"echo \\\"$MARK\\\"; ps -eo args\", env: { MARK: visible-value-4711 }, sudo: true }\n",
        ),
        0,
    );
    let stdout = outputs(&events, "look")["stdout"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("visible-value-4711"));
    assert!(
        !lines.any(|l| l.contains("visible-value-4711")),
        "the value is in a command line:\n{stdout}"
    );
}

/// Empty folders and dot files make the trip both ways.
#[test]
fn empty_folders_and_dot_files_go_up_and_come_back() {
    let server = Sshd::start();
    let remote = tempfile::tempdir().expect("remote");
    let dest = remote.path().join("tree");
    let flow = Flow::new()
        .file("tree/.hidden", "h\n")
        .file("tree/sub/file", "f\n")
        .playbook(&playbook(
            &server,
            &format!(
                "  up:\n    type: ssh.upload\n    with: {{ src: tree, dest: \"{d}\" }}\n  down:\n    type: ssh.download\n    with: {{ src: \"{d}\", dest: back }}\n",
                d = dest.display()
            ),
        ));
    std::fs::create_dir_all(flow.dir.path().join("tree/empty/deeper")).expect("mkdir");
    let (out, _) = apply_json_in(flow, 0);
    assert!(
        dest.join("empty/deeper").is_dir(),
        "empty folders not uploaded"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join(".hidden")).expect("hidden"),
        "h\n"
    );
    assert!(
        out.path("back/empty/deeper").is_dir(),
        "empty folders not downloaded"
    );
    assert_eq!(out.file("back/.hidden"), "h\n");
    assert_eq!(out.file("back/sub/file"), "f\n");
}

#[test]
fn a_missing_key_file_is_named_not_called_an_authentication_failure() {
    let server = Sshd::start();
    let (out, _) = apply_json(
        &playbook(
            &server,
            "  hi:\n    type: ssh.exec\n    with: { key: /nonexistent/id_ed25519, command: [\"true\"] }\n",
        ),
        1,
    );
    out.stdout_has("`key` /nonexistent/id_ed25519: No such file or directory");
}
