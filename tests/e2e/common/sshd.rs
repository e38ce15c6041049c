//! A real OpenSSH server for a test: `sshd` on 127.0.0.1 at a free port, with a host key, a
//! client key and configs generated in a temp dir, and an ssh_config that maps test host
//! aliases to it. Stopped when dropped. A missing `sshd` fails the test, saying how to
//! install it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

fn sshd_bin() -> PathBuf {
    for candidate in ["/usr/sbin/sshd", "/usr/bin/sshd"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "sshd is not installed: the SSH tests need a real OpenSSH server.\n\
         Install it with `apt-get install -y openssh-server openssh-client` (scripts/test does)."
    );
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (apt-get install -y openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Starts sshd; the client key is authorized for the user running the tests.
    pub fn start() -> Self {
        let mut server = Self::prepare();
        server.spawn();
        server
    }

    /// Keys, configs and a port, without the server running yet (see `spawn`).
    pub fn prepare() -> Self {
        sshd_bin();
        // sshd insists on its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("authorize");
        let port = super::redis::free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n\
                 UsePAM no\nMaxSessions 100\nMaxStartups 100:30:200\nLogLevel ERROR\n",
                d = d.display()
            ),
        )
        .expect("write sshd_config");
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", host_key.join(" ")),
        )
        .expect("write known_hosts");
        let server = Sshd {
            child: None,
            port,
            dir,
        };
        server.write_config(&["flowtest"]);
        server
    }

    /// Starts the server and waits until it listens.
    pub fn spawn(&mut self) {
        let child = Command::new(sshd_bin())
            .args(["-D", "-e", "-f"])
            .arg(self.dir().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The ssh_config that maps the test aliases to this server.
    pub fn config(&self) -> PathBuf {
        self.dir().join("ssh_config")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir().join("client_key")
    }

    /// Writes the ssh_config: each alias is this server, logged in as the current user.
    pub fn write_config(&self, aliases: &[&str]) {
        let d = self.dir();
        let user = String::from_utf8_lossy(
            &Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .trim()
        .to_string();
        std::fs::write(
            self.config(),
            format!(
                "Host {}\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  IdentityFile {d}/client_key\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  LogLevel ERROR\n",
                aliases.join(" "),
                self.port,
                d = d.display()
            ),
        )
        .expect("write ssh_config");
    }

    /// The SSH block of a playbook that reaches this server as `alias`.
    pub fn block(&self, alias: &str) -> String {
        format!(
            "{{ host: {alias}, config: \"{}\", connect_timeout: 5s }}",
            self.config().display()
        )
    }

    /// Makes this server a host that lies: every command of the client key runs with
    /// `fakes` (name → shell script) first on its `PATH` — a `find`, `cat` or `sha256sum`
    /// answering what a compromised host would. (A forced command in authorized_keys, as
    /// sshd has it; commands under `sudo` get sudo's own PATH.)
    pub fn shadow_commands(&self, fakes: &[(&str, &str)]) {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir();
        let bin = d.join("fake-bin");
        std::fs::create_dir_all(&bin).expect("fake bin");
        for (name, script) in fakes {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write fake");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("chmod fake");
        }
        let login = d.join("fake-login");
        std::fs::write(
            &login,
            format!(
                "#!/bin/sh\nPATH={}:$PATH; export PATH\nexec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
                bin.display()
            ),
        )
        .expect("write fake login");
        std::fs::set_permissions(&login, std::fs::Permissions::from_mode(0o755))
            .expect("chmod fake login");
        let key = std::fs::read_to_string(d.join("client_key.pub")).expect("client key");
        std::fs::write(
            d.join("authorized_keys"),
            format!("command=\"{}\" {key}", login.display()),
        )
        .expect("write authorized_keys");
    }

    /// Writes the ssh_config with `extra` after the test aliases' block (a bastion's).
    pub fn append_config(&self, extra: &str) {
        let mut config = std::fs::read_to_string(self.config()).expect("ssh_config");
        config.push_str(extra);
        std::fs::write(self.config(), config).expect("write ssh_config");
    }

    /// This server's host key line for `name` in known_hosts form (`[name]:port key`).
    pub fn known_hosts_line(&self, name: &str) -> String {
        let key = std::fs::read_to_string(self.dir().join("host_key.pub")).expect("host key");
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        format!("[{name}]:{} {}\n", self.port, key.join(" "))
    }

    /// The ssh client processes talking to this server (control masters and commands).
    pub fn client_processes(&self) -> usize {
        let needle = self.config().display().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("ssh ") && c.contains(&needle))
            .count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
