//! Reading Redis's files where they are: on this machine, or in its pod through
//! `kubectl exec` (a pod's filesystem is its own: `/data/dump.rdb` on this machine is some
//! other file, or none). `redis.backup` copies the RDB and AOF files out through this.

use super::backup_copy::{partial_path, private_file};
use super::kubernetes::{KubernetesTarget, last_line, spawn_error};
use flow_engine::children::GroupGuard;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How long reading one file or listing a folder in a pod may take.
const POD_READ_LIMIT: Duration = Duration::from_secs(600);

/// Where the server's files are read from.
pub enum ServerFiles {
    /// The server's `dir` is on this machine.
    Local,
    /// In a pod (`pod` as kubectl is given it: `pod/redis-0`).
    Pod {
        target: KubernetesTarget,
        pod: String,
    },
}

impl ServerFiles {
    /// Writes the server's file `src` into `to`.
    pub async fn copy_into(&self, src: &str, to: std::fs::File) -> io::Result<()> {
        match self {
            ServerFiles::Local => {
                let src = Path::new(src).to_path_buf();
                tokio::task::spawn_blocking(move || {
                    let mut to = to;
                    io::copy(&mut std::fs::File::open(&src)?, &mut to)?;
                    to.sync_all()
                })
                .await
                .map_err(io::Error::other)?
            }
            ServerFiles::Pod { target, pod } => self.exec_to(target, pod, &["cat", src], to).await,
        }
    }

    /// Copies the server's file `src` to `dest`, in a folder of flow's own making, as a 0600
    /// file that appears whole (written beside it, then renamed); returns the bytes copied.
    pub async fn copy_private(&self, src: &str, dest: &Path) -> io::Result<u64> {
        let partial = partial_path(dest);
        let copied = match private_file(&partial) {
            Ok(file) => self.copy_into(src, file).await,
            Err(error) => Err(error),
        };
        let finished = copied.and_then(|()| {
            let bytes = std::fs::metadata(&partial)?.len();
            std::fs::rename(&partial, dest)?;
            Ok(bytes)
        });
        if finished.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        finished
    }

    /// The names of the regular files in the server's folder `dir`.
    pub async fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        match self {
            ServerFiles::Local => {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(dir)? {
                    let entry = entry?;
                    if entry.file_type()?.is_file() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                Ok(names)
            }
            ServerFiles::Pod { target, pod } => {
                // `find -type f` where there is one; `ls` (an AOF folder holds files only)
                // in a minimal image.
                let script = "find \"$1\" -mindepth 1 -maxdepth 1 -type f -exec basename {} \\; 2>/dev/null || ls -1A \"$1\"";
                let listed = self
                    .exec_text(target, pod, &["sh", "-c", script, "sh", dir])
                    .await?;
                Ok(listed.lines().map(str::to_string).collect())
            }
        }
    }

    /// The server's file `path` as text.
    pub async fn read_text(&self, path: &str) -> io::Result<String> {
        match self {
            ServerFiles::Local => std::fs::read_to_string(path),
            ServerFiles::Pod { target, pod } => self.exec_text(target, pod, &["cat", path]).await,
        }
    }

    /// The size of the server's file `path`, when it can be read from here.
    pub async fn size(&self, path: &str) -> Option<u64> {
        match self {
            ServerFiles::Local => tokio::fs::metadata(path).await.ok().map(|m| m.len()),
            ServerFiles::Pod { target, pod } => self
                .exec_text(target, pod, &["stat", "-c", "%s", path])
                .await
                .ok()?
                .trim()
                .parse()
                .ok(),
        }
    }

    async fn exec_text(
        &self,
        target: &KubernetesTarget,
        pod: &str,
        command: &[&str],
    ) -> io::Result<String> {
        let args = exec_args(target, pod, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        target
            .run(&args, POD_READ_LIMIT)
            .await
            .map(|out| String::from_utf8_lossy(&out).into_owned())
            .map_err(pod_error)
    }

    /// `kubectl exec POD -- COMMAND > file`.
    async fn exec_to(
        &self,
        target: &KubernetesTarget,
        pod: &str,
        command: &[&str],
        file: std::fs::File,
    ) -> io::Result<()> {
        let args = exec_args(target, pod, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut kubectl = target.kubectl(&args);
        kubectl.stdout(Stdio::from(file)).stderr(Stdio::piped());
        let child = kubectl
            .spawn()
            .map_err(|e| io::Error::other(spawn_error(&e)))?;
        let mut guard = GroupGuard::new(&child);
        let output = tokio::time::timeout(POD_READ_LIMIT, child.wait_with_output())
            .await
            .map_err(|_| io::Error::other("kubectl exec did not finish within 10m"))??;
        guard.disarm();
        if output.status.success() {
            Ok(())
        } else {
            Err(pod_error(
                last_line(&output.stderr).unwrap_or_else(|| "kubectl exec failed".into()),
            ))
        }
    }
}

/// A failure in the pod as an I/O error; a missing file is `NotFound` (an AOF rewrite may
/// remove a file between the listing and the copy).
fn pod_error(message: String) -> io::Error {
    if message.contains("No such file or directory") {
        io::Error::new(io::ErrorKind::NotFound, message)
    } else {
        io::Error::other(message)
    }
}

/// `exec POD [-c CONTAINER] -- COMMAND…`.
fn exec_args(target: &KubernetesTarget, pod: &str, command: &[&str]) -> Vec<String> {
    let mut args = vec!["exec".to_string(), pod.to_string()];
    if let Some(container) = &target.container {
        args.extend(["-c".to_string(), container.clone()]);
    }
    args.push("--".into());
    args.extend(command.iter().map(|c| c.to_string()));
    args
}
