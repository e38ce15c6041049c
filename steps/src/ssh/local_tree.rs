//! The entries of a local file or folder to upload: files, folders and symlinks, found
//! without following a symlink inside the tree — a link is copied as a link, so a link that
//! loops is one link in the plan, not a tree without end. `src` itself is followed when it
//! is a link (it names what to copy). A folder reached twice (a bind mount looping back) is
//! refused, and so is anything that is not a file, folder or symlink: a FIFO would hang the
//! copy, a device never ends.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub enum Kind {
    Folder,
    File,
    /// A symlink, with its target as written.
    Link(Vec<u8>),
}

pub struct Entry {
    /// Where it is here.
    pub path: PathBuf,
    /// Its path under the tree, as bytes (names need not be UTF-8); empty for `src` itself.
    pub relative: Vec<u8>,
    pub kind: Kind,
    /// Its permission bits.
    pub mode: u32,
}

/// What a file type is called in a refusal.
fn kind_name(kind: std::fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a file, folder or symlink"
    }
}

fn refused(path: &Path, kind: std::fs::FileType) -> String {
    format!(
        "{} is {}: only files, folders and symlinks are copied",
        path.display(),
        kind_name(kind)
    )
}

/// The entries of `root`, parents before what they hold (in name order).
pub fn walk(root: &Path) -> Result<Vec<Entry>, String> {
    let cannot = |path: &Path, e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let meta = std::fs::metadata(root).map_err(|e| cannot(root, e))?;
    if meta.is_file() {
        return Ok(vec![Entry {
            path: root.to_path_buf(),
            relative: Vec::new(),
            kind: Kind::File,
            mode: meta.mode() & 0o777,
        }]);
    }
    if !meta.is_dir() {
        return Err(refused(root, meta.file_type()));
    }
    let mut entries = vec![Entry {
        path: root.to_path_buf(),
        relative: Vec::new(),
        kind: Kind::Folder,
        mode: meta.mode() & 0o777,
    }];
    let mut seen = std::collections::HashSet::from([(meta.dev(), meta.ino())]);
    let mut folders = vec![(root.to_path_buf(), Vec::new())];
    while let Some((folder, relative)) = folders.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| cannot(&folder, e))? {
            let entry = entry.map_err(|e| cannot(&folder, e))?;
            let path = entry.path();
            // Not followed: a symlink's own metadata.
            let meta = std::fs::symlink_metadata(&path).map_err(|e| cannot(&path, e))?;
            let name = entry.file_name();
            let relative = super::transfer::join(&relative, name.as_bytes());
            let mode = meta.mode() & 0o777;
            let kind = meta.file_type();
            let kind = if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| cannot(&path, e))?;
                Kind::Link(target.as_os_str().as_bytes().to_vec())
            } else if kind.is_dir() {
                if !seen.insert((meta.dev(), meta.ino())) {
                    return Err(format!(
                        "{} is a folder already copied (a mount loops back): refused",
                        path.display()
                    ));
                }
                folders.push((path.clone(), relative.clone()));
                Kind::Folder
            } else if kind.is_file() {
                Kind::File
            } else {
                return Err(refused(&path, kind));
            };
            entries.push(Entry {
                path,
                relative,
                kind,
                mode,
            });
        }
    }
    entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(entries)
}
