//! Editing `KEY=value` files (docker env files, systemd EnvironmentFile, .env) while keeping
//! comments, order and every line that is not being changed.

use indexmap::IndexMap;

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

/// Quotes a value only when it needs it.
pub fn quote(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+=%".contains(c));
    if plain {
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

/// Sets and unsets keys. Every assignment of a set key is rewritten (the last one wins for
/// most readers, so all must agree) keeping an inline comment after it; new keys are
/// appended; unset keys' lines are removed. Lines keep their own line ending; new lines take
/// the file's (its first line's: a CRLF file stays CRLF).
pub fn edit(text: &str, set: &IndexMap<String, String>, unset: &[String]) -> Edit {
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
            previous.insert(key.to_string(), Some(unquote(raw)));
            seen.push(
                set.get_key_value(key)
                    .map(|(k, _)| k.as_str())
                    .unwrap_or(key),
            );
            if unquote(raw) == *value {
                push(line, ending);
            } else {
                let comment = split_comment(raw).1;
                changes.push(format!(
                    "~ {key}: {} → {}",
                    printable(&unquote(raw)),
                    printable(value)
                ));
                push(&format!("{prefix}{}{comment}", quote(value)), ending);
            }
        } else if unset.iter().any(|u| u == key) {
            previous.insert(key.to_string(), Some(unquote(raw)));
            changes.push(format!("- {key}"));
        } else {
            push(line, ending);
        }
    }
    for (key, value) in set {
        if !seen.contains(&key.as_str()) {
            changes.push(format!("+ {}={}", printable(key), printable(value)));
            push(&format!("{key}={}", quote(value)), "");
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
        let edit = edit("A=1\r\nB=2\nC=3", &set(&[("B", "x"), ("D", "4")]), &[]);
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
    fn same_value_is_no_change() {
        let edit = edit("A=1\n", &set(&[("A", "1")]), &[]);
        assert!(!edit.changed());
        assert_eq!(edit.text, "A=1\n");
    }
}
