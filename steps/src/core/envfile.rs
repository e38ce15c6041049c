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
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !key.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| (&line[..=eq], key, &line[eq + 1..]))
}

/// The value as a program reading the file would see it: surrounding quotes removed.
pub fn unquote(raw: &str) -> String {
    let raw = raw.trim();
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
        raw.split(" #").next().unwrap_or("").trim_end().to_string()
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

/// Sets and unsets keys. Every assignment of a set key is rewritten (the last one wins for
/// most readers, so all must agree); new keys are appended; unset keys' lines are removed.
pub fn edit(text: &str, set: &IndexMap<String, String>, unset: &[String]) -> Edit {
    let mut previous: IndexMap<String, Option<String>> = set
        .keys()
        .chain(unset.iter())
        .map(|k| (k.clone(), None))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    for line in text.lines() {
        let Some((prefix, key, raw)) = assignment(line) else {
            lines.push(line.to_string());
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
                lines.push(line.to_string());
            } else {
                let new_line = format!("{prefix}{}", quote(value));
                changes.push(format!("~ {key}: {} → {}", unquote(raw), value));
                lines.push(new_line);
            }
        } else if unset.iter().any(|u| u == key) {
            previous.insert(key.to_string(), Some(unquote(raw)));
            changes.push(format!("- {key}"));
        } else {
            lines.push(line.to_string());
        }
    }
    for (key, value) in set {
        if !seen.contains(&key.as_str()) {
            changes.push(format!("+ {key}={value}"));
            lines.push(format!("{key}={}", quote(value)));
        }
    }
    let mut text_out = lines.join("\n");
    if !text_out.is_empty() {
        text_out.push('\n');
    }
    Edit {
        text: text_out,
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
    fn same_value_is_no_change() {
        let edit = edit("A=1\n", &set(&[("A", "1")]), &[]);
        assert!(!edit.changed());
        assert_eq!(edit.text, "A=1\n");
    }
}
