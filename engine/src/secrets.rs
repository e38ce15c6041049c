//! Masks secret values as `***` in everything flow writes.

use serde_json::Value;
use std::sync::RwLock;

pub const MASK: &str = "***";

/// Secrets shorter than this are masked only where a whole value equals them: masking every
/// `x` or `ab` in every line would make all output unreadable (and hide nothing worth it).
const SHORTEST_SUBSTRING: usize = 3;

/// The password inside a URL's user info (`redis://:pw@host`, `https://u:pw@host`).
pub fn url_password(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
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
        let mut found = Vec::new();
        collect(value, &mut found, true);
        // The forms a secret takes once flow itself prints it: shell-quoted in a command
        // line, and line by line when a multi-line secret (a key) streams out of a command.
        for secret in found.clone() {
            let quoted = crate::template_env::shell_quote(&secret);
            if quoted != secret {
                found.push(quoted);
            }
            if secret.len() >= 4 {
                use base64::Engine as _;
                found.push(base64::engine::general_purpose::STANDARD.encode(&secret));
            }
            if secret.contains('\n') {
                found.extend(
                    secret
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 4)
                        .map(str::to_string),
                );
            }
        }
        if let Value::String(text) = value
            && let Ok(document) = serde_json::from_str::<Value>(text)
            && (document.is_object() || document.is_array())
        {
            collect(&document, &mut found, false);
        }
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

    /// Masks every string inside a JSON value, keys included.
    pub fn mask_json(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.mask(k), self.mask_json(v)))
                    .collect(),
            ),
            // Numbers and booleans keep their type so events still parse; secrets are text.
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
                if names.contains(key) && value.is_string() {
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
