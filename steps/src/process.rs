//! Child processes that never outlive their step: each runs in its own process group, and the
//! whole group is killed when the step is cancelled (timeout, Ctrl-C) before it exits.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    pub fn new(child: &tokio::process::Child) -> Self {
        Self {
            pgid: child.id().map(|id| Pid::from_raw(id as i32)),
        }
    }

    /// The child exited by itself: nothing to kill.
    pub fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}
