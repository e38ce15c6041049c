//! What every run is set up with: its id, its reporters, Ctrl-C, and the runner of a plan.

use super::{Global, OutputFormat, exit};
use crate::analyze::Checked;
use crate::context::{Approvals, Interaction};
use crate::event::{Emitter, Mode, Reporter};
use crate::github::StepSummaryReporter;
use crate::live::LiveReporter;
use crate::output::{JsonReporter, PlainReporter};
use crate::param::ResolvedParams;
use crate::run::{RunSettings, Runner};
use crate::secrets::Masker;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The reporters of a run: the view (live on a terminal, plain lines, or JSON), plus the
/// GitHub step summary under Actions, plus `extra` (the journal).
pub(crate) fn emitter(
    global: &Global,
    extra: Vec<Box<dyn Reporter>>,
    masker: Arc<Masker>,
) -> Arc<Emitter> {
    use std::io::IsTerminal;
    let view: Box<dyn Reporter> = match global.output {
        OutputFormat::Json => Box::new(JsonReporter),
        OutputFormat::Human if std::io::stdout().is_terminal() => {
            Box::new(LiveReporter::new(global.verbosity))
        }
        OutputFormat::Human => Box::new(PlainReporter::new(global.verbosity)),
    };
    let mut reporters = vec![view];
    reporters.extend(StepSummaryReporter::from_env().map(|r| Box::new(r) as Box<dyn Reporter>));
    reporters.extend(extra);
    Arc::new(Emitter::new(masker, reporters))
}

/// Ctrl-C (SIGINT) and SIGTERM: the first stops the run cleanly (undo and `finally` still
/// run; commands get SIGTERM, then SIGKILL after `children::GRACE`), the second exits at once
/// (every command killed, the run recorded as interrupted).
///
/// The signals are handled on a thread of their own, not a tokio task: the second one works
/// whatever the runtime's thread is doing (a long template, a blocking call).
pub(crate) fn interrupt_signal() -> tokio::sync::watch::Receiver<bool> {
    static SENDER: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (sender, _) = tokio::sync::watch::channel(false);
            if let Err(e) = signal_thread(sender.clone()) {
                eprintln!("warning: Ctrl-C will not stop the run cleanly: {e}");
            }
            sender
        })
        .subscribe()
}

/// The write end of the pipe the signal handler writes a byte to for each signal.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: nix::libc::c_int) {
    // Only async-signal-safe calls here: one write(2), errno kept as it was.
    let errno = nix::errno::Errno::last_raw();
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: a one-byte write from a valid buffer to a non-blocking socket.
        unsafe {
            nix::libc::write(fd, [1u8].as_ptr().cast(), 1);
        }
    }
    nix::errno::Errno::set_raw(errno);
}

fn signal_thread(sender: tokio::sync::watch::Sender<bool>) -> std::io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::io::Read;
    use std::os::fd::IntoRawFd;
    let (mut reader, writer) = std::os::unix::net::UnixStream::pair()?;
    // A burst of signals must never block the handler.
    writer.set_nonblocking(true)?;
    SIGNAL_PIPE.store(writer.into_raw_fd(), Ordering::Relaxed);
    std::thread::Builder::new()
        .name("flow-signals".into())
        .spawn(move || {
            let mut count = 0;
            let mut byte = [0u8; 1];
            loop {
                match reader.read(&mut byte) {
                    Ok(1) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    _ => return,
                }
                count += 1;
                if count == 1 {
                    eprintln!("\ninterrupted: stopping (press Ctrl-C again to exit at once)");
                    sender.send_replace(true);
                } else {
                    crate::children::kill_all();
                    run_second_signal_hook();
                    std::process::exit(exit::INTERRUPTED);
                }
            }
        })?;
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only makes async-signal-safe calls.
        unsafe { sigaction(signal, &action) }.map_err(std::io::Error::from)?;
    }
    Ok(())
}

type Hook = Box<dyn FnOnce() + Send>;

static SECOND_SIGNAL_HOOK: Mutex<Option<Hook>> = Mutex::new(None);

/// Sets (or with `None`, clears) what runs on a second signal just before flow exits: `apply`
/// records the run's end as interrupted in its journal.
pub(crate) fn on_second_signal(hook: Option<Hook>) {
    *SECOND_SIGNAL_HOOK.lock().unwrap_or_else(|e| e.into_inner()) = hook;
}

/// Runs the hook on a thread of its own, waiting for it at most a second: exiting at once
/// matters more than the record.
fn run_second_signal_hook() {
    let Some(hook) = SECOND_SIGNAL_HOOK
        .try_lock()
        .ok()
        .and_then(|mut hook| hook.take())
    else {
        return;
    };
    let (done, finished) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("flow-exit".into())
        .spawn(move || {
            hook();
            let _ = done.send(());
        });
    if spawned.is_ok() {
        let _ = finished.recv_timeout(std::time::Duration::from_secs(1));
    }
}

/// A run id that sorts by time: `20261123-021758-4f2a`.
pub fn new_run_id() -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{salt:04x}", now.strftime("%Y%m%d-%H%M%S"))
}

pub(crate) fn plan_runner(
    checked: Arc<Checked>,
    params: ResolvedParams,
    offline: bool,
    whole_reads: bool,
    emitter: Arc<Emitter>,
) -> Arc<Runner> {
    let settings = RunSettings {
        run_id: new_run_id(),
        mode: Mode::Plan,
        concurrency: 1,
        offline,
        whole_reads,
        run_dir: None,
    };
    let interaction = Interaction::new(Box::new(crate::prompt::NoTerminal), Approvals::default());
    Runner::new(
        checked,
        params,
        settings,
        emitter,
        Arc::new(interaction),
        interrupt_signal(),
    )
}
