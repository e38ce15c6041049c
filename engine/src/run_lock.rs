//! The lock of a run's journal folder: held by the flow that applies the run, or resumes it,
//! for as long as that flow lives, so two flows never write one run. A `flock` on
//! `<run dir>/lock`: the kernel drops it when its holder exits, even by `kill -9`, so a run
//! whose flow was killed can be resumed at once.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const LOCK_FILE: &str = "lock";

pub struct RunLock {
    _lock: Flock<File>,
}

pub enum LockError {
    /// Another flow holds it: its pid, when it wrote one.
    Held(Option<u32>),
    Io(std::io::Error),
}

impl RunLock {
    /// Takes the lock of the run in `dir` without waiting, and writes this flow's pid in it
    /// (for the message another flow shows).
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))
            .map_err(LockError::Io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let _ = lock.set_len(0);
                let _ = lock.rewind();
                let _ = lock.write_all(format!("{}\n", std::process::id()).as_bytes());
                Ok(RunLock { _lock: lock })
            }
            Err((_, Errno::EWOULDBLOCK)) => Err(LockError::Held(holder(dir))),
            Err((_, errno)) => Err(LockError::Io(errno.into())),
        }
    }
}

impl Drop for RunLock {
    /// The run is no longer in use: its pid goes, so no later process with that pid looks
    /// like it holds the run.
    fn drop(&mut self) {
        let _ = self._lock.set_len(0);
    }
}

/// The pid written in the run's lock file, if any.
pub fn holder(dir: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(dir.join(LOCK_FILE))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

/// Whether a flow is applying or resuming the run in `dir` now: the process whose pid its
/// lock file holds is alive and has that file open (a pid the system gave to another process
/// since does not count). A look, not a lock: `flow runs` must never stand in the way of a
/// resume.
pub fn in_use(dir: &Path) -> bool {
    let Some(pid) = holder(dir).filter(|pid| *pid != std::process::id()) else {
        return false;
    };
    let lock = std::fs::canonicalize(dir.join(LOCK_FILE)).ok();
    match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).ok() == lock),
        // Another user's flow: its open files are not ours to see; alive is what we know.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Path::new(&format!("/proc/{pid}")).exists()
        }
        Err(_) => false,
    }
}
