//! Test harness: write a playbook into a temp dir, run the real `flow` binary there, and
//! assert on what a user sees — exit code, stdout, stderr, files left behind.
#![allow(dead_code)]

pub mod cfn_stub;
pub mod channels;
pub mod docker;
pub mod k8s;
pub mod moto;
pub mod moto_iam;
pub mod pty;
pub mod redis;
pub mod run;
pub mod serve;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Variables of the environment a test run of `flow` never inherits: they would change where
/// the journal goes, make the output GitHub's, or point the AWS steps at a real account.
pub const CLEARED_ENV: &[&str] = &[
    "FLOW_STATE_DIR",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// No `flow` a test starts runs longer than this: a hang fails the test instead of the suite.
pub const TIME_LIMIT: Duration = Duration::from_secs(120);

pub struct Flow {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
}

/// What a run of `flow` printed and how it exited, with the assertions tests make on it.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// What a run of `flow` in a `Flow` folder left: what it printed (derefs to `Ran`) and the
/// folder it ran in.
pub struct Outcome {
    pub ran: Ran,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for Outcome {
    type Target = Ran;

    fn deref(&self) -> &Ran {
        &self.ran
    }
}

impl Outcome {
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("read {name}: {e}\n{}", self.context()))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Ran {
    pub fn context(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            expected,
            "unexpected exit code\n{}",
            self.context()
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// The whole stderr, exactly.
    pub fn stderr_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr, expected, "stderr differs\n{}", self.context());
        self
    }

    /// stdout and stderr together, for "never shows X" checks.
    pub fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The JSON events of a `--output json` run; every stdout line must parse.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l}\n{}", self.context())
                })
            })
            .collect()
    }
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

impl Flow {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// Writes `playbook.yaml` (the usual file the args refer to).
    pub fn playbook(self, yaml: &str) -> Self {
        self.file("playbook.yaml", yaml)
    }

    pub fn file(self, name: &str, content: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(path, content).expect("write file");
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(self) -> Outcome {
        let mut command = Command::new(flow_bin());
        command.args(&self.args).current_dir(self.dir.path());
        for var in CLEARED_ENV {
            command.env_remove(var);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn flow");
        if let Some(text) = &self.stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        let stdout = run::reader(child.stdout.take().expect("stdout"));
        let stderr = run::reader(child.stderr.take().expect("stderr"));
        let code = run::wait_bounded(&mut child, TIME_LIMIT);
        let stderr = stderr.join().expect("stderr reader");
        assert!(!stderr.contains("panicked"), "flow panicked:\n{stderr}");
        Outcome {
            ran: Ran {
                code,
                stdout: stdout.join().expect("stdout reader"),
                stderr,
            },
            dir: self.dir,
        }
    }
}

pub fn flow_bin() -> &'static str {
    env!("CARGO_BIN_EXE_flow")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every file under `dir` (a state dir, say), concatenated: for "never written" checks.
pub fn read_tree(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                text.push_str(&String::from_utf8_lossy(
                    &std::fs::read(&path).unwrap_or_default(),
                ));
            }
        }
    }
    text
}
