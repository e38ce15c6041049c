//! A real pseudo-terminal for `flow`, from util-linux `script`, shared by the terminal tests:
//! the screen is read as it is drawn, keys are typed only after a prompt has appeared.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Terminal {
    child: std::process::Child,
    pub screen: String,
    chunks: mpsc::Receiver<String>,
}

impl Terminal {
    /// Starts `flow ARGS` in `dir` on a pseudo-terminal.
    pub fn start(dir: &std::path::Path, args: &str) -> Self {
        Self::start_with_env(dir, args, &[])
    }

    /// As `start`, with variables added to flow's environment (e.g. `Moto::env()`).
    pub fn start_with_env(dir: &std::path::Path, args: &str, env: &[(String, String)]) -> Self {
        let script = which("script").unwrap_or_else(|| {
            panic!("`script` is missing: install it with `apt-get install bsdutils`")
        });
        let mut child = Command::new(script)
            .args([
                "-qec",
                &format!("{} {args}", env!("CARGO_BIN_EXE_flow")),
                "/dev/null",
            ])
            .current_dir(dir)
            .env("TERM", "xterm")
            .env_remove("FLOW_STATE_DIR")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(env.iter().map(|(k, v)| (k, v)))
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

    /// Waits until `text` has been drawn (at most 20 s).
    pub fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.screen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.screen.push_str(&chunk),
                Err(_) => panic!("{text:?} never appeared; the screen was:\n{}", self.screen),
            }
        }
    }

    /// Everything drawn during the next `pause`.
    pub fn drawn_during(&mut self, pause: Duration) -> String {
        let deadline = Instant::now() + pause;
        let mut drawn = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => drawn.push_str(&chunk),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    break;
                }
            }
        }
        self.screen.push_str(&drawn);
        drawn
    }

    pub fn type_keys(&mut self, keys: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(keys.as_bytes()).expect("type");
        stdin.flush().expect("flush");
    }

    /// Waits for `text`, then types `keys`.
    pub fn answer(&mut self, text: &str, keys: &str) {
        self.wait_for(text);
        self.type_keys(keys);
    }

    /// Waits (at most 30 s) for flow to exit: its exit code and the whole screen.
    pub fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "flow did not finish in 30 s; the screen was:\n{}",
                    self.screen
                );
            }
            while let Ok(chunk) = self.chunks.try_recv() {
                self.screen.push_str(&chunk);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.child.stdin.take());
        while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_secs(2)) {
            self.screen.push_str(&chunk);
        }
        (status.code().unwrap_or(-1), self.screen)
    }
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.exists())
}
