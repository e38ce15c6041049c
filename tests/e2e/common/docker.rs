//! The docker stand-in (tests/fixtures/docker) for a test: a Docker host of its own (a temp
//! `$FAKE_DOCKER` owned by this test process, so a test killed midway leaves no container
//! running) and ProspectFlow's checkout as seed 001 lays it out — `infra/redis/`
//! (docker-compose.yml, redis.conf, data/) — copied into a temp folder, with a free host
//! port. `flow` runs in that folder with the stand-in first on PATH, so the shipped
//! playbooks' defaults (`infra/redis`, `infra/redis/data`, `docker-compose`) are the ones
//! exercised. A machine that cannot run the stand-in fails the test saying what to install.
#![allow(dead_code)]

use super::Ran;
use super::redis::{Reply, free_port, raw_command};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct DockerHost {
    /// The operator's checkout: `infra/redis/…`; flow runs here.
    pub work: tempfile::TempDir,
    state: tempfile::TempDir,
    pub port: u16,
    /// A small filesystem mounted at `infra/redis/data` (a disk that fills up).
    small_disk: bool,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture");
        }
    }
}

/// Fails with what to install when this machine cannot run the stand-in's containers.
fn check_prerequisites() {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        works("python3", &["-c", "import yaml"]),
        "the docker stand-in needs python3 with PyYAML: apt-get install python3 python3-yaml"
    );
    assert!(
        works("ip", &["-V"]) && works("nsenter", &["--version"]),
        "the docker stand-in needs iproute2 (ip) and util-linux (nsenter, unshare): \
         apt-get install iproute2 util-linux"
    );
    let mut unshare = vec!["--mount", "--net", "--uts"];
    if !nix_is_root() {
        unshare.push("--map-root-user");
    }
    unshare.push("true");
    assert!(
        works("unshare", &unshare),
        "the docker stand-in runs containers in Linux namespaces: run the tests as root, or \
         enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// "PID START" of this process, for `$FAKE_DOCKER/owner`.
fn owner_line() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let start = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .expect("start time in /proc/self/stat");
    format!("{} {start}", std::process::id())
}

impl DockerHost {
    /// The seed's layout with Redis not started yet (`up` starts it).
    pub fn new() -> Self {
        check_prerequisites();
        let work = tempfile::tempdir().expect("work dir");
        copy_tree(&fixtures().join("prospectflow"), work.path());
        std::fs::create_dir_all(work.path().join("infra/redis/data")).expect("data dir");
        let state = tempfile::tempdir().expect("docker state dir");
        std::fs::write(state.path().join("owner"), owner_line()).expect("owner file");
        DockerHost {
            work,
            state,
            port: free_port(),
            small_disk: false,
        }
    }

    /// As `new`, with `infra/redis/data` on a filesystem of `bytes` (a tmpfs), to fill up.
    pub fn with_small_data_disk(bytes: u64) -> Self {
        let mut host = Self::new();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(host.data_dir())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a small tmpfs needs root");
        host.small_disk = true;
        host
    }

    /// `docker-compose up -d` in infra/redis, then waits until Redis answers PING.
    pub fn up(&self) -> &Self {
        self.compose(&["up", "-d"]).code(0);
        self.wait_ready();
        self
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.work.path().join(relative)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path("infra/redis/data")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// PATH with the stand-in first, `FAKE_DOCKER`, the port compose publishes, `REDIS_URL`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PATH".into(),
                format!(
                    "{}:{}",
                    fixtures().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
            (
                "FAKE_DOCKER".into(),
                self.state.path().display().to_string(),
            ),
            ("REDIS_PORT".into(), self.port.to_string()),
            ("REDIS_URL".into(), self.url()),
        ]
    }

    /// A stand-in command (`docker`, `docker-compose`) in infra/redis.
    pub fn run(&self, program: &str, args: &[&str]) -> Ran {
        let out = Command::new(fixtures().join(program))
            .args(args)
            .current_dir(self.path("infra/redis"))
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run the {program} stand-in: {e}"));
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn docker(&self, args: &[&str]) -> Ran {
        self.run("docker", args)
    }

    pub fn compose(&self, args: &[&str]) -> Ran {
        self.run("docker-compose", args)
    }

    /// `flow ARGS` in the checkout, with the stand-in's environment.
    pub fn flow(&self, args: &[&str]) -> Ran {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        super::run::flow(self.work.path(), args, &env)
    }

    /// One Redis command through the published port.
    pub fn redis(&self, args: &[&str]) -> Reply {
        raw_command(self.port, None, args)
            .unwrap_or_else(|e| panic!("redis on port {} did not answer {args:?}: {e}", self.port))
    }

    pub fn cli(&self, args: &[&str]) -> String {
        self.redis(args).to_text()
    }

    pub fn answers(&self) -> bool {
        raw_command(self.port, None, &["PING"]).is_ok_and(|r| r == Reply::Status("PONG".into()))
    }

    /// Waits until Redis answers PING (it may be loading after `start`).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "the redis container did not answer PING within 20s:\n{}",
                self.docker(&["logs", "--tail", "20", "redis"]).context()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `docker inspect -f TEMPLATE redis`, trimmed.
    pub fn inspect(&self, template: &str) -> String {
        let ran = self.docker(&["inspect", "-f", template, "redis"]);
        ran.code(0);
        ran.stdout.trim().to_string()
    }

    /// `redis-check-aof PATH` in the image, with infra/redis/data as its /data (`:ro` or not).
    pub fn check_aof(&self, path: &str, mode: &str) -> Ran {
        let data = format!("{}:/data{mode}", self.data_dir().display());
        self.docker(&[
            "run",
            "--rm",
            "-v",
            &data,
            "redis:7-alpine",
            "redis-check-aof",
            path,
        ])
    }

    /// How many keys an RDB file holds, as redis-check-rdb in the image reads it.
    pub fn keys_in_rdb(&self, file_in_data: &str) -> u64 {
        let data = format!("{}:/data", self.data_dir().display());
        let ran = self.docker(&[
            "run",
            "--rm",
            "-v",
            &data,
            "redis:7-alpine",
            "redis-check-rdb",
            &format!("/data/{file_in_data}"),
        ]);
        ran.code(0);
        ran.stdout
            .lines()
            .find_map(|l| l.strip_prefix("[info] ")?.strip_suffix(" keys read"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no key count from redis-check-rdb:\n{}", ran.context()))
    }
}

impl Default for DockerHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DockerHost {
    /// Every container killed and removed (the owner file would have the shims do it when
    /// this process ends; a test ends before that), then the small disk unmounted.
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in ids.stdout.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        if self.small_disk {
            let _ = Command::new("umount").arg(self.data_dir()).status();
        }
    }
}
