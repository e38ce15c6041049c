//! Editing `KEY=value` files (docker env files, systemd EnvironmentFile, .env) while keeping
//! comments, order and every line that is not being changed.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// Who reads the file, which decides how a value that needs quoting is written (REALITY.md:
/// `docker run --env-file` takes a line literally, quotes included; a shell and docker
/// compose's `env_file` remove them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decided by the file: one with an `export` line or a quoted value is read by a shell
    /// (or compose); otherwise a value that needs quotes is refused until `format` says who
    /// reads the file. Values that need none are written bare, which every reader takes alike.
    #[default]
    Auto,
    /// `docker run --env-file`: each value written as it is — no quotes, no escapes — and
    /// read back the same way (`A="x"` is `"x"`, quotes included).
    Docker,
    /// A POSIX shell (`. file`; docker compose's `env_file` reads it the same way): a value
    /// that needs it is double-quoted, with `"`, `\`, `$` and `` ` `` escaped.
    Shell,
}

impl Format {
    /// The format `Auto` comes to for this text: `Shell` when the file shows a reader that
    /// unquotes (an `export` line, a quoted value), else `Auto` still (unknown).
    pub fn for_text(self, text: &str) -> Format {
        if self != Format::Auto {
            return self;
        }
        let unquoting = text.lines().any(|line| {
            line.trim_start().starts_with("export ")
                || assignment(line)
                    .is_some_and(|(_, _, raw)| raw.trim_start().starts_with(['"', '\'']))
        });
        if unquoting {
            Format::Shell
        } else {
            Format::Auto
        }
    }
}

/// The result of an edit: the new text, the previous value of each key asked about, and
/// the lines that changed (for plans).
pub struct Edit {
    pub text: String,
    pub previous: IndexMap<String, Option<String>>,
    pub changes: Vec<String>,
}

impl Edit {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Splits an assignment line into (prefix up to and including `=`, key, raw value).
fn assignment(line: &str) -> Option<(&str, &str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return None;
    }
    let eq = line.find('=')?;
    let before = &line[..eq];
    let key = before
        .trim()
        .strip_prefix("export ")
        .map(str::trim)
        .unwrap_or(before.trim());
    valid_key(key).then(|| (&line[..=eq], key, &line[eq + 1..]))
}

/// Splits a raw value (what follows `=`) into the value and an inline comment after it,
/// the whitespace before the `#` included, where readers that take inline comments (dotenv,
/// docker compose) see one: a `#` after whitespace, outside quotes. Anything else is all
/// value.
fn split_comment(raw: &str) -> (&str, &str) {
    let start = raw.len() - raw.trim_start().len();
    let body = &raw[start..];
    let value_end = match body.chars().next() {
        Some('#') if start > 0 => 0,
        Some(quote @ ('"' | '\'')) => {
            let mut escaped = false;
            let close = body.char_indices().skip(1).find(|&(_, c)| {
                let closes = c == quote && !escaped;
                escaped = quote == '"' && c == '\\' && !escaped;
                closes
            });
            match close {
                Some((i, _)) => start + i + 1,
                None => return (raw, ""),
            }
        }
        _ => {
            let bytes = body.as_bytes();
            match (1..bytes.len())
                .find(|&i| bytes[i] == b'#' && matches!(bytes[i - 1], b' ' | b'\t'))
            {
                Some(i) => start + body[..i].trim_end().len(),
                None => return (raw, ""),
            }
        }
    };
    let rest = &raw[value_end..];
    if rest.starts_with([' ', '\t']) && rest.trim_start().starts_with('#') {
        (&raw[..value_end], rest)
    } else {
        (raw, "")
    }
}

/// The value as a program reading the file would see it: an inline comment and surrounding
/// quotes removed.
pub fn unquote(raw: &str) -> String {
    let raw = split_comment(raw).0.trim();
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        let inner = &raw[1..raw.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
        raw[1..raw.len() - 1].to_string()
    } else {
        raw.to_string()
    }
}

/// Whether every reader of env files takes `value` written bare as itself: letters,
/// digits and `-_./:@,+=%` only (no space, quote, `$`, `#`, backslash…).
fn plain(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+=%".contains(c))
}

/// A value as `format` writes it.
fn written(value: &str, format: Format) -> String {
    match format {
        Format::Docker => value.to_string(),
        Format::Auto | Format::Shell => quote(value),
    }
}

/// A raw value (what follows `=`) as `format`'s reader takes it.
fn read(raw: &str, format: Format) -> String {
    match format {
        Format::Docker => raw.to_string(),
        Format::Auto | Format::Shell => unquote(raw),
    }
}

/// Why these values cannot be written in a file of `format` (`Auto` come to by
/// [`Format::for_text`]), naming the first key: a value that needs quotes where the reader is
/// not known. The message never holds the value (it may be a secret).
pub fn needs_a_format<'a>(
    format: Format,
    mut values: impl Iterator<Item = (&'a String, &'a String)>,
) -> Option<String> {
    if format != Format::Auto {
        return None;
    }
    let (key, _) = values.find(|(_, value)| !plain(value))?;
    Some(format!(
        "the value of {key} needs quotes (it holds characters other than letters, digits and          `-_./:@,+=%`), and who reads the file is not known: docker --env-file would keep the          quotes as part of the value, a shell or docker compose would remove them; say which          with `format: docker` (written as it is) or `format: shell` (quoted)"
    ))
}

/// Quotes a value only when it needs it, as a POSIX shell reads it.
pub fn quote(value: &str) -> String {
    if plain(value) {
        value.to_string()
    } else {
        let escaped: String = value
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' | '$' | '`' => vec!['\\', c],
                _ => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

/// Why `value` cannot be written as the value of `key`, if it cannot: a key a reader would
/// not read back, or a line break. A value with `\n` or `\r` would start a second line — a
/// second variable (`evil\nINJECTED=1`) for docker `--env-file` and systemd
/// `EnvironmentFile` — and no quoting is read as one value by all of docker, systemd and
/// dotenv, so it is refused. The message never holds the value (it may be a secret).
pub fn invalid(key: &str, value: &str) -> Option<String> {
    if !valid_key(key) {
        return Some(format!(
            "`{}` is not a key an env file can hold (letters, digits, `_`, `.`, `-`, not \
             starting with a digit)",
            printable(key)
        ));
    }
    let what = if value.contains(['\n', '\r']) {
        "a line break"
    } else if value.contains('\0') {
        "a NUL byte"
    } else {
        return None;
    };
    Some(format!(
        "the value of {key} contains {what}, which an env file cannot hold: docker \
         --env-file, systemd EnvironmentFile and dotenv each read it differently"
    ))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !key.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether a key is named like a secret (`*PASSWORD*`, `*TOKEN*`, `*SECRET*`, `*KEY*`, in
/// any case): its values are masked in `previous`, plans and every output.
pub fn is_secret_name(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    ["PASSWORD", "TOKEN", "SECRET", "KEY"]
        .iter()
        .any(|word| key.contains(word))
}

/// Text for a plan line: control characters (a newline, a carriage return) escaped, so a
/// value can never start a line of its own.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '\n' => vec!['\\', 'n'],
            '\r' => vec!['\\', 'r'],
            '\t' => vec!['\\', 't'],
            c if c.is_control() => c.escape_unicode().collect(),
            c => vec![c],
        })
        .collect()
}

/// Sets and unsets keys, values read and written as `format`'s reader takes them. Every
/// assignment of a set key is rewritten (the last one wins for most readers, so all must
/// agree) keeping an inline comment after it (docker has none: there the rest of the line is
/// the value); new keys are appended; unset keys' lines are removed. Lines keep their own
/// line ending; new lines take the file's (its first line's: a CRLF file stays CRLF).
pub fn edit(text: &str, set: &IndexMap<String, String>, unset: &[String], format: Format) -> Edit {
    let mut previous: IndexMap<String, Option<String>> = set
        .keys()
        .chain(unset.iter())
        .map(|k| (k.clone(), None))
        .collect();
    let eol = if text.split('\n').next().is_some_and(|l| l.ends_with('\r')) && text.contains('\n') {
        "\r\n"
    } else {
        "\n"
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut out = String::new();
    let mut changes = Vec::new();
    let mut push = |line: &str, ending: &str| {
        out.push_str(line);
        out.push_str(if ending.is_empty() { eol } else { ending });
    };
    for piece in text.split_inclusive('\n') {
        let (line, ending) = if let Some(line) = piece.strip_suffix("\r\n") {
            (line, "\r\n")
        } else if let Some(line) = piece.strip_suffix('\n') {
            (line, "\n")
        } else {
            (piece, "")
        };
        let Some((prefix, key, raw)) = assignment(line) else {
            push(line, ending);
            continue;
        };
        if let Some(value) = set.get(key) {
            let old = read(raw, format);
            seen.push(
                set.get_key_value(key)
                    .map(|(k, _)| k.as_str())
                    .unwrap_or(key),
            );
            if old == *value {
                push(line, ending);
            } else {
                let comment = match format {
                    Format::Docker => "",
                    Format::Auto | Format::Shell => split_comment(raw).1,
                };
                changes.push(format!(
                    "~ {key}: {} → {}",
                    printable(&old),
                    printable(value)
                ));
                push(
                    &format!("{prefix}{}{comment}", written(value, format)),
                    ending,
                );
            }
            previous.insert(key.to_string(), Some(old));
        } else if unset.iter().any(|u| u == key) {
            previous.insert(key.to_string(), Some(read(raw, format)));
            changes.push(format!("- {key}"));
        } else {
            push(line, ending);
        }
    }
    for (key, value) in set {
        if !seen.contains(&key.as_str()) {
            changes.push(format!("+ {}={}", printable(key), printable(value)));
            push(&format!("{key}={}", written(value, format)), "");
        }
    }
    Edit {
        text: out,
        previous,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keeps_comments_order_and_unrelated_lines() {
        let text = "# secrets\nexport A=1\nB=\"two words\"\n\nC=3 # note\n";
        let edit = edit(
            text,
            &set(&[("B", "2"), ("D", "new value")]),
            &["C".to_string()],
            Format::Shell,
        );
        assert_eq!(edit.text, "# secrets\nexport A=1\nB=2\n\nD=\"new value\"\n");
        assert_eq!(edit.previous["B"].as_deref(), Some("two words"));
        assert_eq!(edit.previous["C"].as_deref(), Some("3"));
        assert_eq!(edit.previous["D"], None);
        assert!(edit.changed());
    }

    #[test]
    fn inline_comments_are_only_after_whitespace_outside_quotes() {
        assert_eq!(split_comment("a # c"), ("a", " # c"));
        assert_eq!(split_comment("a#b"), ("a#b", ""));
        assert_eq!(split_comment(" # only"), ("", " # only"));
        assert_eq!(
            split_comment("\"x \\\" # y\"\t# c"),
            ("\"x \\\" # y\"", "\t# c")
        );
        assert_eq!(split_comment("'x # y' # c"), ("'x # y'", " # c"));
        assert_eq!(split_comment("\"open # c"), ("\"open # c", ""));
        assert_eq!(unquote("\"x \\\" # y\"\t# c"), "x \" # y");
    }

    #[test]
    fn each_line_keeps_its_ending_and_new_lines_take_the_first_lines() {
        let edit = edit(
            "A=1\r\nB=2\nC=3",
            &set(&[("B", "x"), ("D", "4")]),
            &[],
            Format::Auto,
        );
        assert_eq!(edit.text, "A=1\r\nB=x\nC=3\r\nD=4\r\n");
    }

    #[test]
    fn newlines_and_bad_keys_are_refused_naming_the_key() {
        assert!(invalid("HOST", "a\nB=1").is_some_and(|m| m.contains("HOST")));
        assert!(invalid("HOST", "a\rB=1").is_some_and(|m| m.contains("line break")));
        assert!(invalid("A\nB", "x").is_some_and(|m| m.contains("A\\nB")));
        assert!(invalid("1A", "x").is_some());
        assert_eq!(invalid("HOST", "a b # c"), None);
    }

    #[test]
    fn secret_names() {
        for key in [
            "DB_PASSWORD",
            "api_token",
            "SecretSauce",
            "SSH_KEY",
            "keyring",
        ] {
            assert!(is_secret_name(key), "{key}");
        }
        assert!(!is_secret_name("HOST"));
    }

    #[test]
    fn docker_takes_a_line_as_it_is_and_auto_asks_who_reads_the_file() {
        let docker = edit(
            "A=\"quoted\"\nB=1 # not a comment\n",
            &set(&[("A", "quoted"), ("B", "p\\$w!x"), ("C", "a b")]),
            &[],
            Format::Docker,
        );
        assert_eq!(docker.text, "A=quoted\nB=p\\$w!x\nC=a b\n");
        assert_eq!(docker.previous["A"].as_deref(), Some("\"quoted\""));
        assert_eq!(docker.previous["B"].as_deref(), Some("1 # not a comment"));
        let values = set(&[("HOST", "10.0.0.5"), ("PW", "p$w!x")]);
        let why = needs_a_format(Format::Auto.for_text("X=1\n"), values.iter()).unwrap();
        assert!(why.contains("PW") && !why.contains("p$w"), "{why}");
        assert_eq!(
            needs_a_format(Format::Auto.for_text("X=\"1\"\n"), values.iter()),
            None
        );
        assert_eq!(Format::Auto.for_text("export X=1\n"), Format::Shell);
        assert_eq!(needs_a_format(Format::Docker, values.iter()), None);
        let plain = set(&[("HOST", "10.0.0.5")]);
        assert_eq!(needs_a_format(Format::Auto, plain.iter()), None);
    }

    #[test]
    fn same_value_is_no_change() {
        let edit = edit("A=1\n", &set(&[("A", "1")]), &[], Format::Auto);
        assert!(!edit.changed());
        assert_eq!(edit.text, "A=1\n");
    }
}
