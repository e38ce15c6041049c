//! `redis.delete` at the size of a real session store (seed 001: 24-hour sessions, hundreds of
//! thousands of keys), and a delete whose server dies half way. Speed is not asserted here
//! (bench/sessions.sh measures it beside a Python client); what a user sees is.

use crate::common::Flow;
use crate::common::redis::RedisServer;
use crate::common::run::flow;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

const ORGS: usize = 5;

/// `count` JSON sessions `session:NNNNNNN`, organisation `org-(i % 5)`, 24-hour TTL, loaded in
/// MSETs of 10 000 (plus one EXPIRE each, pipelined by redis itself being fast enough).
fn load_sessions(redis: &RedisServer, count: usize) {
    for start in (0..count).step_by(10_000) {
        let mut args = vec!["MSET".to_string()];
        for i in start..count.min(start + 10_000) {
            args.push(format!("session:{i:07}"));
            args.push(
                json!({
                    "userId": format!("user-{i}"),
                    "organisationId": format!("org-{}", i % ORGS),
                    "createdAt": 1_700_000_000_000_i64 + i as i64,
                    "roles": ["member"],
                })
                .to_string(),
            );
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(redis.cli(&args), "OK");
    }
    redis.cli(&["SET", "config:org-0", r#"{"organisationId":"org-0"}"#]);
}

fn purge_playbook(url: &str, dry_run: bool) -> String {
    format!(
        r#"flow: 1
steps:
  purge:
    type: redis.delete
    with:
      url: "{url}"
      pattern: "session:*"
      dry_run: {dry_run}
      where: value is mapping and value.organisationId == "org-0"
"#
    )
}

fn finished(events: &[Value], step: &str) -> Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .cloned()
        .unwrap_or_else(|| panic!("no step_finished for {step}: {events:#?}"))
}

#[test]
fn delete_selects_and_deletes_one_organisation_among_100_000_sessions() {
    let redis = RedisServer::start();
    load_sessions(&redis, 100_000);
    assert_eq!(redis.cli(&["DBSIZE"]), "100001");

    let out = Flow::new()
        .playbook(&purge_playbook(&redis.url(), false))
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    let o = finished(&events, "purge")["outputs"].clone();
    assert_eq!(o["scanned"], json!(100_000), "{o:#}");
    assert_eq!(o["matched"], json!(20_000), "{o:#}");
    assert_eq!(o["deleted"], json!(20_000), "{o:#}");
    assert_eq!(redis.cli(&["DBSIZE"]), "80001");
    // Every session of org-0 (i % 5 == 0) is gone, the others and the key outside the
    // pattern are there.
    assert_eq!(
        redis.cli(&["EXISTS", "session:0000000", "session:0099995"]),
        "0"
    );
    assert_eq!(
        redis.cli(&["EXISTS", "session:0000001", "session:0099999"]),
        "2"
    );
    assert_eq!(redis.cli(&["EXISTS", "config:org-0"]), "1");
}

/// A TCP proxy to `port` that passes everything until the `nth` command containing `word`:
/// that one it holds back, and says so on the channel, then waits for `release` before
/// closing the connection. Later connections are passed on (to a server that may be gone).
fn proxy(
    port: u16,
    word: &'static [u8],
    nth: usize,
) -> (u16, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap().port();
    let (held, held_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut seen = 0;
        let mut release_rx = Some(release_rx);
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue; // the server is gone: the client sees its connection closed
            };
            let (mut client_r, mut server_w) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
            });
            let mut buffer = vec![0; 1 << 16];
            while let Ok(n) = client_r.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let chunk = &buffer[..n];
                if chunk.windows(word.len()).any(|w| w == word) {
                    seen += 1;
                    if seen == nth {
                        let _ = held.send(());
                        if let Some(release) = release_rx.take() {
                            let _ = release.recv_timeout(Duration::from_secs(60));
                        }
                        let _ = client_r.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
                if server_w.write_all(chunk).is_err() {
                    break;
                }
            }
        }
    });
    (local, held_rx, release)
}

#[test]
fn a_server_killed_half_way_through_a_delete_reports_the_keys_deleted_before() {
    let redis = RedisServer::start();
    load_sessions(&redis, 5_000);
    // 1 000 sessions match, 100 per UNLINK: the fourth UNLINK never reaches the server, which
    // is killed while it is held back.
    let (port, held, release) = proxy(redis.port(), b"UNLINK", 4);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("playbook.yaml"),
        purge_playbook(&format!("redis://127.0.0.1:{port}"), false)
            .replace("dry_run: false", "dry_run: false\n      batch: 100"),
    )
    .unwrap();
    let run_dir = dir.path().to_path_buf();
    let run = std::thread::spawn(move || flow(&run_dir, &["apply", "playbook.yaml", "--yes"], &[]));
    held.recv_timeout(Duration::from_secs(100))
        .expect("the delete never sent its fourth UNLINK");
    let left: usize = redis.cli(&["DBSIZE"]).parse().unwrap();
    assert_eq!(left, 5_001 - 300, "three UNLINKs of 100 keys went through");
    drop(redis);
    let _ = release.send(());
    let out = run.join().unwrap();
    out.code(1)
        .stdout_has("✘ purge")
        .stdout_has("300 of 1000 matching keys were deleted before it");
}
