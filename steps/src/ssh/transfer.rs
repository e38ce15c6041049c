//! What `ssh.upload` and `ssh.download` share: the files of a tree, and copying one file over
//! a channel of the host's connection (`cat` into a temp file, then a rename), so a tree costs
//! no new handshake per file.

use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;
use openssh::{Session, Stdio};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The outputs of a copy.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TransferOutputs {
    /// The files copied (their destination paths).
    pub files: Vec<String>,
    /// Bytes copied.
    pub bytes: u64,
    /// Whether every copy was checked against the original's sha256 afterwards (false when
    /// the host has no `sha256sum`).
    pub verified: bool,
}

/// The sha256 of content, in hex.
pub fn sha256_hex(content: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sha256 of each file on the host, by path; `None` when the host has no `sha256sum`.
pub async fn remote_sha256(
    session: &Session,
    paths: &[String],
    sudo: bool,
) -> Result<Option<std::collections::HashMap<String, String>>, String> {
    if paths.is_empty() {
        return Ok(Some(Default::default()));
    }
    let quoted: Vec<String> = paths.iter().map(|p| shell_quote(p)).collect();
    let script = format!(
        "command -v sha256sum >/dev/null || exit 0; sha256sum -- {}",
        quoted.join(" ")
    );
    let out = run(session, &wrap(&script, sudo), None).await?;
    let text = String::from_utf8_lossy(&out);
    if text.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(
        text.lines()
            .filter_map(|l| l.split_once("  "))
            .map(|(digest, path)| (path.to_string(), digest.to_string()))
            .collect(),
    ))
}

/// The files under a local path (itself, if it is a file), as (absolute, relative) pairs, in
/// name order.
pub fn local_files(root: &Path) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Ok(vec![(root.to_path_buf(), PathBuf::new())]);
    }
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                files.push((path, relative));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The folders of a local tree, relative to it (`` for the root), empty ones included;
/// none when `root` is a file.
pub fn local_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !std::fs::metadata(root)?.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs = vec![PathBuf::new()];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
                stack.push(path);
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Runs `line` on the host, feeding it `input`; its stdout, or a message with its stderr.
/// Writing and waiting are one future: a step cancelled (timeout, Ctrl-C) stops feeding it.
pub async fn run(session: &Session, line: &str, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut command = session.raw_command(line);
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().await.map_err(|e| e.to_string())?;
    let stdin = child.stdin().take();
    let (_, output) = tokio::join!(feed(stdin, input), child.wait_with_output());
    let output = output.map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut error = stderr.trim().lines().last().unwrap_or("failed").to_string();
        if line.starts_with("sudo -n ") && stderr.contains("a password is required") {
            error.push_str(SUDO_WANTS_A_PASSWORD);
        }
        Err(error)
    }
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

/// Writes `content` to `dest` on the host (into it, when `dest` is a folder): parent folders
/// created, a temp file beside it renamed over it only once it holds every byte, taking the
/// replaced file's owner and mode (a new file: the host's umask), or `mode` when given.
/// Returns the path written.
pub async fn put(
    session: &Session,
    dest: &str,
    name: &str,
    content: &[u8],
    mode: Option<u32>,
    sudo: bool,
) -> Result<String, String> {
    let chmod = mode
        .map(|m| format!("chmod {m:o} \"$tmp\"; "))
        .unwrap_or_default();
    let script = format!(
        r#"set -e
f={dest}; if [ -d "$f" ]; then f="${{f%/}}/"{name}; fi
d=$(dirname -- "$f"); mkdir -p -- "$d"
tmp=$(mktemp "$d/.flow-upload.XXXXXX"); trap 'rm -f -- "$tmp"' EXIT
head -c {size} > "$tmp"
[ "$(wc -c < "$tmp")" -eq {size} ] || {{ echo "the upload broke off: nothing was replaced" >&2; exit 1; }}
if [ -e "$f" ]; then chown --reference="$f" -- "$tmp" 2>/dev/null || true; chmod --reference="$f" -- "$tmp"
else chmod "$(printf '%o' $((0666 & ~$(umask))))" -- "$tmp"; fi
{chmod}mv -f -- "$tmp" "$f"; trap - EXIT
printf '%s' "$f""#,
        dest = shell_quote(dest),
        name = shell_quote(name),
        size = content.len(),
    );
    let written = run(session, &wrap(&script, sudo), Some(content)).await?;
    Ok(String::from_utf8_lossy(&written).into_owned())
}

/// A script for `sh -c`, under `sudo -n` when asked.
pub fn wrap(script: &str, sudo: bool) -> String {
    let sudo = if sudo { "sudo -n -- " } else { "" };
    format!("{sudo}sh -c {}", shell_quote(script))
}
