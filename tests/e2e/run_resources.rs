//! What a run owns is released when it ends, connection blocks take their defaults wherever
//! they appear, and secrets are learned on every path a step body takes — against real
//! `redis-server` processes on 127.0.0.1.

use crate::common::Flow;
use crate::common::redis::RedisServer;
use flow_engine::event::{Mode, RunStatus};
use flow_engine::run::Runner;
use std::sync::Arc;

/// A runner for `text` in this process, so the test can look at the server after the run
/// while everything the run created is still alive.
fn runner(text: &str) -> Arc<Runner> {
    let checked = flow_engine::headless::checked("playbook.yaml", text, &flow_steps::registry())
        .unwrap_or_else(|d| panic!("{}", d.iter().map(|d| d.render()).collect::<String>()));
    flow_engine::headless::runner(checked, Mode::Apply).expect("params")
}

/// The clients connected to `server` under `name` (CLIENT SETNAME), once the server has
/// noticed closed sockets: it is asked until none is left, for at most two seconds.
fn clients_named(server: &RedisServer, name: &str) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let count = server
            .cli(&["CLIENT", "LIST"])
            .lines()
            .filter(|l| l.contains(&format!(" name={name} ")))
            .count();
        if count == 0 || std::time::Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn naming_playbook(server: &RedisServer, then: &str) -> String {
    format!(
        "flow: 1\ndefaults:\n  redis: {{ url: \"{}\" }}\nsteps:\n  name:\n    type: redis.command\n    with: {{ command: [CLIENT, SETNAME, flow-run] }}\n  check:\n    type: redis.command\n    with: {{ command: [CLIENT, GETNAME] }}\n{then}",
        server.url()
    )
}

#[test]
fn a_runs_redis_connection_is_closed_when_the_run_ends() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runner = runner(&naming_playbook(&server, ""));
    let outcome = runtime.block_on(runner.apply());
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    // The runner (and everything it holds) is still alive: only closing released the socket.
    assert_eq!(
        clients_named(&server, "flow-run"),
        0,
        "{}",
        server.cli(&["CLIENT", "LIST"])
    );
    drop(runner);
}

#[test]
fn a_runs_redis_connection_is_closed_after_a_failure_too() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let failing = "  broken:\n    type: exec\n    with: { command: [\"false\"] }\n";
    let runner = runner(&naming_playbook(&server, failing));
    let outcome = runtime.block_on(runner.apply());
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(
        clients_named(&server, "flow-run"),
        0,
        "{}",
        server.cli(&["CLIENT", "LIST"])
    );
}

#[test]
fn while_a_run_goes_on_its_steps_share_one_connection() {
    let server = RedisServer::start();
    let out = Flow::new()
        .playbook(&naming_playbook(&server, ""))
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    // The second step saw the name the first one gave the connection.
    out.stdout_has("\"reply\":\"flow-run\"");
}

#[test]
fn defaults_redis_reach_both_sides_of_redis_compare() {
    let left = RedisServer::start_with(&["--requirepass", "defaults-pw-7781"]);
    let right = RedisServer::start_with(&["--requirepass", "defaults-pw-7781"]);
    left.command(&["AUTH", "defaults-pw-7781"]);
    let playbook = format!(
        "flow: 1\ndefaults:\n  redis: {{ password: defaults-pw-7781, connect_timeout: 3s }}\nsteps:\n  cmp:\n    type: redis.compare\n    with:\n      left: {{ url: \"{}\" }}\n      right: {{ url: \"{}\" }}\n",
        left.url(),
        right.url()
    );
    let out = Flow::new()
        .playbook(&playbook)
        .args(&["apply", "playbook.yaml", "-v"])
        .run();
    out.code(0);
    out.stdout_has("cmp");
    // The password came from `defaults`, and it is a secret there too.
    assert!(
        !out.both().contains("defaults-pw-7781"),
        "the password shows:\n{}",
        out.both()
    );
    let journal = crate::common::read_tree(&out.path(".flow"));
    assert!(!journal.contains("defaults-pw-7781"), "{journal}");
}

#[test]
fn a_secret_given_only_in_an_undo_body_is_never_printed() {
    let server = RedisServer::start_with(&["--requirepass", "undo-only-s3cret"]);
    let playbook = format!(
        "flow: 1\nsteps:\n  launch:\n    type: exec\n    with: {{ command: [echo, launched] }}\n    undo:\n      type: redis.command\n      with:\n        url: \"{}\"\n        password: undo-only-s3cret\n        command: [ECHO, \"undoing with undo-only-s3cret\"]\n  broken:\n    type: exec\n    with: {{ command: [\"false\"] }}\n",
        server.url()
    );
    for args in [
        vec!["apply", "playbook.yaml", "-v"],
        vec!["apply", "playbook.yaml", "--output", "json"],
    ] {
        let out = Flow::new().playbook(&playbook).args(&args).run();
        out.code(1);
        let journal = crate::common::read_tree(&out.path(".flow"));
        // The undo ran and its answer was recorded, masked.
        assert!(
            journal.contains("undoing with ***"),
            "the undo did not run or was not masked:\n{journal}"
        );
        assert!(!out.both().contains("undo-only-s3cret"), "{}", out.both());
        assert!(!journal.contains("undo-only-s3cret"), "{journal}");
    }
}
