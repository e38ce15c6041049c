//! A real `moto_server` (PyPI `moto[server]`) as the AWS stand-in for a test: on 127.0.0.1 at
//! a free port, stopped when dropped. The real SDK clients reach it through
//! `AWS_ENDPOINT_URL`, with dummy credentials; the instance metadata service is disabled so
//! nothing leaves the machine. A missing moto_server fails the test, saying how to install it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    port: u16,
}

fn moto_bin() -> PathBuf {
    let venv = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/flow/venv/bin/moto_server"))
        .ok();
    if let Some(venv) = venv.filter(|p| p.exists()) {
        return venv;
    }
    if let Ok(found) = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        && found.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    }
    panic!(
        "moto_server is not installed: the AWS tests need it.\n\
         Install it with `python3 -m venv ~/.cache/flow/venv && ~/.cache/flow/venv/bin/pip install 'moto[server]'` (scripts/test does)."
    );
}

impl Moto {
    pub fn start() -> Self {
        let port = super::redis::free_port();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.http("GET", "/moto-api/").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a `flow` run needs to reach this server and nothing else.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// One plain HTTP request (moto accepts unsigned ones): the response body, if any answer.
    pub fn http(&self, method: &str, path: &str) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 2").then(|| body.to_string())
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.http("PUT", &format!("/{bucket}"))
            .unwrap_or_else(|| panic!("cannot create bucket {bucket}"));
    }

    /// The keys in a bucket, as moto has them.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let body = self
            .http("GET", &format!("/{bucket}?list-type=2"))
            .unwrap_or_default();
        body.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
