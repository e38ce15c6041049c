//! Copying a Redis server's persistence files out for `redis.backup`: the RDB snapshot and,
//! when AOF is on, the AOF files. Backups may hold sessions, tokens, personal data (seed 002:
//! "backups may contain sensitive data"), so every copy is private to its owner — files 0600,
//! folders 0700 — and appears whole or not at all (written beside, then renamed). A copy
//! replaces a file by the safe-file rules (`safe_file::Replacement`): a symlink is followed,
//! and a device (`/dev/null`), a FIFO or a folder in its place is refused, never replaced.

use super::pod_files::ServerFiles;
use crate::core::safe_file::{NewMode, Replacement};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies the server's file `src` (here or in its pod) over `dest`, a path the playbook
/// names, by the safe-file rules (see the module) as a 0600 file; returns the bytes copied.
pub async fn copy_file(files: &ServerFiles, src: &str, dest: &Path) -> io::Result<u64> {
    let mut copy = Replacement::begin(dest, NewMode::Exactly(0o600))?;
    files.copy_into(src, copy.writer()?).await?;
    let bytes = copy.file().metadata()?.len();
    copy.commit().await?;
    Ok(bytes)
}

/// Opens `path` for writing as an empty 0600 file.
pub fn private_file(path: &Path) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode through `create`: set it.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Creates `dir` (and its parents) as 0700 folders where they do not exist yet.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Copies the Redis 7 AOF folder (`appendonlydir`: a manifest, a base file and incremental
/// files) of the server, here or in its pod, to `dest`, a 0700 folder of 0600 files. The
/// server may rewrite its AOF meanwhile (the files change): the manifest is read before and
/// after, and a copy that straddled a rewrite is made again, up to three times. Returns the
/// files copied.
pub async fn copy_aof_dir(files: &ServerFiles, src: &str, dest: &Path) -> io::Result<Vec<PathBuf>> {
    // The copy replaces a folder of AOF files, nothing else.
    match fs::symlink_metadata(dest) {
        Ok(meta) if !meta.is_dir() => {
            let what = if meta.file_type().is_symlink() {
                "a symlink"
            } else {
                flow_engine::regular_file::not_regular(&meta).unwrap_or("a file")
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is {what}, not a folder of AOF files", dest.display()),
            ));
        }
        _ => {}
    }
    for _ in 0..3 {
        let before = manifest(files, src).await?;
        let partial = partial_path(dest);
        let _ = fs::remove_dir_all(&partial);
        private_dir(&partial)?;
        let mut copied = Vec::new();
        let mut vanished = false;
        for name in files.list(src).await? {
            match files
                .copy_private(&format!("{src}/{name}"), &partial.join(&name))
                .await
            {
                Ok(_) => copied.push(dest.join(&name)),
                // Removed by a rewrite between the listing and the copy.
                Err(error) if error.kind() == io::ErrorKind::NotFound => vanished = true,
                Err(error) => {
                    let _ = fs::remove_dir_all(&partial);
                    return Err(error);
                }
            }
        }
        if !vanished && manifest(files, src).await? == before {
            let _ = fs::remove_dir_all(dest);
            fs::rename(&partial, dest)?;
            copied.sort();
            return Ok(copied);
        }
        let _ = fs::remove_dir_all(&partial);
    }
    Err(io::Error::other(
        "the server rewrote its AOF during each of three copies",
    ))
}

/// The manifest of an AOF folder (`*.manifest`), as text.
async fn manifest(files: &ServerFiles, dir: &str) -> io::Result<String> {
    for name in files.list(dir).await? {
        if name.ends_with(".manifest") {
            return files.read_text(&format!("{dir}/{name}")).await;
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no AOF manifest in {dir}"),
    ))
}

/// `dest.partial`, beside `dest`.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_is_private_and_whole() {
        let dir = std::env::temp_dir().join(format!("flow-backup-copy-{}", std::process::id()));
        private_dir(&dir).unwrap();
        let src = dir.join("dump.rdb");
        fs::write(&src, b"REDIS0011...").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
        let dest = dir.join("copy.rdb");
        assert_eq!(
            ServerFiles::Local
                .copy_private(&src.display().to_string(), &dest)
                .await
                .unwrap(),
            12
        );
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!partial_path(&dest).exists());
        let aof = dir.join("appendonlydir");
        fs::create_dir(&aof).unwrap();
        fs::write(
            aof.join("a.aof.manifest"),
            "file a.aof.1.base.rdb seq 1 type b\n",
        )
        .unwrap();
        fs::write(aof.join("a.aof.1.base.rdb"), "base").unwrap();
        let copied = copy_aof_dir(
            &ServerFiles::Local,
            &aof.display().to_string(),
            &dir.join("copy.aof"),
        )
        .await
        .unwrap();
        assert_eq!(copied.len(), 2);
        let mode = fs::metadata(dir.join("copy.aof"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }
}
