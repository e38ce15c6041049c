//! The process groups of the commands steps are running. Each command runs in its own group
//! so that cancelling its step (timeout, Ctrl-C) kills everything it started; and a second
//! Ctrl-C, which exits at once, takes every group still running along.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::sync::Mutex;

static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Kills a child's process group when dropped, unless the child exited by itself.
pub struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    /// For a child spawned with `process_group(0)`: its pid is its group id.
    pub fn new(child: &tokio::process::Child) -> Self {
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        if let Some(pgid) = pgid {
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pgid);
        }
        Self { pgid }
    }

    /// The child exited by itself: nothing to kill.
    pub fn disarm(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pgid);
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// Kills every process group still running (before exiting on a second Ctrl-C).
pub fn kill_all() {
    let groups = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}
