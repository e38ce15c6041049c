//! What a host says is in the file or folder `ssh.download` copies. The host controls these
//! names: a compromised one answering `../../.bashrc` or `/etc/cron.d/x` must not get them
//! joined to `dest` (scp's CVE-2019-6111). Every name is checked before anything is written:
//! relative, only plain components (no `..`), listed once.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

#[derive(Debug, PartialEq)]
pub enum Kind {
    Folder,
    File,
    /// A symlink, with its target as written (copied as is, never followed).
    Link(Vec<u8>),
}

#[derive(Debug)]
pub struct Entry {
    /// Its path under the copied folder, as bytes (names need not be UTF-8); empty for
    /// `src` itself.
    pub relative: Vec<u8>,
    pub kind: Kind,
    /// Its permission bits on the host.
    pub mode: u32,
}

/// The shell script that lists `src` (quoted) on the host: for each entry its type, mode,
/// path (`.` for `src` itself) and link target, each ended by a NUL. A folder's entries are
/// listed by `find` inside it, which follows no symlink; `src` itself is followed.
pub fn script(src_quoted: &[u8]) -> Vec<u8> {
    let mut script = b"s=".to_vec();
    script.extend_from_slice(src_quoted);
    script.extend_from_slice(
        b"\nif [ -d \"$s\" ]; then cd -- \"$s\" && find . -printf '%y\\0%m\\0%p\\0%l\\0'\n\
          elif [ -f \"$s\" ]; then printf 'f\\0%s\\0.\\0\\0' \"$(stat -L -c %a -- \"$s\")\"\n\
          else echo 'no such file or folder' >&2; exit 1; fi\n",
    );
    script
}

/// The entries of a listing, `src` itself first, checked: an error names the first name
/// that is refused, and then nothing has been written.
pub fn parse(listing: &[u8]) -> Result<Vec<Entry>, String> {
    let mut fields: Vec<&[u8]> = listing.split(|b| *b == 0).collect();
    // The last field ends with a NUL too.
    if fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    if fields.is_empty() || !fields.len().is_multiple_of(4) {
        return Err("the host's listing is not what `find` prints".to_string());
    }
    let mut entries = Vec::with_capacity(fields.len() / 4);
    let mut seen = std::collections::HashSet::new();
    for record in fields.chunks(4) {
        let [kind, mode, path, target] = record else {
            unreachable!("chunks of 4")
        };
        let relative = checked_name(path)?;
        let kind = match *kind {
            b"d" => Kind::Folder,
            b"f" => Kind::File,
            b"l" => Kind::Link(target.to_vec()),
            other => {
                return Err(format!(
                    "`{}` is {}: only files, folders and symlinks are copied",
                    super::transfer::shown(&relative),
                    match other {
                        b"p" => "a FIFO",
                        b"s" => "a socket",
                        b"c" | b"b" => "a device",
                        _ => "not a file, folder or symlink",
                    }
                ));
            }
        };
        let mode = std::str::from_utf8(mode)
            .ok()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .ok_or_else(|| "the host's listing is not what `find` prints".to_string())?;
        if !seen.insert(relative.clone()) {
            return Err(format!(
                "the host listed `{}` twice: refused",
                super::transfer::shown(&relative)
            ));
        }
        entries.push(Entry {
            relative,
            kind,
            mode: mode & 0o7777,
        });
    }
    match entries.first() {
        Some(root) if root.relative.is_empty() && !matches!(root.kind, Kind::Link(_)) => {}
        _ => return Err("the host's listing does not start with what was asked".to_string()),
    }
    if entries[0].kind == Kind::File && entries.len() > 1 {
        return Err("the host listed a file as a folder".to_string());
    }
    Ok(entries)
}

/// A name of the listing (`.` or `./path`) as a path under the folder: refused unless every
/// component is a plain name — no `..`, not absolute.
fn checked_name(path: &[u8]) -> Result<Vec<u8>, String> {
    if path == b"." {
        return Ok(Vec::new());
    }
    let relative = path.strip_prefix(b"./").unwrap_or(path);
    let plain = !relative.is_empty()
        && Path::new(OsStr::from_bytes(relative))
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain || !path.starts_with(b"./") {
        return Err(format!(
            "the host sent the name `{}`, which is not a name inside the folder asked for: \
             refused, nothing was written (a host that sends such names is compromised, or \
             broken)",
            super::transfer::shown(path)
        ));
    }
    Ok(relative.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(records: &[(&str, &str, &[u8], &str)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (kind, mode, path, target) in records {
            for field in [kind.as_bytes(), mode.as_bytes(), path, target.as_bytes()] {
                bytes.extend_from_slice(field);
                bytes.push(0);
            }
        }
        bytes
    }

    #[test]
    fn names_outside_the_folder_are_refused() {
        for bad in [
            &b"./../../x"[..],
            b"/etc/cron.d/x",
            b"./a/../../x",
            b"..",
            b"x",
            b"./",
        ] {
            let text = listing(&[("d", "755", b".", ""), ("f", "644", bad, "")]);
            let error = parse(&text).expect_err("refused");
            assert!(error.contains("not a name inside the folder"), "{error}");
        }
    }

    #[test]
    fn plain_names_links_and_bytes_that_are_not_utf8_pass() {
        let text = listing(&[
            ("d", "700", b".", ""),
            ("f", "600", b"./caf\xe9", ""),
            ("l", "777", b"./current", "/opt/app/42"),
            ("d", "755", b"./sub", ""),
        ]);
        let entries = parse(&text).expect("parsed");
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].relative, b"caf\xe9");
        assert_eq!(entries[1].mode, 0o600);
        assert_eq!(entries[2].kind, Kind::Link(b"/opt/app/42".to_vec()));
    }

    #[test]
    fn a_name_listed_twice_or_a_fifo_is_refused() {
        let twice = listing(&[
            ("d", "755", b".", ""),
            ("f", "644", b"./a", ""),
            ("l", "777", b"./a", "/etc"),
        ]);
        assert!(parse(&twice).unwrap_err().contains("twice"));
        let fifo = listing(&[("d", "755", b".", ""), ("p", "644", b"./pipe", "")]);
        assert!(parse(&fifo).unwrap_err().contains("a FIFO"));
    }
}
