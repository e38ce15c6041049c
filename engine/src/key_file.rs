//! A key kept in a file: 32 random bytes as hex, readable by its owner only (0600), made
//! once — the state dir's plan key, a run's key. The bytes come from the operating system's
//! CSPRNG through `getrandom` (a system call: no device file to open, works in a chroot,
//! fails loudly rather than hand out a weak key).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

pub const KEY_BYTES: usize = 32;

/// The key in `path`, `None` when there is no such file; an error when the file is not a key.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    // A regular file only: a FIFO in its place would hold flow forever.
    let text = match crate::regular_file::read_text(path, 4096) {
        Ok(text) => text,
        Err(crate::regular_file::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(crate::regular_file::ReadError::Io(e)) => return Err(e),
        Err(other) => {
            return Err(std::io::Error::other(format!(
                "{}: {other}",
                path.display()
            )));
        }
    };
    decode_hex(text.trim())
        .filter(|key| key.len() >= KEY_BYTES)
        .map(Some)
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "{} is not a flow key (64 hex digits)",
                path.display()
            ))
        })
}

/// Makes the key file with fresh random bytes; when another flow made it first (at the same
/// moment), that key is the one.
pub fn create(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| {
        std::io::Error::other(format!("no randomness from the operating system: {e}"))
    })?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(format!("{}\n", hex(&key)).as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path)?.ok_or_else(|| std::io::Error::other("the key file went away"))
        }
        Err(e) => Err(e),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
