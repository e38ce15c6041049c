//! The folder a downloaded tree lands in, and the one way anything is placed under it:
//! every path walked one component at a time from the folder, a symlink on the way (or in
//! the last place) only taken when where it leads is still inside the folder. So no name
//! and no link — one the host sent earlier, or one already there — writes outside `dest`.
//! Symlinks of the tree are made last, so none is written through.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

pub struct LocalTree {
    /// The folder, its real path (symlinks resolved).
    root: PathBuf,
    /// What it is called in messages.
    shown: String,
}

/// Folders the host did not list but a name needs (a listing that skips one): as `mkdir`.
const DEFAULT_FOLDER_MODE: u32 = 0o777;

impl LocalTree {
    /// The folder `dest`, created (with `mode`, less the umask) if it is not there.
    pub fn create(dest: &Path, mode: u32) -> Result<LocalTree, String> {
        let shown = dest.display().to_string();
        let cannot = |e: std::io::Error| format!("cannot create {shown}: {e}");
        if !dest.exists() {
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(cannot)?;
            }
            match std::fs::DirBuilder::new().mode(mode).create(dest) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(cannot(e)),
                _ => {}
            }
        }
        let root = std::fs::canonicalize(dest).map_err(cannot)?;
        if !root.is_dir() {
            return Err(format!("{shown} is not a folder: a folder lands there"));
        }
        Ok(LocalTree { root, shown })
    }

    fn outside(&self, relative: &[u8]) -> String {
        format!(
            "`{}` leads outside {} through a symlink: refused",
            super::transfer::shown(relative),
            self.shown
        )
    }

    /// The folder at `relative`, made with `mode` (less the umask) where it is missing.
    pub fn folder(&self, relative: &[u8], mode: u32) -> Result<PathBuf, String> {
        let mut at = self.root.clone();
        let path = Path::new(OsStr::from_bytes(relative));
        for component in path.components() {
            let Component::Normal(name) = component else {
                return Err(self.outside(relative));
            };
            let next = at.join(name);
            let shown = next.display().to_string();
            match std::fs::symlink_metadata(&next) {
                Ok(meta) if meta.is_dir() => at = next,
                Ok(meta) if meta.file_type().is_symlink() => {
                    let real = std::fs::canonicalize(&next)
                        .map_err(|e| format!("{shown} is a symlink that leads nowhere: {e}"))?;
                    if !real.starts_with(&self.root) {
                        return Err(self.outside(relative));
                    }
                    if !real.is_dir() {
                        return Err(format!(
                            "{shown} is not a folder, and the host has one there"
                        ));
                    }
                    at = real;
                }
                Ok(_) => {
                    return Err(format!(
                        "{shown} is a file, and the host has a folder there"
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match std::fs::DirBuilder::new().mode(mode).create(&next) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                            return Err(format!("cannot create {shown}: {e}"));
                        }
                        _ => at = next,
                    }
                }
                Err(e) => return Err(format!("cannot read {shown}: {e}")),
            }
        }
        Ok(at)
    }

    /// Where the file at `relative` is written: in its folder (made if missing), and — when
    /// a symlink is there already — only if the file it leads to is inside the folder.
    pub fn file(&self, relative: &[u8]) -> Result<PathBuf, String> {
        let (folder, name) = self.split(relative)?;
        let path = folder.join(name);
        let real = crate::core::safe_file::resolve_symlinks(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if real != path {
            let inside = real
                .parent()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .is_some_and(|p| p.starts_with(&self.root));
            if !inside {
                return Err(self.outside(relative));
            }
        }
        Ok(path)
    }

    /// Makes the symlink at `relative` pointing to `target` (as written), replacing a file
    /// or link of that name; a folder in the way is refused. Returns its path.
    pub fn link(&self, relative: &[u8], target: &[u8]) -> Result<PathBuf, String> {
        let (folder, name) = self.split(relative)?;
        let path = folder.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(format!(
                "{} is a folder, and the host has a symlink there",
                path.display()
            ));
        }
        // Made beside it, then renamed over it: the name is never missing, nor half made.
        let mut temp = std::ffi::OsString::from(".");
        temp.push(name);
        temp.push(format!(".flow-link-{}", std::process::id()));
        let temp = folder.join(temp);
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &temp)
            .and_then(|()| std::fs::rename(&temp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                format!("cannot make the symlink {}: {e}", path.display())
            })?;
        Ok(path)
    }

    /// The folder (made if missing) and the name of the last component of `relative`.
    fn split<'a>(&self, relative: &'a [u8]) -> Result<(PathBuf, &'a OsStr), String> {
        let path = Path::new(OsStr::from_bytes(relative));
        let name = path.file_name().ok_or_else(|| self.outside(relative))?;
        let parent = path
            .parent()
            .map(|p| p.as_os_str().as_bytes())
            .unwrap_or(b"");
        Ok((self.folder(parent, DEFAULT_FOLDER_MODE)?, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_leading_outside_is_not_written_through() {
        let outside = tempfile::tempdir().expect("dir");
        let dest = tempfile::tempdir().expect("dir");
        std::os::unix::fs::symlink(outside.path(), dest.path().join("escape")).expect("link");
        std::os::unix::fs::symlink(outside.path().join("f"), dest.path().join("file"))
            .expect("link");
        let tree = LocalTree::create(dest.path(), 0o755).expect("tree");
        assert!(
            tree.file(b"escape/x")
                .unwrap_err()
                .contains("leads outside")
        );
        assert!(
            tree.folder(b"escape/sub", 0o755)
                .unwrap_err()
                .contains("leads outside")
        );
        assert!(tree.file(b"file").unwrap_err().contains("leads outside"));
        // A link that stays inside is fine.
        std::fs::create_dir(dest.path().join("real")).expect("mkdir");
        std::os::unix::fs::symlink("real", dest.path().join("alias")).expect("link");
        assert!(tree.file(b"alias/x").is_ok());
    }

    #[test]
    fn a_link_replaces_a_file_but_not_a_folder() {
        let dest = tempfile::tempdir().expect("dir");
        let tree = LocalTree::create(dest.path(), 0o755).expect("tree");
        std::fs::write(dest.path().join("was-file"), "x").expect("write");
        std::fs::create_dir(dest.path().join("was-dir")).expect("mkdir");
        tree.link(b"was-file", b"/etc/hostname").expect("replaced");
        assert_eq!(
            std::fs::read_link(dest.path().join("was-file")).expect("link"),
            Path::new("/etc/hostname")
        );
        assert!(
            tree.link(b"was-dir", b"x")
                .unwrap_err()
                .contains("is a folder")
        );
    }
}
