//! A real `redis-server` for a test: started on 127.0.0.1 at a free port with its own data
//! folder, answered with PING before the test goes on, and killed when the guard drops.
//!
//! Use it from a test file with `#[path = "common/redis.rs"] mod redis_server;`.
//! A missing `redis-server` is a failure that says how to install it, never a skip.
//!
//! On Linux the server also dies with the thread that started it (PR_SET_PDEATHSIG), so a
//! test killed midway (Ctrl-C, a closed pipe) leaves no server behind. Start servers on the
//! test's own thread and keep the guard there; run `flow` on a helper thread when a server
//! must appear while flow runs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = "127.0.0.1";
/// How long a server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one harness command may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// The temp dir the server's `--dir` lives in, when the harness made it.
    _temp: Option<tempfile::TempDir>,
    password: Option<String>,
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The `redis-server` binary on PATH; a clear failure when it is missing.
pub fn redis_server_bin() -> PathBuf {
    which("redis-server").unwrap_or_else(|| {
        panic!(
            "redis-server is not installed: run `apt-get install redis-server` (scripts/test installs it)"
        )
    })
}

/// Has the child killed when the thread that started it ends, whatever ends it.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::ffi::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl RedisServer {
    /// A server without persistence (`--save ''`, no AOF) in a fresh temp dir.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As `start`, with extra `redis-server` arguments (later ones win over the defaults),
    /// e.g. `["--requirepass", "pw"]`.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::launch(free_port(), None, extra)
    }

    /// A server on a given port (e.g. one a step is already waiting for).
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        Self::launch(port, None, extra)
    }

    /// A server whose `--dir` is `dir` (kept after the server goes), e.g. to load an RDB file
    /// put there: `start_in(dir, &["--dbfilename", "backup.rdb"])`.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Self {
        Self::launch(free_port(), Some(dir.to_path_buf()), extra)
    }

    fn launch(port: u16, dir: Option<PathBuf>, extra: &[&str]) -> Self {
        let bin = redis_server_bin();
        let (dir, temp) = match dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().expect("temp dir for redis");
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let log = dir.join(format!("redis-{port}.log"));
        let port_text = port.to_string();
        let dir_text = dir.display().to_string();
        let mut args: Vec<&str> = vec![
            "--port",
            &port_text,
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir_text,
            "--daemonize",
            "no",
        ];
        args.extend_from_slice(extra);
        let password = extra
            .iter()
            .position(|a| *a == "--requirepass")
            .and_then(|i| extra.get(i + 1))
            .map(|p| p.to_string());
        let log_file = std::fs::File::create(&log).expect("create redis log");
        let mut command = Command::new(&bin);
        die_with_parent(&mut command);
        let child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = RedisServer {
            child,
            port,
            dir,
            _temp: temp,
            password,
        };
        server.wait_ready(&log);
        server
    }

    fn wait_ready(&mut self, log: &Path) {
        let began = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "redis-server on port {} exited ({status}) before answering PING:\n{}",
                    self.port,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            // Without AUTH a password-protected server answers NOAUTH: it is up all the same.
            if let Ok(reply) = raw_command(self.port, None, &["PING"])
                && (reply == Reply::Status("PONG".into())
                    || matches!(&reply, Reply::Error(e) if e.starts_with("NOAUTH")))
            {
                return;
            }
            if began.elapsed() > START_TIMEOUT {
                let _ = self.child.kill();
                panic!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` (no credentials).
    pub fn url(&self) -> String {
        format!("redis://{HOST}:{}", self.port)
    }

    /// The server's data folder (`--dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs one command (authenticating first when the server has a password) and returns
    /// the reply as redis-cli's raw mode prints it: a string or number as is, nil as "",
    /// an array one element per line, an error as its message. Panics when the server cannot
    /// be reached.
    pub fn cli(&self, args: &[&str]) -> String {
        self.command(args).to_text()
    }

    /// As `cli`, in database `db` (SELECT first).
    pub fn cli_in(&self, db: u32, args: &[&str]) -> String {
        raw_command_in(self.port, self.password.as_deref(), db, args)
            .unwrap_or_else(|e| panic!("redis on port {} did not answer {args:?}: {e}", self.port))
            .to_text()
    }

    /// Runs one command and returns the parsed reply.
    pub fn command(&self, args: &[&str]) -> Reply {
        raw_command(self.port, self.password.as_deref(), args).unwrap_or_else(|e| {
            panic!(
                "redis on port {} did not answer {:?}: {e}",
                self.port,
                args.first()
            )
        })
    }

    /// Whether the server still answers PING.
    pub fn is_alive(&self) -> bool {
        raw_command(self.port, self.password.as_deref(), &["PING"])
            .is_ok_and(|r| r == Reply::Status("PONG".into()))
    }

    /// Whether the process has exited; waits for it up to `within`.
    pub fn has_exited(&mut self, within: Duration) -> bool {
        let began = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if began.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Every key, sorted (KEYS is fine in a test with a handful of keys).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = match self.command(&["KEYS", pattern]) {
            Reply::Array(items) => items.into_iter().map(|i| i.to_text()).collect(),
            other => panic!("KEYS gave {other:?}"),
        };
        keys.sort();
        keys
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
    NilArray,
}

impl Reply {
    pub fn to_text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Reply::Bulk(None) | Reply::NilArray => String::new(),
            Reply::Array(items) => items
                .iter()
                .map(Reply::to_text)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One command over a fresh connection, with bounded connect/read/write times.
pub fn raw_command(port: u16, password: Option<&str>, args: &[&str]) -> std::io::Result<Reply> {
    raw_command_in(port, password, 0, args)
}

/// One command in database `db` over a fresh connection.
pub fn raw_command_in(
    port: u16,
    password: Option<&str>,
    db: u32,
    args: &[&str],
) -> std::io::Result<Reply> {
    let address = (HOST, port);
    let address = std::net::ToSocketAddrs::to_socket_addrs(&address)?
        .next()
        .expect("an address");
    let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    if let Some(password) = password {
        writer.write_all(&encode(&["AUTH", password]))?;
        if let Reply::Error(e) = read_reply(&mut reader)? {
            return Ok(Reply::Error(e));
        }
    }
    if db != 0 {
        writer.write_all(&encode(&["SELECT", &db.to_string()]))?;
        if let Reply::Error(e) = read_reply(&mut reader)? {
            return Ok(Reply::Error(e));
        }
    }
    writer.write_all(&encode(args))?;
    read_reply(&mut reader)
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad reply {line:?}"),
        )
    };
    let (kind, rest) = line.split_at(1.min(line.len()));
    Ok(match kind {
        "+" => Reply::Status(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut bytes = vec![0; len as usize + 2];
                reader.read_exact(&mut bytes)?;
                bytes.truncate(len as usize);
                Reply::Bulk(Some(bytes))
            }
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                Reply::NilArray
            } else {
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(read_reply(reader)?);
                }
                Reply::Array(items)
            }
        }
        _ => return Err(bad()),
    })
}
