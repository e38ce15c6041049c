//! Masks secret values as `***` in everything flow writes.

use serde_json::Value;
use std::sync::RwLock;

pub const MASK: &str = "***";

/// Secrets shorter than this are masked only where a whole value equals them: masking every
/// `x` or `ab` in every line would make all output unreadable (and hide nothing worth it).
const SHORTEST_SUBSTRING: usize = 3;

/// The password inside a URL's user info (`redis://:pw@host`, `https://u:pw@host`) — also
/// when the password holds `/ ? #` unencoded (base64 passwords do) and when the scheme is
/// mistyped (`redis//:pw@host`, `redis:/:pw@host`): a value that looks like one is
/// treated as one, since showing a password costs more than hiding a harmless word.
pub fn url_password(text: &str) -> Option<&str> {
    static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^[A-Za-z][A-Za-z0-9+.-]*[:/]{1,3}(?P<user>[^:@/]*):(?P<password>.+)@(?P<host>[^@]*)$",
        )
        .expect("a valid regex")
    });
    static HOST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._~%!$&'()*+,;=-]*)(:[0-9]*)?$")
            .expect("a valid regex")
    });
    static PORT_AND_PATH: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^[0-9]{1,5}/").expect("a valid regex"));
    let text = text.trim();
    if text.len() > 4096 || text.chars().any(char::is_whitespace) {
        return None;
    }
    let found = URL.captures(text)?;
    let password = found.name("password")?;
    let host = found.name("host")?.as_str();
    let authority = host.split(['/', '?', '#']).next().unwrap_or("");
    if !HOST.is_match(authority) {
        return None;
    }
    // `http://host:8080/path@v2` is a host, a port and a path with an `@` in it.
    let user = found.name("user").map_or("", |u| u.as_str());
    if !user.is_empty() && PORT_AND_PATH.is_match(password.as_str()) {
        return None;
    }
    Some(password.as_str())
}

/// Every URL password in a value: in a string, or in any string inside a list or mapping.
pub fn url_passwords(value: &Value) -> Vec<&str> {
    let mut found = Vec::new();
    fn walk<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::String(text) => found.extend(url_password(text)),
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            Value::Object(map) => map.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    walk(value, &mut found);
    found
}

/// `text` with the password of the URL in it shown as `***` (`redis://:***@host`), or `text`
/// itself when it holds none.
pub fn redact_url(text: &str) -> String {
    match url_password(text) {
        Some(password) => {
            let start = password.as_ptr() as usize - text.as_ptr() as usize;
            format!(
                "{}{MASK}{}",
                &text[..start],
                &text[start + password.len()..]
            )
        }
        None => text.to_string(),
    }
}

/// `text` with the password of every URL in it shown as `***`: each word (between spaces,
/// quotes and backticks, without the brackets and commas around it) that holds one.
pub fn redact_urls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('@') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c.is_whitespace() || "\"'`".contains(c))
            .unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        let core = word
            .trim_start_matches(['[', '{', '('])
            .trim_end_matches([',', ']', '}', ')', ';', '.']);
        match url_password(core) {
            Some(_) => out.push_str(&word.replacen(core, &redact_url(core), 1)),
            None => out.push_str(word),
        }
        let mut chars = after.chars();
        if let Some(separator) = chars.next() {
            out.push(separator);
        }
        rest = chars.as_str();
    }
    out.into()
}

/// The secret values of a run: secret params, sensitive outputs, and the leaves of any secret
/// that is a JSON document. Shared by every writer of the run.
#[derive(Debug, Default)]
pub struct Masker {
    secrets: RwLock<Vec<String>>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value (a string, or any JSON whose string leaves become secrets too).
    pub fn add(&self, value: &Value) {
        let mut values = Vec::new();
        collect(value, &mut values, true);
        if let Value::String(text) = value
            && let Ok(document) = serde_json::from_str::<Value>(text)
            && (document.is_object() || document.is_array())
        {
            collect(&document, &mut values, false);
        }
        let found: Vec<String> = values
            .iter()
            .flat_map(|secret| crate::secret_forms::forms(secret))
            .collect();
        if found.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for secret in found {
            if !secrets.contains(&secret) {
                secrets.push(secret);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Whether this exact text is a secret.
    pub fn is_secret(&self, text: &str) -> bool {
        !text.is_empty()
            && self
                .secrets
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|s| s == text)
    }

    /// Whether `text` shows a secret (in any form the masker knows).
    pub fn reveals(&self, text: &str) -> bool {
        !self.is_empty() && self.mask(text) != text
    }

    pub fn mask(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        if secrets.iter().any(|s| s == text) {
            return MASK.to_string();
        }
        let mut out = text.to_string();
        for secret in secrets.iter().filter(|s| s.len() >= SHORTEST_SUBSTRING) {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Masks outputs (a step's, the playbook's): the value of each, by `mask_json`; their
    /// names are names, not data, and stay (masking a name equal to a secret would both break
    /// what reads it and tell which name the secret equals).
    pub fn mask_outputs(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) if !self.is_empty() => Value::Object(
                map.iter()
                    .map(|(name, value)| (name.clone(), self.mask_json(value)))
                    .collect(),
            ),
            other => self.mask_json(other),
        }
    }

    /// Masks a JSON value of free-form data (what a command printed, parsed): every string,
    /// every key (a key that masks to one already there gets a number: `***`, `***#2`), and
    /// every number that is a secret (`1234` of a secret PIN becomes `"***"`). Never use it on
    /// a value whose shape matters: an `Event` masks its own fields (`Event::masked`), outputs
    /// keep their names (`mask_outputs`).
    pub fn mask_json(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (key, value) in map {
                    let mut masked = self.mask(key);
                    if masked != *key {
                        let mut n = 1;
                        let base = masked.clone();
                        while out.contains_key(&masked) || map.contains_key(&masked) {
                            n += 1;
                            masked = format!("{base}#{n}");
                        }
                    }
                    out.insert(masked, self.mask_json(value));
                }
                Value::Object(out)
            }
            Value::Number(n) if self.is_secret(&n.to_string()) => Value::String(MASK.to_string()),
            // Booleans and null keep their type: secrets are text (or numbers).
            other => other.clone(),
        }
    }
}

fn collect(value: &Value, out: &mut Vec<String>, top: bool) {
    match value {
        Value::String(s) if !s.is_empty() && (top || s.len() >= 2) => out.push(s.clone()),
        Value::Number(n) if top => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, out, false)),
        Value::Object(map) => map.values().for_each(|v| collect(v, out, false)),
        _ => {}
    }
}

/// Registers the values of the fields named `names` (at any depth) and URL passwords.
pub fn learn_fields(value: &Value, names: &[String], masker: &Masker) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if names.contains(key) && !value.is_null() {
                    masker.add(value);
                } else {
                    learn_fields(value, names, masker);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| learn_fields(v, names, masker)),
        Value::String(text) => {
            if let Some(password) = url_password(text) {
                masker.add(&Value::String(password.to_string()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_password_inside_a_url() {
        assert_eq!(
            url_password("redis://app:s3cret@10.0.0.5:6379/2"),
            Some("s3cret")
        );
        assert_eq!(url_password("redis://:pw@127.0.0.1"), Some("pw"));
        assert_eq!(url_password("redis://127.0.0.1:6379"), None);
        assert_eq!(url_password("not a url: a:b@c"), None);
    }

    #[test]
    fn finds_a_password_with_slashes_or_under_a_mistyped_scheme() {
        assert_eq!(
            url_password("redis://:ab/c+d?e#f==@10.0.0.5:6379/0"),
            Some("ab/c+d?e#f==")
        );
        assert_eq!(url_password("redis//:pw-9@host"), Some("pw-9"));
        assert_eq!(url_password("redis:/:pw-9@host:6379"), Some("pw-9"));
        assert_eq!(url_password("rediss://u:p@ss@host"), Some("p@ss"));
        // An `@` in a path, a query or a digest is no password.
        assert_eq!(url_password("https://host:8080/path@v2"), None);
        assert_eq!(url_password("https://h/x?mail=a:b@c.com"), None);
        assert_eq!(url_password("docker://registry:5000/img@sha256:abc"), None);
        assert_eq!(url_password("ssh://git@github.com/org/repo"), None);
        assert_eq!(url_password("git@github.com:org/repo.git"), None);
    }

    #[test]
    fn redacts_the_urls_inside_a_message() {
        assert_eq!(
            redact_urls("`redis://:ab/cd@h:1` is not one of: a, b"),
            "`redis://:***@h:1` is not one of: a, b"
        );
        assert_eq!(redact_urls("[redis//:pw@h, x]"), "[redis//:***@h, x]");
        assert_eq!(redact_urls("no url here"), "no url here");
    }

    #[test]
    fn masks_the_json_escaped_and_shell_quoted_forms() {
        let masker = Masker::new();
        masker.add(&json!("Ab\"c\\d'e-Pässwörd"));
        for printed in [
            r#"{"pw": "Ab\"c\\d'e-P\u00e4ssw\u00f6rd"}"#,
            r#"{"pw": "Ab\"c\\d'e-P\u00E4ssw\u00F6rd"}"#,
            r#"{"pw": "Ab\"c\\d'e-Pässwörd"}"#,
            r#"run: tool '--password=Ab"c\d'\''e-Pässwörd'"#,
        ] {
            let masked = masker.mask(printed);
            let leaks = ["Ab", "ö", "00f6", "00F6"];
            assert!(!leaks.iter().any(|l| masked.contains(l)), "{masked}");
        }
    }

    #[test]
    fn outputs_keep_their_names_and_a_secret_number_is_masked() {
        let masker = Masker::new();
        masker.add(&json!("status"));
        masker.add(&json!(4831));
        assert_eq!(
            masker
                .mask_outputs(&json!({"status": "status ok", "pin": 4831, "json": {"status": 1}})),
            json!({"status": "*** ok", "pin": "***", "json": {"***": 1}})
        );
    }

    #[test]
    fn masks_values_and_json_leaves() {
        let masker = Masker::new();
        masker.add(&json!("hunter2"));
        masker.add(&json!(r#"{"user":"admin","password":"s3cr3t"}"#));
        assert_eq!(masker.mask("pw=hunter2 and s3cr3t"), "pw=*** and ***");
        assert_eq!(
            masker.mask_json(&json!({"k": ["hunter2"]})),
            json!({"k": ["***"]})
        );
    }
}
