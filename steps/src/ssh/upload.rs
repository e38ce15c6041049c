//! `ssh.upload`: copies a local file or folder (recursively) to a host, over the run's
//! connection to it; the plan lists what would be copied. Each file streams from disk (no
//! size is held in memory) into a temp file beside its destination, renamed over it once
//! complete, with the local mode, never wider; symlinks go as symlinks.

use super::local_tree::{self, Entry, Kind};
use super::transfer::{
    TransferOutputs, join, quote, remote_digests, run_script, shown, stream_in, wrap,
};
use super::{Sessions, SshTarget};
use flow_engine::prelude::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

pub struct SshUpload;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshUploadParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The local file or folder (relative to where flow runs).
    pub src: String,
    /// Where it goes on the host: the file's path (a file into an existing folder lands
    /// inside it), or the folder the tree lands in.
    pub dest: String,
    /// Permissions of the copied files (default: the local mode of each, less the host's
    /// umask; a file replaced keeps its mode, narrowed to the local one — never wider).
    pub mode: Option<FileMode>,
    /// Write as root through `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
}

impl SshUploadParams {
    /// The entries of `src` with where each goes on the host.
    fn plan(&self) -> Result<Vec<(Entry, Vec<u8>)>, String> {
        let entries = local_tree::walk(Path::new(&self.src))?;
        Ok(entries
            .into_iter()
            .map(|entry| {
                let dest = join(self.dest.as_bytes(), &entry.relative);
                (entry, dest)
            })
            .collect())
    }
}

impl StepType for SshUpload {
    const NAME: &'static str = "ssh.upload";
    const SUMMARY: &'static str = "Copy a local file or folder to a host over SSH";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"helpers:
  type: ssh.upload
  with:
    host: restore-host
    src: scripts/
    dest: /opt/restore
    mode: "0755""#;
    type Params = SshUploadParams;
    type Outputs = TransferOutputs;

    async fn describe(&self, params: &SshUploadParams, _: &PlanContext) -> Description {
        let host = params.target.display();
        // A file another step makes first (a download): nothing to list until apply.
        if flow_engine::evaluate::mentions_unknown(&params.src) {
            return Description::new(
                Action::Create,
                format!("upload {} to {host}:{}", params.src, params.dest),
            );
        }
        let plan = match params.plan() {
            Ok(plan) => plan,
            Err(e) => return Description::new(Action::Failed, e),
        };
        let files = plan
            .iter()
            .filter(|(e, _)| matches!(e.kind, Kind::File))
            .count();
        let links = plan
            .iter()
            .filter(|(e, _)| matches!(e.kind, Kind::Link(_)))
            .count();
        let links = if links > 0 {
            format!(" and {links} symlink(s)")
        } else {
            String::new()
        };
        let mut d = Description::new(
            Action::Create,
            format!("upload {files} file(s){links} to {host}:{}", params.dest),
        );
        let shown_entries: Vec<String> = plan
            .iter()
            .filter_map(|(entry, dest)| match &entry.kind {
                Kind::Folder => None,
                Kind::File => Some(format!("{} → {}", entry.path.display(), shown(dest))),
                Kind::Link(target) => Some(format!(
                    "{} → {} (a symlink to {})",
                    entry.path.display(),
                    shown(dest),
                    shown(target)
                )),
            })
            .collect();
        for line in shown_entries.iter().take(20) {
            d = d.detail(line.clone());
        }
        if shown_entries.len() > 20 {
            d = d.detail(format!("… and {} more", shown_entries.len() - 20));
        }
        d
    }

    async fn apply(
        &self,
        params: SshUploadParams,
        ctx: &StepContext,
    ) -> Result<TransferOutputs, StepError> {
        let plan = params.plan().map_err(StepError::Failed)?;
        let session = ctx.resource::<Sessions>().live(&params.target).await?;
        let host = params.target.display();
        let is_tree = matches!(plan.first(), Some((e, _)) if matches!(e.kind, Kind::Folder));
        // Every folder of the tree, empty ones too, in one script.
        if is_tree {
            let folders: Vec<(&[u8], u32)> = plan
                .iter()
                .filter(|(e, _)| matches!(e.kind, Kind::Folder))
                .map(|(e, dest)| (dest.as_slice(), e.mode))
                .collect();
            run_script(&session, &folders_script(&folders), params.sudo)
                .await
                .map_err(|e| StepError::failed(format!("cannot create folders on {host}: {e}")))?;
        }
        let mut outputs = TransferOutputs::new();
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut digests = Vec::new();
        for (entry, dest) in &plan {
            let Kind::File = entry.kind else {
                continue;
            };
            let (path, bytes, digest) = put(
                &session,
                dest,
                &entry.path,
                !is_tree,
                params.mode.map(|m| m.0),
                params.sudo,
            )
            .await
            .map_err(|e| StepError::failed(format!("cannot write {host}:{}: {e}", shown(dest))))?;
            outputs.bytes += bytes;
            outputs.files.push(shown(&path));
            written.push(path);
            digests.push(digest);
        }
        let links: Vec<(&[u8], &[u8])> = plan
            .iter()
            .filter_map(|(e, dest)| match &e.kind {
                Kind::Link(target) => Some((dest.as_slice(), target.as_slice())),
                _ => None,
            })
            .collect();
        if !links.is_empty() {
            run_script(&session, &links_script(&links), params.sudo)
                .await
                .map_err(|e| StepError::failed(format!("cannot make symlinks on {host}: {e}")))?;
            outputs.links = links.iter().map(|(dest, _)| shown(dest)).collect();
        }
        // One more channel checks every copy against what was read here.
        let remote = remote_digests(&session, &written, params.sudo)
            .await
            .map_err(|e| StepError::failed(format!("cannot check the copies on {host}: {e}")))?;
        if let Some(remote) = remote {
            for ((dest, digest), theirs) in written.iter().zip(&digests).zip(&remote) {
                if digest != theirs {
                    return Err(StepError::failed(format!(
                        "{host}:{} does not hold what was sent (sha256 differs)",
                        shown(dest)
                    )));
                }
            }
            outputs.verified = true;
        }
        Ok(outputs)
    }
}

/// Makes each folder that is missing with its local mode less the host's umask (one that
/// is there is left as it is); the parents of the first (`dest`'s) as `mkdir -p` does.
fn folders_script(folders: &[(&[u8], u32)]) -> Vec<u8> {
    let mut script = b"set -e\nu=$(umask)\n\
        mk() { [ -d \"$1\" ] || mkdir -m \"$(printf '%o' $(( 0$2 & ~0$u )))\" -- \"$1\"; }\n"
        .to_vec();
    if let Some((root, _)) = folders.first() {
        script.extend_from_slice(b"mkdir -p -- \"$(dirname -- ");
        script.extend_from_slice(&quote(root));
        script.extend_from_slice(b")\"\n");
    }
    for (path, mode) in folders {
        script.extend_from_slice(b"mk ");
        script.extend_from_slice(&quote(path));
        script.extend_from_slice(format!(" {:o}\n", mode & 0o777).as_bytes());
    }
    script
}

/// Makes each symlink (its target as written), beside its place and renamed over what is
/// there — a file or link; a folder in the way fails (`mv -T`).
fn links_script(links: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut script = b"set -e\n\
        ln_() { t=$(mktemp -u \"$(dirname -- \"$1\")/.flow-link.XXXXXX\"); \
        ln -s -- \"$2\" \"$t\"; mv -fT -- \"$t\" \"$1\" || { rm -f -- \"$t\"; exit 1; }; }\n"
        .to_vec();
    for (path, target) in links {
        script.extend_from_slice(b"ln_ ");
        script.extend_from_slice(&quote(path));
        script.push(b' ');
        script.extend_from_slice(&quote(target));
        script.push(b'\n');
    }
    script
}

/// Streams the local file `src` to `dest` on the host: into a temp file beside it, renamed
/// over it only once it holds every byte (a symlink there followed to its file), taking the
/// replaced file's owner and its mode narrowed to the local one — or, for a new file, the
/// local mode less the host's umask; `mode` when given. With `into_folder`, a `dest` that is
/// a folder receives the file inside it. Returns the path written, the bytes sent and their
/// sha256.
async fn put(
    session: &openssh::Session,
    dest: &[u8],
    src: &Path,
    into_folder: bool,
    mode: Option<u32>,
    sudo: bool,
) -> Result<(Vec<u8>, u64, String), String> {
    // Not blocked by a FIFO put there since the plan: it is refused below.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(src)
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is no longer a regular file", src.display()));
    }
    let size = meta.len();
    let local_mode = meta.mode() & 0o777;
    let name = src.file_name().map(|n| n.as_bytes()).unwrap_or(b"");
    let mut script = b"set -e\nf=".to_vec();
    script.extend_from_slice(&quote(dest));
    script.push(b'\n');
    if into_folder {
        script.extend_from_slice(b"if [ -d \"$f\" ]; then f=\"${f%/}/\"");
        script.extend_from_slice(&quote(name));
        script.extend_from_slice(b"; fi\n");
    }
    let chosen = match mode {
        Some(mode) => format!("m={mode:o}"),
        None => format!(
            "if [ -e \"$f\" ]; then m=$(printf '%o' $(( 0$(stat -c %a -- \"$f\") & 0{local_mode:o} )))\n\
             else m=$(printf '%o' $(( 0{local_mode:o} & ~0$(umask) ))); fi"
        ),
    };
    script.extend_from_slice(
        format!(
            r#"if [ -L "$f" ]; then f=$(readlink -f -- "$f" || printf '%s' "$f"); fi
d=$(dirname -- "$f"); mkdir -p -- "$d"
tmp=$(mktemp "$d/.flow-upload.XXXXXX"); trap 'rm -f -- "$tmp"' EXIT
head -c {size} > "$tmp"
[ "$(wc -c < "$tmp")" -eq {size} ] || {{ echo "the upload broke off: nothing was replaced" >&2; exit 1; }}
{chosen}
if [ -e "$f" ]; then chown --reference="$f" -- "$tmp" 2>/dev/null || true; fi
chmod "$m" -- "$tmp"
mv -fT -- "$tmp" "$f"; trap - EXIT
printf '%s' "$f""#
        )
        .as_bytes(),
    );
    let source = tokio::fs::File::from_std(file);
    let (written, digest) = stream_in(session, wrap(&script, sudo), source, size).await?;
    Ok((written, size, digest))
}
