//! Helpers for the `flow serve` tests: the real server started on a free port (stopped with
//! Ctrl-C when dropped), a minimal HTTP/1.0 client over `TcpStream`, and headless Chromium.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `flow serve`.
pub struct Server {
    child: Child,
    pub port: u16,
    /// The line it printed on start.
    pub banner: String,
}

impl Server {
    /// `flow serve --state-dir STATE --listen HOST:PORT` plus `args`, once it said where it
    /// serves.
    pub fn start(state: &Path, host: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let port = super::redis::free_port();
        let listen = format!("{host}:{port}");
        let mut command = Command::new(super::flow_bin());
        command
            .args(["serve", "--state-dir"])
            .arg(state)
            .args(["--listen", &listen])
            .args(args);
        for var in super::CLEARED_ENV {
            command.env_remove(var);
        }
        command.env_remove("FLOW_SERVE_TOKEN");
        command.envs(env.iter().copied());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flow serve");
        let stdout = child.stdout.take().expect("stdout");
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = send.send(line);
        });
        let banner = match receive.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if !line.is_empty() => line.trim_end().to_string(),
            _ => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("wait flow serve");
                panic!(
                    "flow serve did not say where it serves; stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        };
        Server {
            child,
            port,
            banner,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        get(self.port, path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        get(self.port, path, headers)
    }

    /// Ctrl-C, then its exit code.
    pub fn stop(mut self) -> i32 {
        super::run::signal(self.child.id(), "INT");
        super::run::wait_bounded(&mut self.child, Duration::from_secs(20))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, self.body))
    }

    pub fn has(&self, needle: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "the page lacks {needle:?}:\n{}",
            self.body
        );
        self
    }

    pub fn lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.body.contains(needle),
            "the page has {needle:?}:\n{}",
            self.body
        );
        self
    }

    pub fn status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status, expected,
            "unexpected status\n{}\n{}",
            self.head, self.body
        );
        self
    }
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to flow serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
}

fn request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!("GET {path} HTTP/1.0\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        text.push_str("Host: 127.0.0.1\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// `GET path` over HTTP/1.0: the server closes the connection after the answer.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    get_method(port, "GET", path, headers)
}

pub fn get_method(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = connect(port);
    let text = request(path, headers).replacen("GET", method, 1);
    stream.write_all(text.as_bytes()).expect("send request");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read answer");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Reads a server-sent event stream until `until` holds for what came so far (true), or
/// `limit` passed or the stream ended (false). Returns what was read.
pub fn read_events(
    port: u16,
    path: &str,
    limit: Duration,
    until: impl Fn(&str) -> bool,
) -> (bool, String) {
    let mut stream = connect(port);
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    stream
        .write_all(request(path, &[("Accept", "text/event-stream")]).as_bytes())
        .expect("send request");
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    let mut buffer = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return (until(&seen), seen),
            Ok(n) => {
                seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
                if until(&seen) {
                    return (true, seen);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the event stream: {e}"),
        }
    }
    (false, seen)
}

/// Debian's `chromium`; a test that needs it fails, saying how to get it, when it is missing.
pub fn chromium() -> PathBuf {
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|path| path.is_file())
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: the browser tests need it — run scripts/test (it \
installs it) or `apt-get install chromium`"
            )
        })
}

/// Headless Chromium with `args` then `url`, a profile of its own; its stdout.
pub fn chromium_run(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chromium");
    let stdout = super::run::reader(child.stdout.take().expect("stdout"));
    let stderr = super::run::reader(child.stderr.take().expect("stderr"));
    let code = super::run::wait_bounded(&mut child, Duration::from_secs(90));
    let out = stdout.join().expect("stdout reader");
    let err = stderr.join().expect("stderr reader");
    assert_eq!(code, 0, "chromium failed:\n{err}");
    out
}

/// Where the browser tests leave their screenshots: `<target dir>/serve-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let bin = Path::new(super::flow_bin());
    let target = bin
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    let dir = target.join("serve-artifacts");
    std::fs::create_dir_all(&dir).expect("create serve-artifacts");
    dir
}
