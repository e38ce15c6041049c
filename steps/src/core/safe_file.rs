//! The one safe way to replace a local file, for every step type that writes one
//! (`file.write`, `envfile.set`, and the downloads of `s3.get`, `redis.backup`,
//! `ssh.download`): a lock while the file is read, changed and written; symlinks followed to
//! the real file; a path that is not a regular file (`/dev/null`, a FIFO) refused, never
//! replaced; a temporary file created with the final owner, group and mode before it holds a
//! byte, then renamed over; backups that never overwrite one another; nothing left behind on
//! failure. A download streams into a [`Replacement`], which never holds the file in memory.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes through a temporary file in the same folder and a rename, so a reader never sees
/// half a file; keeps the owner, group and mode of the file it replaces, and follows a
/// symlink to the file it points to. Edits of files in one folder take turns
/// (see [`edit_locked`]).
pub async fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let content = content.to_vec();
    edit_locked(path, move |real| replace_file(real, &content, None)).await?
}

/// Runs `work` on the real file behind `path` (a symlink in its last component followed, so
/// the edit lands in the file the link points to and the link stays a link) while holding
/// the [`EditLock`] of that file's folder, on a blocking thread.
///
/// The wait for the lock stays cancellable (a step's timeout or Ctrl-C ends it); once `work`
/// has started it finishes, and the lock is released when it does.
pub async fn edit_locked<T, F>(path: &Path, work: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Path) -> T + Send + 'static,
{
    let real = resolve_symlinks(path)?;
    let lock = EditLock::acquire(&real).await?;
    tokio::task::spawn_blocking(move || {
        if lock.is_held() {
            remove_stale_temps(&real);
        }
        let result = work(&real);
        drop(lock);
        result
    })
    .await
    .map_err(io::Error::other)
}

/// The folder a file is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Follows symlinks in the last component of `path` (up to 40 hops, as the kernel does): the
/// file an edit must replace. A dangling link gives the path it points to, where the file
/// will be created.
pub fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                // A relative target is relative to the link's folder (`..` taken physically,
                // like the kernel does, by leaving it in the path).
                current = folder_of(&current).join(target);
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ELOOP.into())
}

/// An exclusive advisory lock (flock) over edits of the files in one folder, held until
/// dropped. Edits read, change and rename while holding it, so two steps of one run, or two
/// flow processes, editing the same file take turns and neither loses the other's change.
///
/// Why the folder and not the file: the rename that replaces a file gives its name a new
/// inode, so a lock taken on the old file would not stop the next editor, who opens the new
/// one (locking the file needs a re-check-and-retry loop), and a file that does not exist
/// yet (`create: true`) has nothing to lock. The folder's inode stays the same across the
/// rename and exists before the file does; each lock is its own open file description, so it
/// excludes steps of the same run as well as other processes. The cost, edits of other files
/// in the same folder waiting a few milliseconds, is small.
pub struct EditLock {
    _lock: Option<Flock<File>>,
}

impl EditLock {
    /// Whether the folder is really locked (some filesystems cannot lock a folder).
    pub fn is_held(&self) -> bool {
        self._lock.is_some()
    }

    /// Waits for the lock of the folder `file` is in. Polled (never a blocking flock on the
    /// runtime's thread) so the wait can be cancelled.
    pub async fn acquire(file: &Path) -> io::Result<EditLock> {
        let mut folder = match File::open(folder_of(file)) {
            Ok(folder) => folder,
            // A folder one may write in but not list (mode 0300): edit unlocked rather than
            // refuse an edit the permissions allow.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Ok(EditLock { _lock: None });
            }
            Err(e) => return Err(e),
        };
        let mut pause = Duration::from_millis(1);
        loop {
            match Flock::lock(folder, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(EditLock { _lock: Some(lock) }),
                Err((f, Errno::EWOULDBLOCK | Errno::EINTR)) => {
                    folder = f;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                // A filesystem without flock on folders (NFS maps flock to byte-range locks,
                // which need a file open for writing): edit unlocked, as any editor would.
                Err((_, Errno::EBADF | Errno::ENOLCK | Errno::EOPNOTSUPP)) => {
                    return Ok(EditLock { _lock: None });
                }
                Err((_, errno)) => return Err(errno.into()),
            }
        }
    }
}

/// Refuses a path (symlinks followed) that exists and is not a regular file: renaming over
/// it would put a plain file in place of a device (`/dev/null`), a FIFO, a socket or a
/// folder, and reading a FIFO waits forever.
pub fn check_regular(path: &Path) -> io::Result<()> {
    let kind = match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) => match flow_engine::regular_file::not_regular(&meta) {
            None => return Ok(()),
            Some(kind) => kind,
        },
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is {kind}, not a regular file", path.display()),
    ))
}

/// A new file beside the one it stands in for, removed when dropped unless it was
/// [`kept`](Self::keep): no error path leaves a half-written temp file or backup behind.
struct NewFile {
    path: PathBuf,
    file: File,
    kept: bool,
}

impl NewFile {
    /// Creates `path` with O_CREAT|O_EXCL (never an existing file, never through a symlink).
    fn create(path: PathBuf, mode: u32) -> io::Result<NewFile> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        Ok(NewFile {
            path,
            file,
            kept: false,
        })
    }

    /// A temp file `.<name>.flow-<random><suffix>` beside `target`; a name taken by another
    /// editor is never reused (O_EXCL), another random one is tried.
    fn temp_beside(target: &Path, mode: u32, suffix: &str) -> io::Result<NewFile> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = folder_of(target);
        let mut last = None;
        for _ in 0..16 {
            let path = folder.join(format!(".{name}.flow-{}{suffix}", random_suffix()));
            match NewFile::create(path, mode) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temp name")))
    }

    /// Gives the file `owner`'s uid, gid and `mode`, then writes and syncs `content`.
    fn fill(
        &mut self,
        like: Option<&std::fs::Metadata>,
        mode: Option<u32>,
        content: &[u8],
    ) -> io::Result<()> {
        self.dress(like, mode)?;
        self.file.write_all(content)?;
        self.file.sync_all()
    }

    /// Gives the file `like`'s uid and gid, and `mode` (else `like`'s mode).
    fn dress(&mut self, like: Option<&std::fs::Metadata>, mode: Option<u32>) -> io::Result<()> {
        if let Some(like) = like {
            set_owner(&self.file, like.uid(), like.gid())?;
        }
        // After the chown, which clears set-user-ID and set-group-ID bits.
        if let Some(mode) = mode.or(like.map(|m| m.mode() & 0o7777)) {
            self.file.set_permissions(Permissions::from_mode(mode))?;
        }
        Ok(())
    }

    fn keep(mut self) -> PathBuf {
        self.kept = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the temp files of `target` (`.<name>.flow-<random>.tmp`) that a killed flow left
/// behind. Called with the folder's lock held: every live editor holds that lock while its
/// temp file exists, so any such file found now belongs to an editor that died (`kill -9`,
/// a power cut) and holds a half-written copy — possibly of a secret.
fn remove_stale_temps(target: &Path) {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.flow-");
    for entry in std::fs::read_dir(folder_of(target))
        .into_iter()
        .flatten()
        .flatten()
    {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(&prefix)
            && file_name.ends_with(".tmp")
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Random enough that another editor cannot guess the next temp name; O_EXCL makes it safe
/// whatever happens.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

/// Gives `file` the owner and group of the file it replaces. Root always can; another user
/// can only give a file away to itself, so it keeps the group when it may and otherwise
/// becomes the owner, as with any editor.
fn set_owner(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    let meta = file.metadata()?;
    if (meta.uid(), meta.gid()) == (uid, gid) {
        return Ok(());
    }
    match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        Err(e)
            if e.kind() == io::ErrorKind::PermissionDenied && !nix::unistd::geteuid().is_root() =>
        {
            let _ = std::os::unix::fs::fchown(file, None, Some(gid));
            Ok(())
        }
        other => other.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot give the new file the owner {uid}:{gid} of the old one: {e}"),
            )
        }),
    }
}

/// Replaces `real` (no symlink in its last component: see [`resolve_symlinks`]) with
/// `content` by a temp file beside it and a rename. The temp file is created 0600 (no one
/// else can open it), given the old file's owner and group and its mode (or `mode`) before
/// anything is written to it, synced, and renamed over the old one. A new file with no
/// `mode` gets the default mode, as any program would create it. On any error the temp file
/// is removed and the old file is untouched.
pub fn replace_file(real: &Path, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mode = mode.map_or(NewMode::Default, NewMode::Exactly);
    let mut replacement = Replacement::beside(real.to_path_buf(), mode, EDIT_SUFFIX)?;
    replacement.file().write_all(content)?;
    replacement.finish().map(drop)
}

/// The temp file of an edit made under the folder's lock (see [`remove_stale_temps`]).
const EDIT_SUFFIX: &str = ".tmp";
/// The temp file of a download, written without the lock (it may take minutes): never
/// mistaken for an edit's stale temp file.
const DOWNLOAD_SUFFIX: &str = ".part";

/// The mode a [`Replacement`] gets.
#[derive(Debug, Clone, Copy)]
pub enum NewMode {
    /// A file replaced keeps its mode; a new file gets the default mode (0666 less the
    /// umask), as any program would create it.
    Default,
    /// Exactly this (a step's `mode:`).
    Exactly(u32),
    /// That of a copy of a file with this mode: a new file gets it less the umask, as `cp`
    /// would make it; a file replaced keeps its own mode, narrowed to this — never wider
    /// than the original (a 0600 secret does not become 0644 anywhere).
    CopyOf(u32),
}

/// A file being replaced piece by piece — a download, a copy of a backup — never held whole
/// in memory: the bytes go to a temp file beside the real file, created `0600` and given the
/// real file's owner, group and mode (or `mode`) before a byte lands; [`commit`] renames it
/// over the file, under the folder's [`EditLock`]. Dropped without a commit (a failure, a
/// checksum that does not match, a cancelled step), the temp file is removed and the file is
/// untouched.
///
/// [`commit`]: Replacement::commit
pub struct Replacement {
    real: PathBuf,
    temp: NewFile,
}

impl Replacement {
    /// Starts replacing `path`: a symlink is followed to the file it points to (the link
    /// stays a link), and a path that is not a regular file — a device such as `/dev/null`,
    /// a FIFO, a socket, a folder — is refused.
    pub fn begin(path: &Path, mode: NewMode) -> io::Result<Replacement> {
        Self::beside(resolve_symlinks(path)?, mode, DOWNLOAD_SUFFIX)
    }

    fn beside(real: PathBuf, mode: NewMode, suffix: &str) -> io::Result<Replacement> {
        check_regular(&real)?;
        let old = match std::fs::metadata(&real) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        // The mode it ends with (`None`: the old file's).
        let exact = match mode {
            NewMode::Default => None,
            NewMode::Exactly(mode) => Some(mode),
            NewMode::CopyOf(mode) => old.as_ref().map(|old| old.mode() & 0o7777 & mode),
        };
        let temp = match (&old, mode) {
            // A new file is created with its mode: the umask takes its part, as for any
            // program that creates one.
            (None, NewMode::Default) => NewFile::temp_beside(&real, 0o666, suffix)?,
            (None, NewMode::CopyOf(mode)) => NewFile::temp_beside(&real, mode & 0o777, suffix)?,
            _ => {
                let mut temp = NewFile::temp_beside(&real, 0o600, suffix)?;
                temp.dress(old.as_ref(), exact)?;
                temp
            }
        };
        Ok(Replacement { real, temp })
    }

    /// The file the bytes go to.
    pub fn file(&mut self) -> &mut File {
        &mut self.temp.file
    }

    /// Another handle on the file the bytes go to (for an async writer).
    pub fn writer(&self) -> io::Result<File> {
        self.temp.file.try_clone()
    }

    /// The file being replaced (symlinks followed).
    pub fn real(&self) -> &Path {
        &self.real
    }

    /// Syncs the bytes and renames them over the file, under the folder's edit lock, so no
    /// edit of the file is in the middle of its own read-change-write. Returns the file.
    pub async fn commit(self) -> io::Result<PathBuf> {
        let lock = EditLock::acquire(&self.real).await?;
        tokio::task::spawn_blocking(move || {
            let done = self.finish();
            drop(lock);
            done
        })
        .await
        .map_err(io::Error::other)?
    }

    fn finish(self) -> io::Result<PathBuf> {
        let Replacement { real, temp } = self;
        temp.file.sync_all()?;
        // It may have become a FIFO or a device since `begin`.
        check_regular(&real)?;
        std::fs::rename(&temp.path, &real)?;
        temp.keep();
        // Make the rename durable; the file is replaced whether or not this succeeds.
        if let Ok(folder) = File::open(folder_of(&real)) {
            let _ = folder.sync_all();
        }
        Ok(real)
    }
}

/// Keeps `content` (the file's content before an edit) as `<real>.<unix time>.bak`, or
/// `<real>.<unix time>.<n>.bak` when that name is taken: created with O_EXCL, so a backup
/// never replaces another file, with the original's owner, group and mode. Returns its path.
pub fn backup(real: &Path, content: &[u8]) -> io::Result<PathBuf> {
    let like = std::fs::metadata(real)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    for n in 0..10_000u32 {
        let mut path = real.as_os_str().to_os_string();
        path.push(if n == 0 {
            format!(".{stamp}.bak")
        } else {
            format!(".{stamp}.{n}.bak")
        });
        let path = PathBuf::from(path);
        match NewFile::create(path, 0o600) {
            Ok(mut new) => {
                new.fill(Some(&like), None, content)?;
                return Ok(new.keep());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}
