//! Reading and replacing a file on a host, for edits made here (`envfile.set` with `ssh:`):
//! the replacement lands in a temp file beside the real one (a symlink followed), takes the
//! old file's owner and mode, and is renamed over it; a backup never overwrites a backup.

use super::transfer::{run, wrap};
use flow_engine::template_env::shell_quote;
use openssh::Session;

/// The file's text, or `None` when it does not exist.
pub async fn read(session: &Session, path: &str, sudo: bool) -> Result<Option<String>, String> {
    let q = shell_quote(path);
    let script = format!(
        "if [ -f {q} ]; then printf 1; cat -- {q}; elif [ -e {q} ]; then echo 'not a regular file' >&2; exit 1; else printf 0; fi"
    );
    let out = run(session, &wrap(&script, sudo), None).await?;
    match out.split_first() {
        // Bytes that are not UTF-8 would not survive the edit: refuse, as a local edit does.
        Some((b'1', text)) => String::from_utf8(text.to_vec())
            .map(Some)
            .map_err(|_| "it is not UTF-8 text; nothing was changed".to_string()),
        _ => Ok(None),
    }
}

/// Replaces the file with `content`; with `backup`, keeps the old one as
/// `<path>.<unix time>[.N].bak` and returns its path.
pub async fn replace(
    session: &Session,
    path: &str,
    content: &[u8],
    backup: bool,
    sudo: bool,
) -> Result<Option<String>, String> {
    let script = format!(
        r#"set -e
f=$(readlink -f -- {q} 2>/dev/null || printf '%s' {q})
d=$(dirname -- "$f")
tmp=$(mktemp "$d/.$(basename -- "$f").flow-XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
if [ -e "$f" ]; then chown --reference="$f" -- "$tmp" 2>/dev/null || true; chmod --reference="$f" -- "$tmp"; fi
made=
if [ {backup} = 1 ] && [ -e "$f" ]; then
  t=$(date +%s); b="$f.$t.bak"; n=1
  while [ -e "$b" ]; do b="$f.$t.$n.bak"; n=$((n+1)); done
  cp -p -- "$f" "$b"; made=$b
fi
mv -f -- "$tmp" "$f"
trap - EXIT
printf '%s' "$made""#,
        q = shell_quote(path),
        backup = u8::from(backup),
    );
    let made = run(session, &wrap(&script, sudo), Some(content)).await?;
    let made = String::from_utf8_lossy(&made).into_owned();
    Ok((!made.is_empty()).then_some(made))
}

/// Edits of one remote file by steps of one run take turns (a `for_each` of `envfile.set` on
/// one path): read, edit and replace under a lock per (host, path).
#[derive(Default)]
pub struct RemoteEdits {
    locks: std::sync::Mutex<std::collections::HashMap<(super::SshTarget, String), Turn>>,
}

/// One file's turn: held while a step reads, edits and replaces it.
type Turn = std::sync::Arc<tokio::sync::Mutex<()>>;

impl flow_engine::prelude::Resource for RemoteEdits {}

impl RemoteEdits {
    pub fn lock_for(
        &self,
        target: &super::SshTarget,
        path: &str,
    ) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        std::sync::Arc::clone(locks.entry((target.clone(), path.to_string())).or_default())
    }
}
