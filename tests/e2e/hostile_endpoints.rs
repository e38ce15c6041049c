//! An AWS endpoint that does not behave — one that never stops sending, one that sends a byte
//! a second, one that answers an HTML page with 200 — against the real SDK clients: each
//! call ends, in bounded memory, with one line that says what came. And S3 keys flow cannot
//! show or send (control characters), and request ids, which differ on every call, in saved
//! plans. The hostile servers are small threads of the test on 127.0.0.1.

use crate::common::Flow;
use crate::common::moto::Moto;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Behaviour {
    /// 200, then a chunked body that never ends.
    Endless,
    /// 200 with a Content-Length, then one byte a second.
    Trickle,
    /// 200 with a proxy's sign-in page.
    Html,
}

/// Reads a request's head (the SDK's requests here have no body worth reading).
fn read_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
}

fn answer(mut stream: TcpStream, behaviour: Behaviour) {
    read_head(&mut stream);
    match behaviour {
        Behaviour::Endless => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        }
        Behaviour::Trickle => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n",
            );
            while stream.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Behaviour::Html => {
            let body = "<!DOCTYPE html>\n<html><head><title>Sign in to the Wi-Fi</title></head><body>Please sign in.</body></html>\n";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

/// A server on 127.0.0.1 answering every request the same way: its URL.
fn hostile(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream, behaviour));
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// A playbook of `step` against `endpoint`; `more` goes into the AWS block.
fn playbook(endpoint: &str, more: &str, step: &str) -> String {
    format!(
        "flow: 1\ndefaults:\n  aws: {{ region: us-east-1, endpoint_url: \"{endpoint}\"{more} }}\nsteps:\n{step}"
    )
}

const LIST: &str = "  found:\n    type: s3.list\n    with: { bucket: backups }\n";
const GET: &str =
    "  fetch:\n    type: s3.get\n    with: { bucket: backups, key: dump.rdb, path: dump.rdb }\n";

/// Runs `flow apply playbook.yaml --yes` in `flow`'s folder with dummy credentials, watching
/// its peak memory (VmHWM) while it runs: (exit code, stdout + stderr, peak KiB).
fn apply_watched(flow: Flow) -> (i32, String, u64) {
    let mut child = std::process::Command::new(crate::common::flow_bin())
        .args(["apply", "playbook.yaml", "--yes"])
        .current_dir(flow.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", flow.dir.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn flow");
    let stdout = crate::common::run::reader(child.stdout.take().expect("stdout"));
    let stderr = crate::common::run::reader(child.stderr.take().expect("stderr"));
    let status = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut peak = 0u64;
    let code = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit.code().unwrap_or(-1);
        }
        let hwm = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        peak = peak.max(hwm);
        // Past 1 GiB it has already failed: end it before it takes the machine.
        if peak > 1 << 20 || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flow still running after 90s or at {peak} KiB");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        stdout.join().expect("stdout"),
        stderr.join().expect("stderr")
    );
    (code, text, peak)
}

/// An endpoint whose answer never ends grew flow by gigabytes: an answer is read up to
/// 64 MiB, then the call fails saying so.
#[test]
fn an_endless_answer_fails_the_call_in_bounded_memory() {
    let endpoint = hostile(Behaviour::Endless);
    let (code, text, peak) = apply_watched(Flow::new().playbook(&playbook(&endpoint, "", LIST)));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("s3 ListObjectsV2: the endpoint's answer could not be read")
            && text.contains("larger than 64 MiB"),
        "{text}"
    );
    assert!(peak < 512 << 10, "flow peaked at {peak} KiB");
}

/// One byte a second never timed out (only the first byte had a deadline): a call ends at
/// the block's `call_timeout`, a download when it brings too little in that long.
#[test]
fn an_answer_of_a_byte_a_second_ends_at_the_call_timeout() {
    let endpoint = hostile(Behaviour::Trickle);
    let fast = ", call_timeout: 3s";
    let (code, text, _) = apply_watched(Flow::new().playbook(&playbook(&endpoint, fast, LIST)));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("s3 ListObjectsV2: the endpoint did not answer in time"),
        "{text}"
    );
    let flow = Flow::new().playbook(&playbook(&endpoint, fast, GET));
    let dir = flow.dir.path().to_path_buf();
    let (code, text, _) = apply_watched(flow);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("s3 GetObject: the download broke off: the download stalled"),
        "{text}"
    );
    assert!(!dir.join("dump.rdb").exists());
}

/// A captive portal or a proxy's page with 200 said `ListObjectsV2 failed: error: `.
#[test]
fn an_html_page_with_200_says_what_came() {
    let endpoint = hostile(Behaviour::Html);
    let (code, text, _) = apply_watched(Flow::new().playbook(&playbook(&endpoint, "", LIST)));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "s3 ListObjectsV2 failed: the endpoint answered HTTP 200 with an HTML page (\"Sign in to the Wi-Fi\"), not an AWS answer"
        ),
        "{text}"
    );
    assert!(!text.contains("<html"), "{text}");
}

// ---------------------------------------------------------------- S3 keys and request ids

/// A key with a control character: written in the playbook, `flow validate` refuses it with
/// its position (exit 2); rendered from a param, the step refuses it before any request.
/// Before, S3 answered an error without a code and the plan said `failed: error: `.
#[test]
fn an_s3_key_with_a_control_character_is_refused_before_any_request() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let literal = moto
        .reach(Flow::new().playbook(
            "flow: 1\nsteps:\n  clean:\n    type: s3.delete\n    with: { bucket: backups, prefix: \"daily/\\x01\" }\n",
        ))
        .args(&["validate", "playbook.yaml"])
        .run();
    literal
        .code(2)
        .stderr_has("playbook.yaml:5:")
        .stderr_has("`with.prefix`: holds a control character (U+0001, character 7)");

    let templated = moto
        .reach(Flow::new().playbook(
            "flow: 1\nparams:\n  key: { type: string }\nsteps:\n  fetch:\n    type: s3.get\n    with: { bucket: backups, key: \"{{ params.key }}\", path: out }\n",
        ))
        .args(&["plan", "playbook.yaml", "-p", "key=a\u{1}b"])
        .run();
    templated
        .code(1)
        .stdout_has("holds a control character (U+0001, character 2)")
        .stdout_lacks("failed: error: ");
}

/// A plan that names an S3 error names its request id, which is new on every call: a saved
/// plan holding one was refused as drift every time.
#[test]
fn a_request_id_in_a_saved_plan_is_not_drift() {
    let moto = Moto::start();
    let flow = moto.reach(Flow::new().playbook(
        "flow: 1\nsteps:\n  clean:\n    type: s3.delete\n    with: { bucket: nowhere, prefix: daily/, keep_latest: 1 }\n",
    ));
    let dir = flow.dir;
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let plan = crate::common::run::flow(
        dir.path(),
        &["plan", "playbook.yaml", "--out", "plan.json"],
        &env,
    );
    plan.code(0)
        .stdout_has("cannot list it now")
        .stdout_has("NoSuchBucket");
    assert!(
        plan.stdout.contains("(request id "),
        "moto gave no request id, the test shows nothing:\n{}",
        plan.context()
    );
    let apply = crate::common::run::flow(dir.path(), &["apply", "plan.json", "--yes"], &env);
    apply
        .code(1)
        .stdout_has("NoSuchBucket")
        .stderr_lacks("the world moved");
}
