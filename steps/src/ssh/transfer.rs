//! What `ssh.upload` and `ssh.download` share: commands over a channel of the host's
//! connection (so a tree costs no new handshake per file), with names as bytes (a name need
//! not be UTF-8), content streamed (a multi-GB dump passes in bounded memory), and the
//! host's sha256 of each copy.

use flow_engine::prelude::*;
use openssh::{Session, Stdio};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The outputs of a copy.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TransferOutputs {
    /// The files copied (their destination paths).
    pub files: Vec<String>,
    /// The symlinks copied as symlinks (their destination paths).
    pub links: Vec<String>,
    /// Bytes copied.
    pub bytes: u64,
    /// Whether every copy was checked against the original's sha256 afterwards (false when
    /// the host has no `sha256sum`).
    pub verified: bool,
}

impl TransferOutputs {
    pub fn new() -> Self {
        Self {
            files: Vec::new(),
            links: Vec::new(),
            bytes: 0,
            verified: false,
        }
    }
}

/// The most a command's answer may hold (a listing, a file's text): a host that answers
/// without end does not exhaust memory here.
const ANSWER_MAX_BYTES: u64 = 256 << 20;
/// The end of a command's stderr kept for its error message.
const STDERR_KEEP_BYTES: u64 = 64 << 10;
/// The size of the reads and writes that stream a file.
const CHUNK_BYTES: usize = 256 << 10;

/// `bytes` quoted for the remote shell: one word, taken as is (any byte but NUL).
pub fn quote(bytes: &[u8]) -> Vec<u8> {
    let mut quoted = Vec::with_capacity(bytes.len() + 2);
    quoted.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            quoted.extend_from_slice(b"'\\''");
        } else {
            quoted.push(b);
        }
    }
    quoted.push(b'\'');
    quoted
}

/// A script for `sh -c`, under `sudo -n` when asked.
pub fn wrap(script: impl AsRef<[u8]>, sudo: bool) -> OsString {
    let mut line = if sudo {
        b"sudo -n -- sh -c ".to_vec()
    } else {
        b"sh -c ".to_vec()
    };
    line.extend_from_slice(&quote(script.as_ref()));
    OsString::from_vec(line)
}

/// A script of any length that the host reads from stdin (`sh -s`: a command line has a
/// limit, a tree's names do not), under `sudo -n` when asked.
pub async fn run_script(session: &Session, script: &[u8], sudo: bool) -> Result<Vec<u8>, String> {
    let shell = if sudo { "sudo -n -- sh -s" } else { "sh -s" };
    run(session, shell, Some(script)).await
}

/// A command started on the host with its stdout and stderr piped, and its stdin when
/// `input` (else /dev/null).
struct Piped<'s> {
    child: openssh::Child<&'s Session>,
    stdin: Option<openssh::ChildStdin>,
    stdout: Option<openssh::ChildStdout>,
    stderr: Option<openssh::ChildStderr>,
}

async fn spawn<'s>(
    session: &'s Session,
    line: impl AsRef<OsStr>,
    input: bool,
) -> Result<Piped<'s>, String> {
    let mut command = session.raw_command(line);
    command
        .stdin(if input { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().await.map_err(|e| e.to_string())?;
    Ok(Piped {
        stdin: child.stdin().take(),
        stdout: child.stdout().take(),
        stderr: child.stderr().take(),
        child,
    })
}

/// Runs `line` on the host, feeding it `input`; its stdout, or a message with its stderr.
/// Writing and waiting are one future: a step cancelled (timeout, Ctrl-C) stops feeding it.
pub async fn run(
    session: &Session,
    line: impl AsRef<OsStr>,
    input: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let sudo = line.as_ref().as_bytes().starts_with(b"sudo -n ");
    let Piped {
        child,
        stdin,
        stdout,
        stderr,
    } = spawn(session, line, input.is_some()).await?;
    let read_stdout = async {
        let mut bytes = Vec::new();
        if let Some(stdout) = stdout {
            // One byte more than allowed says it was too much.
            let _ = stdout
                .take(ANSWER_MAX_BYTES + 1)
                .read_to_end(&mut bytes)
                .await;
        }
        bytes
    };
    let (_, stdout, stderr) = tokio::join!(feed(stdin, input), read_stdout, stderr_tail(stderr));
    if stdout.len() as u64 > ANSWER_MAX_BYTES {
        return Err(format!(
            "its answer is larger than the {} MiB flow reads",
            ANSWER_MAX_BYTES >> 20
        ));
    }
    finished(child, &stderr).await.map_err(|mut error| {
        if sudo && String::from_utf8_lossy(&stderr).contains("a password is required") {
            error.push_str(SUDO_WANTS_A_PASSWORD);
        }
        error
    })?;
    Ok(stdout)
}

/// Waits for a command: fine, or a message with the last line of its stderr.
async fn finished(child: openssh::Child<&Session>, stderr: &[u8]) -> Result<(), String> {
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(stderr);
    Err(stderr
        .trim()
        .lines()
        .last()
        .map(str::to_string)
        .unwrap_or_else(|| format!("exited with {}", status.code().unwrap_or(-1))))
}

/// The last `STDERR_KEEP_BYTES` of a command's stderr, read to its end.
async fn stderr_tail(stderr: Option<openssh::ChildStderr>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stderr) = stderr else {
        return kept;
    };
    let mut buffer = vec![0u8; 8 << 10];
    while let Ok(n) = stderr.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() as u64 > 2 * STDERR_KEEP_BYTES {
            kept.drain(..kept.len() - STDERR_KEEP_BYTES as usize);
        }
    }
    kept
}

/// Said when `sudo -n` on a host refuses for want of a password.
pub const SUDO_WANTS_A_PASSWORD: &str = " — sudo on this host wants a password, and flow never types one (it runs `sudo -n`): allow these commands with NOPASSWD in the host's sudoers, or set `sudo: false` if the user may do this without root";

/// Writes `input` to a remote command's stdin and closes it. Awaited beside the command's
/// output (never spawned off), so a cancelled step stops feeding it.
pub async fn feed(stdin: Option<openssh::ChildStdin>, input: Option<&[u8]>) {
    if let (Some(input), Some(mut stdin)) = (input, stdin) {
        let _ = stdin.write_all(input).await;
        let _ = stdin.shutdown().await;
    }
}

/// A running sha256, in hex when done.
#[derive(Default)]
pub struct Digest(sha2::Sha256);

impl Digest {
    pub fn update(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    pub fn hex(self) -> String {
        sha2::Digest::finalize(self.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Streams what a command prints on stdout into `sink`. Returns the bytes copied and
/// their sha256.
pub async fn stream_out(
    session: &Session,
    line: impl AsRef<OsStr>,
    sink: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<(u64, String), String> {
    let Piped {
        child,
        stdout,
        stderr,
        ..
    } = spawn(session, line, false).await?;
    let copy = async {
        let mut digest = Digest::default();
        let mut bytes = 0u64;
        let Some(mut stdout) = stdout else {
            return Ok((bytes, digest.hex()));
        };
        let mut buffer = vec![0u8; CHUNK_BYTES];
        loop {
            let n = stdout.read(&mut buffer).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            digest.update(&buffer[..n]);
            sink.write_all(&buffer[..n])
                .await
                .map_err(|e| format!("cannot write here: {e}"))?;
            bytes += n as u64;
        }
        sink.flush()
            .await
            .map_err(|e| format!("cannot write here: {e}"))?;
        Ok::<_, String>((bytes, digest.hex()))
    };
    let (copied, stderr) = tokio::join!(copy, stderr_tail(stderr));
    let copied = copied?;
    finished(child, &stderr).await?;
    Ok(copied)
}

/// Streams exactly `size` bytes of `source` into the stdin of a command (and their sha256);
/// its stdout is its answer. A source that ends early fails.
pub async fn stream_in(
    session: &Session,
    line: impl AsRef<OsStr>,
    mut source: impl AsyncRead + Unpin,
    size: u64,
) -> Result<(Vec<u8>, String), String> {
    let Piped {
        child,
        stdin,
        stdout,
        stderr,
    } = spawn(session, line, true).await?;
    let send = async {
        let mut digest = Digest::default();
        let Some(mut stdin) = stdin else {
            return Err("no stdin".to_string());
        };
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut left = size;
        while left > 0 {
            let want = left.min(CHUNK_BYTES as u64) as usize;
            let n = source
                .read(&mut buffer[..want])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                // Closing stdin short makes the host's side refuse the copy too.
                return Err(format!(
                    "it ended {left} bytes early (it shrank while it was read)"
                ));
            }
            digest.update(&buffer[..n]);
            // The host's side stops reading only when it failed: its message says why.
            if stdin.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = stdin.shutdown().await;
        Ok(digest.hex())
    };
    let read_stdout = async {
        let mut bytes = Vec::new();
        if let Some(stdout) = stdout {
            let _ = stdout.take(64 << 10).read_to_end(&mut bytes).await;
        }
        bytes
    };
    let (sent, answer, stderr) = tokio::join!(send, read_stdout, stderr_tail(stderr));
    let sent = sent?;
    finished(child, &stderr).await?;
    Ok((answer, sent))
}

/// What the host says the sha256 of each file is, in the order of `paths` (names given to
/// the host's shell quoted as bytes, in a script on its stdin, so there is no limit to how
/// many); `None` when the host says it has no `sha256sum`. An answer missing for any file,
/// or one that is not a sha256, fails: a copy is never called verified on no answer.
pub async fn remote_digests(
    session: &Session,
    paths: &[Vec<u8>],
    sudo: bool,
) -> Result<Option<Vec<String>>, String> {
    if paths.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut script =
        b"command -v sha256sum >/dev/null 2>&1 || { echo flow-no-sha256sum; exit 0; }\n".to_vec();
    for path in paths {
        // Read through stdin: the answer holds no name to parse back.
        script.extend_from_slice(b"sha256sum < ");
        script.extend_from_slice(&quote(path));
        script.extend_from_slice(b" || exit 1\n");
    }
    let answer = run_script(session, &script, sudo).await?;
    let answer = String::from_utf8_lossy(&answer);
    if answer.trim() == "flow-no-sha256sum" {
        return Ok(None);
    }
    let digests: Vec<String> = answer
        .lines()
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
        .collect();
    let well_formed = digests.len() == paths.len()
        && digests
            .iter()
            .all(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(format!(
            "the host's sha256sum gave {} answer(s) for {} file(s){}: the copies cannot be checked",
            digests.len(),
            paths.len(),
            if digests.len() == paths.len() {
                ", not all of them a sha256"
            } else {
                ""
            }
        ));
    }
    Ok(Some(digests))
}

/// `a` and `b` joined by a `/` (as bytes: names need not be UTF-8).
pub fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() || b.is_empty() {
        return [a, b].concat();
    }
    let mut joined = a.to_vec();
    while joined.len() > 1 && joined.ends_with(b"/") {
        joined.pop();
    }
    if !joined.ends_with(b"/") {
        joined.push(b'/');
    }
    joined.extend_from_slice(b);
    joined
}

/// A path as an output shows it (bytes that are not UTF-8 replaced).
pub fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// A local path as bytes.
pub fn bytes_of(path: &std::path::Path) -> &[u8] {
    path.as_os_str().as_bytes()
}
