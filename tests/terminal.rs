//! On a terminal, `choose` shows its options as a list and `confirm` shows its table and asks.
//! The terminal is a real pseudo-terminal from util-linux `script`; each answer is typed only
//! after its prompt has appeared on screen.

mod common;
use common::flow_bin;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Terminal {
    child: std::process::Child,
    screen: String,
    chunks: mpsc::Receiver<String>,
}

impl Terminal {
    fn start(dir: &std::path::Path, args: &str) -> Self {
        let script = which("script").unwrap_or_else(|| panic!("`script` is missing: install it with `apt-get install bsdutils` (scripts/test does)"));
        let mut child = Command::new(script)
            .args(["-qec", &format!("{} {args}", flow_bin()), "/dev/null"])
            .current_dir(dir)
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start script");
        let mut stdout = child.stdout.take().expect("stdout");
        let (send, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0
                    || send
                        .send(String::from_utf8_lossy(&buffer[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        Self {
            child,
            screen: String::new(),
            chunks,
        }
    }

    /// Waits until `text` has been printed (at most 20 s), then types `keys`.
    fn answer(&mut self, text: &str, keys: &str) {
        self.wait_for(text);
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(keys.as_bytes()).expect("type");
        stdin.flush().expect("flush");
    }

    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.screen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.screen.push_str(&chunk),
                Err(_) => panic!("{text:?} never appeared; the screen was:\n{}", self.screen),
            }
        }
    }

    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().expect("wait");
        drop(self.child.stdin.take());
        while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_secs(2)) {
            self.screen.push_str(&chunk);
        }
        (status.code().unwrap_or(-1), self.screen)
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.exists())
}

const PLAYBOOK: &str = r#"flow: 1
steps:
  pick:
    type: choose
    with:
      prompt: Which backup?
      options: [daily/a.rdb, daily/b.rdb, daily/c.rdb]
      default: daily/a.rdb
  ok:
    type: confirm
    with:
      message: "Restore {{ steps.pick.value }}?"
      show: [{ key: daily/b.rdb, size: 2048 }]
    undo:
      type: file.write
      with: { path: undo.txt, content: undone }
  restore:
    type: file.write
    with: { path: restored.txt, content: "{{ steps.pick.value }}" }
finally:
  after:
    type: file.write
    with: { path: finally.txt, content: "ok {{ steps.ok.status }}" }
"#;

#[test]
fn choose_lists_options_and_confirm_shows_its_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("playbook.yaml"), PLAYBOOK).expect("write");
    let mut terminal = Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.wait_for("daily/c.rdb");
    terminal.answer("Which backup?", "\x1b[B\r");
    terminal.wait_for("size");
    terminal.answer("Restore daily/b.rdb?", "y\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("2048"),
        "the `show` table was not printed:\n{screen}"
    );
    assert!(screen.contains("approved (terminal, by "), "{screen}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("restored.txt")).expect("restored.txt"),
        "daily/b.rdb"
    );
    assert!(!dir.path().join("undo.txt").exists());
}

#[test]
fn declining_on_the_terminal_runs_undo_and_finally_and_exits_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("playbook.yaml"), PLAYBOOK).expect("write");
    let mut terminal = Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.answer("Which backup?", "\r");
    terminal.answer("Restore daily/a.rdb?", "n\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 3, "{screen}");
    assert!(
        !dir.path().join("restored.txt").exists(),
        "a declined run went on:\n{screen}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("finally.txt")).expect("finally ran"),
        "ok declined"
    );
    assert!(screen.contains("declined"), "{screen}");
}
