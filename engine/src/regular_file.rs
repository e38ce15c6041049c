//! Reading a file flow is given — a playbook, a params file, a saved plan, `read_file()`, a
//! CloudFormation template, a file to upload: regular files only, and at most so much of one.
//! A FIFO would hold flow until something writes to it (a step's timeout cannot end a
//! blocking read), and `/dev/zero` or `/dev/urandom` never end: every input is opened
//! without blocking and checked on the open file before a byte is read, so neither a
//! check-then-open race nor a path swapped for a FIFO can hold flow.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be opened or read.
    Io(io::Error),
    /// It is not a regular file: what it is (`a FIFO`, `a character device`…).
    NotRegular(&'static str),
    /// It holds more than the reader takes.
    TooLarge { limit: u64 },
    /// Text was expected.
    NotUtf8,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(error) => write!(f, "{error}"),
            ReadError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge { limit } => {
                write!(
                    f,
                    "it is larger than {}, the most flow reads here",
                    size(*limit)
                )
            }
            ReadError::NotUtf8 => f.write_str("it is not UTF-8 text"),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for io::Error {
    fn from(error: ReadError) -> io::Error {
        match error {
            ReadError::Io(error) => error,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a file of this type is, in words, when it is not a regular file.
pub fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a folder")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Opens `path` (symlinks followed) for reading if it is a regular file. Opened with
/// `O_NONBLOCK`, so opening a FIFO returns at once, and checked on the open file.
pub fn open(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(file) => file,
        // A socket cannot be opened at all (ENXIO): say what it is rather than the errno.
        Err(error) => {
            return Err(
                match std::fs::metadata(path).ok().as_ref().and_then(not_regular) {
                    Some(what) => ReadError::NotRegular(what),
                    None => ReadError::Io(error),
                },
            );
        }
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(what) = not_regular(&meta) {
        return Err(ReadError::NotRegular(what));
    }
    Ok((file, meta))
}

/// Whether `path` is a regular file flow can open, without reading it.
pub fn check(path: &Path) -> Result<(), ReadError> {
    open(path).map(drop)
}

/// The bytes of a regular file of at most `limit` bytes. The read stops at the limit
/// whatever size the file claimed (it may grow; `/proc` files claim 0).
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, meta) = open(path)?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// A regular file of at most `limit` bytes, as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, limit)?).map_err(|_| ReadError::NotUtf8)
}

/// The most flow reads of a playbook, a params file or a saved plan: far more than any
/// real one holds, little enough that `/dev/zero` renamed `playbook.yaml` is one clear error.
pub const INPUT_TEXT_LIMIT: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
        let error = read(&fifo, 10).unwrap_err();
        assert_eq!(error.to_string(), "it is a FIFO, not a regular file");
    }

    #[test]
    fn devices_and_folders_are_refused_and_files_read_up_to_their_limit() {
        assert!(matches!(
            read(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("a character device"))
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check(dir.path()),
            Err(ReadError::NotRegular("a folder"))
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_text(&file, 5).unwrap(), "12345");
        assert_eq!(
            read(&file, 4).unwrap_err().to_string(),
            "it is larger than 4 bytes, the most flow reads here"
        );
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text(&file, 5), Err(ReadError::NotUtf8)));
    }

    #[test]
    fn a_socket_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(
            check(&path),
            Err(ReadError::NotRegular("a socket"))
        ));
    }
}
