//! The process groups of the commands steps are running. Each command runs in its own group
//! so that cancelling its step (timeout, Ctrl-C) ends everything it started; and a second
//! Ctrl-C, which exits at once, takes every group still running along.
//!
//! Cancelling is graceful: the group gets SIGTERM (a command's `trap … TERM` runs), then
//! SIGKILL if anything of it is still running `GRACE` later. A second Ctrl-C kills at once.
//!
//! Commands also die with flow when flow itself is killed (`kill -9`, a crash, an OOM kill):
//! - each command's first process gets `PR_SET_PDEATHSIG` (SIGTERM): the kernel signals it
//!   when flow dies. That reaches only that process, not what it started (a shell's
//!   children), and a parent-death signal is not inherited across `fork`;
//! - so a supervisor — a small process forked from flow at the first command, which does
//!   nothing but read a pipe whose only writer is flow — is told every group flow starts and
//!   ends. When flow dies, the pipe reads end-of-file and the supervisor ends each group
//!   still registered the same graceful way (SIGTERM, SIGKILL after `GRACE`), then exits.
//! - what runs on another host (an `ssh.exec` command) is out of reach of signals: its step
//!   leaves a [`LastWill`] with the supervisor, a command (the remote kill) that the
//!   supervisor runs first when flow dies, while the connections it goes through are still up.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a cancelled command has between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Groups of commands that are running.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// Groups sent SIGTERM, with when they get SIGKILL.
static TERMINATING: Mutex<Vec<(i32, Instant)>> = Mutex::new(Vec::new());
/// Wakes the thread that sends SIGKILL when a group starts terminating.
static TERMINATING_ADDED: Condvar = Condvar::new();

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes a command ready to run as a step's command: in its own process group, ended by
/// `GroupGuard` (not by tokio's kill-on-drop, which would SIGKILL it at once), and ended with
/// flow when flow dies.
///
/// The parent-death signal fires when the *thread* that spawned the command exits: spawn from
/// the runtime's thread (flow's main thread), never from a short-lived thread.
pub fn prepare(command: &mut tokio::process::Command) {
    supervisor();
    let parent = nix::unistd::getpid();
    command.process_group(0).kill_on_drop(false);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // flow died between the fork and the prctl: its death signal was missed.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Ends a child's process group when dropped (SIGTERM, then SIGKILL after `GRACE`), unless
/// the child exited by itself.
pub struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    /// For a child spawned after `prepare`: its pid is its group id.
    pub fn new(child: &tokio::process::Child) -> Self {
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        if let Some(pgid) = pgid {
            lock(&RUNNING).insert(pgid);
            tell_supervisor(Message::Started, pgid);
        }
        Self { pgid }
    }

    /// The child exited by itself: nothing to end.
    pub fn disarm(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            lock(&RUNNING).remove(&pgid);
            tell_supervisor(Message::Ended, pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            lock(&RUNNING).remove(&pgid);
            terminate(pgid);
        }
    }
}

/// Sends SIGTERM to a group (and SIGCONT, should it be stopped) and hands it to the thread
/// that sends SIGKILL at the end of the grace period.
fn terminate(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
    lock(&TERMINATING).push((pgid, Instant::now() + GRACE));
    escalator();
    TERMINATING_ADDED.notify_all();
}

/// Whether any process of the group is still running. A zombie does not count: a command's
/// background processes are orphans once its shell exits, and whoever reaps orphans (init,
/// a container's first process) may take seconds to.
fn group_exists(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return true;
    };
    processes.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses.
        let mut fields = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest)
            .unwrap_or("")
            .split(' ');
        let state = fields.next().unwrap_or("Z");
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(pgid) && !matches!(state, "Z" | "X")
    })
}

/// Starts (once) the thread that sends SIGKILL to groups still there after their grace
/// period, and forgets groups that ended.
fn escalator() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("flow-children".into())
            .spawn(|| {
                loop {
                    let mut terminating = lock(&TERMINATING);
                    while terminating.is_empty() {
                        terminating = TERMINATING_ADDED
                            .wait(terminating)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    sweep(&mut terminating);
                    drop(terminating);
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
    });
}

/// Forgets the groups that ended; SIGKILLs those past their grace period.
fn sweep(terminating: &mut Vec<(i32, Instant)>) {
    let now = Instant::now();
    terminating.retain(|&(pgid, deadline)| {
        let ended = if !group_exists(pgid) {
            true
        } else if now >= deadline {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            true
        } else {
            false
        };
        if ended {
            tell_supervisor(Message::Ended, pgid);
        }
        !ended
    });
}

/// Waits until every group sent SIGTERM has ended (at most `GRACE`, after which it is killed):
/// a cancelled step's command has finished its cleanup before anything else runs.
pub async fn settle() {
    // Steps aborted a moment ago are dropped (and their groups sent SIGTERM) when the runtime
    // next gets to them: let it.
    tokio::task::yield_now().await;
    loop {
        let pending = {
            let mut terminating = lock(&TERMINATING);
            sweep(&mut terminating);
            !terminating.is_empty()
        };
        if !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills every process group still running or terminating, at once (before exiting on a
/// second Ctrl-C).
pub fn kill_all() {
    let running = std::mem::take(&mut *lock(&RUNNING));
    let terminating = std::mem::take(&mut *lock(&TERMINATING));
    for pgid in running
        .into_iter()
        .chain(terminating.into_iter().map(|(pgid, _)| pgid))
    {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        tell_supervisor(Message::Ended, pgid);
    }
}

#[derive(Clone, Copy)]
enum Message {
    Started = 1,
    Ended = 2,
    /// Followed by the length of an argv (4 bytes) and the argv, each argument NUL-ended.
    WillMade = 3,
    WillWithdrawn = 4,
}

/// A command the supervisor runs if flow dies (`kill -9`, a crash, an OOM kill) while this
/// is alive — before it ends the groups it watches, so a connection the command goes
/// through (an SSH control master) is still up. Withdrawn when dropped.
///
/// For what signals cannot reach: a command flow started on another host.
pub struct LastWill {
    id: i32,
}

impl LastWill {
    /// Leaves `argv` (its program an absolute path: the supervisor cannot search `PATH`) with
    /// the supervisor. `None` when it cannot take it: no supervisor, or an argv longer than
    /// `WILL_BYTES` or with more than `WILL_ARGS_MAX` arguments.
    pub fn new(argv: &[&std::ffi::OsStr]) -> Option<LastWill> {
        use std::os::unix::ffi::OsStrExt;
        use std::sync::atomic::{AtomicI32, Ordering};
        static NEXT_ID: AtomicI32 = AtomicI32::new(1);
        if argv.is_empty()
            || argv.len() >= WILL_ARGS_MAX
            || !argv[0].as_bytes().starts_with(b"/")
            || argv.iter().any(|a| a.as_bytes().contains(&0))
        {
            return None;
        }
        let mut bytes = Vec::new();
        for arg in argv {
            bytes.extend_from_slice(arg.as_bytes());
            bytes.push(0);
        }
        if bytes.len() > WILL_BYTES {
            return None;
        }
        supervisor();
        let Some(Some(pipe)) = SUPERVISOR.get() else {
            return None;
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut message = Vec::with_capacity(12 + bytes.len());
        message.extend_from_slice(&(Message::WillMade as i32).to_ne_bytes());
        message.extend_from_slice(&id.to_ne_bytes());
        message.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
        message.extend_from_slice(&bytes);
        // One writer at a time (the lock), so the message arrives whole.
        lock(pipe).write_all(&message).ok()?;
        Some(LastWill { id })
    }
}

impl Drop for LastWill {
    fn drop(&mut self) {
        tell_supervisor(Message::WillWithdrawn, self.id);
    }
}

/// The most last wills the supervisor keeps at once, and the room each has.
const WILLS_MAX: usize = 256;
const WILL_BYTES: usize = 2048;
const WILL_ARGS_MAX: usize = 32;
/// How long the supervisor lets the last wills run before it ends what they go through.
const WILL_WAIT: Duration = Duration::from_secs(5);

/// A process group flow did not spawn itself but must not outlive it (an SSH control master,
/// which daemonizes into a session of its own): the supervisor ends it if flow dies.
pub fn outlive_not(pgid: i32) {
    supervisor();
    tell_supervisor(Message::Started, pgid);
}

/// The group of `outlive_not` ended normally (the master was closed).
pub fn ended_normally(pgid: i32) {
    tell_supervisor(Message::Ended, pgid);
}

/// flow's end of the supervisor's pipe; `None` when the supervisor could not be started.
static SUPERVISOR: OnceLock<Option<Mutex<std::io::PipeWriter>>> = OnceLock::new();

/// The most groups the supervisor tracks at once (more are still ended by their parent-death
/// signal, only not their children).
const SUPERVISED_MAX: usize = 4096;

fn tell_supervisor(message: Message, pgid: i32) {
    if let Some(Some(pipe)) = SUPERVISOR.get() {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(message as i32).to_ne_bytes());
        bytes[4..].copy_from_slice(&pgid.to_ne_bytes());
        // 8 bytes, less than PIPE_BUF: one atomic write.
        let _ = lock(pipe).write_all(&bytes);
    }
}

/// The supervisor's memory, allocated before the fork (the supervisor allocates nothing).
struct Ledger {
    /// Groups to end.
    slots: Vec<i32>,
    /// Last wills: their ids (0: free), lengths and argv bytes.
    will_ids: Vec<i32>,
    will_lens: Vec<usize>,
    wills: Vec<u8>,
}

/// Starts the supervisor once.
fn supervisor() {
    SUPERVISOR.get_or_init(|| {
        let (reader, writer) = std::io::pipe().ok()?;
        let mut ledger = Ledger {
            slots: vec![0i32; SUPERVISED_MAX],
            will_ids: vec![0i32; WILLS_MAX],
            will_lens: vec![0usize; WILLS_MAX],
            wills: vec![0u8; WILLS_MAX * WILL_BYTES],
        };
        let read_fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        // SAFETY: the child only makes async-signal-safe calls (see `supervise`) and never
        // returns; it allocates nothing (the ledger is allocated before the fork).
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => unsafe { supervise(read_fd, &mut ledger) },
            Ok(nix::unistd::ForkResult::Parent { .. }) => {
                drop(reader);
                Some(Mutex::new(writer))
            }
            Err(_) => None,
        }
    });
}

/// Reads exactly `buf.len()` bytes from fd 0; false at end-of-file or an error.
///
/// # Safety
/// Async-signal-safe: only `read`.
unsafe fn read_exact(buf: &mut [u8]) -> bool {
    use nix::libc;
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::read(0, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        } else {
            return false;
        }
    }
    true
}

/// The supervisor: records the groups flow reports and the last wills it leaves; when
/// flow's end of the pipe closes, runs the last wills, then ends the groups still
/// registered. Runs in a child forked from a multi-threaded process, so it makes only
/// async-signal-safe calls.
unsafe fn supervise(read_fd: i32, ledger: &mut Ledger) -> ! {
    use nix::libc;
    // SAFETY (whole function): plain system calls on our own fds and on process groups.
    unsafe {
        // Ctrl-C on the terminal, or a SIGTERM to flow's group, is for flow: the supervisor
        // must outlive flow to do its job. It also leaves flow's process group.
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(signal, libc::SIG_IGN);
        }
        libc::setpgid(0, 0);
        // Keep only the pipe (as fd 0): holding flow's other fds would keep its stdout open
        // after it exits, or a command's stdin from ever reading end-of-file.
        if read_fd != 0 {
            libc::dup2(read_fd, 0);
        }
        if libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32) != 0 {
            for fd in 1..65536 {
                libc::close(fd);
            }
        }
        let slots = &mut ledger.slots[..];
        let mut count = 0usize;
        let mut message = [0u8; 8];
        while read_exact(&mut message) {
            let kind = i32::from_ne_bytes([message[0], message[1], message[2], message[3]]);
            let id = i32::from_ne_bytes([message[4], message[5], message[6], message[7]]);
            if kind == Message::Started as i32 {
                if count < slots.len() {
                    slots[count] = id;
                    count += 1;
                }
            } else if kind == Message::Ended as i32 {
                if let Some(i) = slots[..count].iter().position(|&p| p == id) {
                    slots[i] = slots[count - 1];
                    count -= 1;
                }
            } else if kind == Message::WillMade as i32 {
                let mut len = [0u8; 4];
                if !read_exact(&mut len) {
                    break;
                }
                let len = u32::from_ne_bytes(len) as usize;
                let free = ledger.will_ids.iter().position(|&w| w == 0);
                match free {
                    Some(i) if len <= WILL_BYTES && id != 0 => {
                        let room = &mut ledger.wills[i * WILL_BYTES..i * WILL_BYTES + len];
                        if !read_exact(room) {
                            break;
                        }
                        ledger.will_ids[i] = id;
                        ledger.will_lens[i] = len;
                    }
                    // No room: read past it (flow never sends more than `WILL_BYTES`).
                    _ => {
                        let mut left = len;
                        let mut sink = [0u8; 256];
                        while left > 0 {
                            let n = left.min(sink.len());
                            if !read_exact(&mut sink[..n]) {
                                break;
                            }
                            left -= n;
                        }
                    }
                }
            } else if kind == Message::WillWithdrawn as i32
                && let Some(i) = ledger.will_ids.iter().position(|&w| w == id && id != 0)
            {
                ledger.will_ids[i] = 0;
            }
        }
        // flow is gone. First its last wills, while what they go through is still up.
        run_wills(ledger);
        let slots = &ledger.slots[..];
        for &pgid in &slots[..count] {
            libc::kill(-pgid, libc::SIGTERM);
            libc::kill(-pgid, libc::SIGCONT);
        }
        let mut waited = Duration::ZERO;
        while waited < GRACE && slots[..count].iter().any(|&p| libc::kill(-p, 0) == 0) {
            nap();
            waited += NAP;
        }
        for &pgid in &slots[..count] {
            libc::kill(-pgid, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}

const NAP: Duration = Duration::from_millis(50);

/// Sleeps `NAP`. Async-signal-safe.
fn nap() {
    let step = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: NAP.as_nanos() as _,
    };
    // SAFETY: nanosleep with a valid timespec.
    unsafe { nix::libc::nanosleep(&step, std::ptr::null_mut()) };
}

/// Runs each last will still registered (stdin, stdout and stderr on /dev/null), all at
/// once, and waits for them up to `WILL_WAIT`; one still running then is killed.
/// Async-signal-safe: fork, exec, wait.
unsafe fn run_wills(ledger: &mut Ledger) {
    use nix::libc;
    let mut pids = [0 as libc::pid_t; WILLS_MAX];
    // SAFETY (whole function): fork and exec of argv built in preallocated memory.
    unsafe {
        for (i, pid) in pids.iter_mut().enumerate() {
            if ledger.will_ids[i] == 0 {
                continue;
            }
            let bytes = &ledger.wills[i * WILL_BYTES..i * WILL_BYTES + ledger.will_lens[i]];
            let mut argv = [std::ptr::null::<libc::c_char>(); WILL_ARGS_MAX + 1];
            let mut argc = 0;
            let mut start = 0;
            for (at, &b) in bytes.iter().enumerate() {
                if b == 0 && argc < WILL_ARGS_MAX {
                    argv[argc] = bytes[start..].as_ptr().cast();
                    argc += 1;
                    start = at + 1;
                }
            }
            if argc == 0 {
                continue;
            }
            match libc::fork() {
                0 => {
                    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                        libc::signal(signal, libc::SIG_DFL);
                    }
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                    if null >= 0 {
                        for fd in 0..3 {
                            libc::dup2(null, fd);
                        }
                    }
                    libc::execv(argv[0], argv.as_ptr());
                    libc::_exit(127);
                }
                child if child > 0 => *pid = child,
                _ => {}
            }
        }
        let mut waited = Duration::ZERO;
        loop {
            for pid in pids.iter_mut().filter(|p| **p > 0) {
                if libc::waitpid(*pid, std::ptr::null_mut(), libc::WNOHANG) != 0 {
                    *pid = 0;
                }
            }
            if pids.iter().all(|&p| p == 0) || waited >= WILL_WAIT {
                break;
            }
            nap();
            waited += NAP;
        }
        for &pid in pids.iter().filter(|&&p| p > 0) {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}
