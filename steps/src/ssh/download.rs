//! `ssh.download`: copies a file or folder (recursively) from a host to this machine, over the
//! run's connection to it. The host's names are checked before anything is written (see
//! `remote_listing`) and placed only inside `dest` (see `local_dest`); each file streams to
//! disk (no size is held in memory) through the safe replacement of every local edit, with
//! the host's mode, never wider; symlinks come as symlinks.

use super::local_dest::LocalTree;
use super::remote_listing::{self, Kind};
use super::transfer::{TransferOutputs, bytes_of, join, quote, run, shown, stream_out, wrap};
use super::{Sessions, SshTarget};
use crate::core::safe_file::{NewMode, Replacement};
use flow_engine::prelude::*;
use std::path::{Path, PathBuf};

pub struct SshDownload;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshDownloadParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The file or folder on the host.
    pub src: String,
    /// Where it goes here (relative to where flow runs): the file's path (a file into an
    /// existing folder lands inside it), or the folder the tree lands in.
    pub dest: String,
    /// Permissions of the copied files (default: the host's mode of each, less the umask;
    /// a file replaced keeps its mode, narrowed to the host's — never wider).
    pub mode: Option<FileMode>,
    /// Read as root through `sudo -n` (then, without `mode`, only the owner's bits are kept).
    #[serde(default)]
    pub sudo: bool,
}

impl StepType for SshDownload {
    const NAME: &'static str = "ssh.download";
    const SUMMARY: &'static str = "Copy a file or folder from a host over SSH";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"fetch_dump:
  type: ssh.download
  with:
    host: db1
    src: /var/lib/redis/dump.rdb
    dest: backups/dump.rdb"#;
    type Params = SshDownloadParams;
    type Outputs = TransferOutputs;

    async fn describe(&self, params: &SshDownloadParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Create,
            format!(
                "download {}:{} to {}",
                params.target.display(),
                params.src,
                params.dest
            ),
        )
    }

    async fn apply(
        &self,
        params: SshDownloadParams,
        ctx: &StepContext,
    ) -> Result<TransferOutputs, StepError> {
        let session = ctx.resource::<Sessions>().live(&params.target).await?;
        let host = params.target.display();
        let src = trimmed(&params.src);
        let listing = remote_listing::script(&quote(src.as_bytes()));
        let listed = run(&session, wrap(&listing, params.sudo), None)
            .await
            .map_err(|e| StepError::failed(format!("cannot read {host}:{src}: {e}")))?;
        let entries = remote_listing::parse(&listed)
            .map_err(|e| StepError::failed(format!("cannot download {host}:{src}: {e}")))?;
        // Read as root, the file is not the same person's here: the owner's bits only.
        let narrow = if params.sudo { 0o700 } else { 0o777 };
        let mode_of = |host_mode: u32| match params.mode {
            Some(mode) => NewMode::Exactly(mode.0),
            None => NewMode::CopyOf(host_mode & 0o777 & narrow),
        };
        // Every name placed (folders made, each file's place checked) before a byte is copied.
        let mut files: Vec<(Vec<u8>, PathBuf, NewMode)> = Vec::new();
        let mut links: Vec<(&[u8], &[u8])> = Vec::new();
        let mut tree = None;
        if entries[0].kind == Kind::File {
            let local = single_file_dest(&params.dest, src);
            files.push((src.as_bytes().to_vec(), local, mode_of(entries[0].mode)));
        } else {
            let refused =
                |e: String| StepError::failed(format!("cannot download {host}:{src}: {e}"));
            let folder_mode = |mode: u32| mode & 0o777 & narrow;
            let local = LocalTree::create(Path::new(&params.dest), folder_mode(entries[0].mode))
                .map_err(StepError::Failed)?;
            for entry in &entries[1..] {
                match &entry.kind {
                    Kind::Folder => {
                        local
                            .folder(&entry.relative, folder_mode(entry.mode))
                            .map_err(refused)?;
                    }
                    Kind::File => files.push((
                        join(src.as_bytes(), &entry.relative),
                        local.file(&entry.relative).map_err(refused)?,
                        mode_of(entry.mode),
                    )),
                    Kind::Link(target) => links.push((&entry.relative, target)),
                }
            }
            tree = Some(local);
        }
        let mut outputs = TransferOutputs::new();
        let mut copies: Vec<(Vec<u8>, String)> = Vec::new();
        for (remote, local, mode) in files {
            let (bytes, digest) = copy_file(&session, &remote, &local, mode, params.sudo)
                .await
                .map_err(|e| {
                    StepError::failed(format!("cannot download {host}:{}: {e}", shown(&remote)))
                })?;
            outputs.bytes += bytes;
            outputs.files.push(local.display().to_string());
            copies.push((remote, digest));
        }
        // Last: nothing above is written through a link the host sent.
        if let Some(tree) = &tree {
            for (relative, target) in links {
                let made = tree
                    .link(relative, target)
                    .map_err(|e| StepError::failed(format!("cannot download {host}:{src}: {e}")))?;
                outputs.links.push(shown(bytes_of(&made)));
            }
        }
        let remotes: Vec<Vec<u8>> = copies.iter().map(|(r, _)| r.clone()).collect();
        let digests = super::transfer::remote_digests(&session, &remotes, params.sudo)
            .await
            .map_err(|e| {
                StepError::failed(format!("cannot check the copies of {host}:{src}: {e}"))
            })?;
        if let Some(digests) = digests {
            for ((remote, digest), theirs) in copies.iter().zip(&digests) {
                if digest != theirs {
                    return Err(StepError::failed(format!(
                        "the copy of {host}:{} differs from it (sha256): it changed while it was read?",
                        shown(remote)
                    )));
                }
            }
            outputs.verified = true;
        }
        Ok(outputs)
    }
}

/// `src` without trailing slashes (`/` stays `/`).
fn trimmed(src: &str) -> &str {
    let trimmed = src.trim_end_matches('/');
    if trimmed.is_empty() && !src.is_empty() {
        "/"
    } else {
        trimmed
    }
}

/// Where a single file lands: `dest`, or inside it when it is a folder.
fn single_file_dest(dest: &str, src: &str) -> PathBuf {
    let dest = Path::new(dest);
    if dest.is_dir() {
        let name = src.rsplit('/').next().unwrap_or(src);
        dest.join(name)
    } else {
        dest.to_path_buf()
    }
}

/// Streams the host's file `remote` into `local` through the safe replacement; the bytes
/// copied and their sha256.
async fn copy_file(
    session: &openssh::Session,
    remote: &[u8],
    local: &Path,
    mode: NewMode,
    sudo: bool,
) -> Result<(u64, String), String> {
    if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let cannot_write = |e: std::io::Error| format!("cannot write {}: {e}", local.display());
    let replacement = Replacement::begin(local, mode).map_err(cannot_write)?;
    let mut file = tokio::fs::File::from_std(replacement.writer().map_err(cannot_write)?);
    let mut cat = b"cat -- ".to_vec();
    cat.extend_from_slice(&quote(remote));
    let copied = stream_out(session, wrap(&cat, sudo), &mut file).await?;
    drop(file);
    replacement.commit().await.map_err(cannot_write)?;
    Ok(copied)
}
