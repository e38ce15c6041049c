//! `flow plan --out plan.json` and `flow apply plan.json`: a saved plan records what it was
//! made from (the playbook and its hash, the params without secrets, a fingerprint of what each
//! read returned), and applying it first checks that none of that moved.

use crate::secrets::Masker;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Marks the file as a flow plan, and its format version.
    pub flow_plan: u32,
    pub created_at: String,
    pub plan_id: String,
    /// The playbook's absolute path, its sha256, and its text (for a readable diff).
    pub playbook: String,
    pub playbook_hash: String,
    pub playbook_text: String,
    /// Params as resolved for the plan, secrets excluded.
    pub params: IndexMap<String, Value>,
    /// Secret params: not stored, to be given again at apply.
    pub secret_params: Vec<String>,
    pub offline: bool,
    /// What each read step returned.
    pub reads: IndexMap<String, ReadFingerprint>,
    /// Which plan key fingerprinted the reads that saw a secret (`keyed`): an HMAC of a fixed
    /// text under the key, never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The plan as it was shown, line by line (secrets masked), each write with its `undo`.
    #[serde(default)]
    pub lines: Vec<crate::kinds::PlanLine>,
    /// The steps whose `undo` runs if a step fails, in the order it would run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReadFingerprint {
    /// A hash of the read's outputs, secrets included (a secret that changed is drift too).
    /// Outputs without a secret: sha256, salted with the plan id (the preview shows them
    /// anyway). Outputs holding a secret (`keyed`): HMAC-SHA256 under the state dir's plan
    /// key, which is never in the plan — a plain hash would let anyone with the plan file
    /// test guesses at the secret (10 000 for a 4-digit PIN).
    pub sha256: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keyed: bool,
    /// The outputs with secrets masked, pretty-printed and cut short, to show what moved.
    pub preview: Vec<String>,
}

const PREVIEW_LINES: usize = 60;
/// Longest preview line kept: a read of megabytes stays a fingerprint and a glimpse.
const PREVIEW_WIDTH: usize = 200;

/// The key that fingerprints reads holding secrets: 32 random bytes in
/// `<state-dir>/plan-key` (mode 0600), made on first use. Plan and apply of one saved plan
/// share it through the state dir.
pub struct PlanKey {
    key: Vec<u8>,
}

pub const PLAN_KEY_FILE: &str = "plan-key";

impl PlanKey {
    /// The state dir's key, made (0600, in a 0700 folder) when `create` and there is none.
    pub fn load(state_dir: &std::path::Path, create: bool) -> std::io::Result<Option<PlanKey>> {
        use std::os::unix::fs::DirBuilderExt as _;
        let path = state_dir.join(PLAN_KEY_FILE);
        if let Some(key) = crate::key_file::read(&path)? {
            return Ok(Some(PlanKey { key }));
        }
        if !create {
            return Ok(None);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)?;
        Ok(Some(PlanKey {
            key: crate::key_file::create(&path)?,
        }))
    }

    /// Names the key without revealing it.
    pub fn id(&self) -> String {
        hex(&hmac_sha256(&self.key, b"flow plan key id"))[..16].to_string()
    }
}

use crate::key_file::hex;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = sha2::Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = sha2::Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Whether a read's outputs hold a secret (they change when masked): their fingerprint then
/// needs the plan key.
pub fn holds_secret(outputs: &Value, masker: &Masker) -> bool {
    !masker.is_empty() && masker.mask_outputs(outputs) != *outputs
}

/// The fingerprint of what a read returned; `key` is needed when the outputs hold a secret
/// (`holds_secret`), and a read holding one is never fingerprinted without it.
pub fn fingerprint(
    plan_id: &str,
    outputs: &Value,
    masker: &Masker,
    key: Option<&PlanKey>,
) -> ReadFingerprint {
    let outputs = &without_request_ids(outputs);
    let canonical = serde_json::to_string(outputs).unwrap_or_default();
    let masked = masker.mask_outputs(outputs);
    let message = format!("{plan_id}\n{canonical}");
    let (sha256, keyed) = if masked == *outputs {
        (hex(&sha2::Sha256::digest(message.as_bytes())), false)
    } else {
        match key {
            Some(key) => (hex(&hmac_sha256(&key.key, message.as_bytes())), true),
            // No key: nothing that can be tested against the secret; such a read always
            // counts as moved.
            None => (String::from("unkeyed"), true),
        }
    };
    let pretty = serde_json::to_string_pretty(&masked).unwrap_or_default();
    ReadFingerprint {
        sha256,
        keyed,
        preview: pretty
            .lines()
            .take(PREVIEW_LINES)
            .map(|line| match line.char_indices().nth(PREVIEW_WIDTH) {
                Some((cut, _)) => format!("{}… ({} chars)", &line[..cut], line.chars().count()),
                None => line.to_string(),
            })
            .collect(),
    }
}

/// `(request id …)`, as a service's error names the request (AWS errors do): every call
/// gets a new one, so it is no part of what a read returned — a plan holding one would
/// always be refused as drift.
pub fn strip_request_ids(text: &str) -> std::borrow::Cow<'_, str> {
    static REQUEST_ID: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    REQUEST_ID
        .get_or_init(|| regex::Regex::new(r" ?\(request id [^)]*\)").expect("a valid regex"))
        .replace_all(text, "")
}

/// `outputs` with [`strip_request_ids`] applied to every text in it.
fn without_request_ids(outputs: &Value) -> Value {
    match outputs {
        Value::String(text) => Value::String(strip_request_ids(text).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(without_request_ids).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_request_ids(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The playbook's text as a saved plan keeps it and a drift diff shows it: every secret
/// `masker` knows masked — and `masker` first learns the secrets written in the playbook
/// itself, which a plan need not have rendered: literal values of secret fields (a Redis
/// `password:`) and URL passwords. Line for line, so that diffs line up.
pub fn masked_playbook_text(playbook: &crate::playbook::Playbook, masker: &Masker) -> String {
    let names: Vec<String> = playbook
        .steps
        .iter()
        .flat_map(|s| std::iter::once(&s.body).chain(s.undo.as_ref()))
        .flat_map(|b| b.step_type.meta().secret_fields.iter().cloned())
        .collect();
    if let Ok(node) = crate::yaml::parse(&playbook.file) {
        learn_written_secrets(&node.to_json(), &names, masker);
    }
    masker
        .mask(&playbook.file.text)
        .split('\n')
        .map(crate::secrets::redact_urls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Teaches `masker` the secrets written as they are in `value` (a playbook's text, or a step's
/// `with`): the literal values of the fields named in `names` (secret fields, such as a Redis
/// `password:`), and the password of every URL. A template (`{{ … }}`) is no secret itself.
pub fn learn_written_secrets(value: &Value, names: &[String], masker: &Masker) {
    let literal = |v: &Value| v.as_str().is_some_and(|s| !s.contains("{{"));
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if names.contains(key) && literal(value) {
                    masker.add(value);
                } else {
                    learn_written_secrets(value, names, masker);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| learn_written_secrets(v, names, masker)),
        Value::String(text) if !text.contains("{{") => {
            if let Some(password) = crate::secrets::url_password(text) {
                masker.add(&Value::String(password.to_string()));
            }
        }
        _ => {}
    }
}

/// Reads a plan file; `None` when the file is not a plan (a playbook, say).
pub fn read(path: &std::path::Path) -> Option<Result<SavedPlan, String>> {
    // What cannot be read is not a plan: loading it as a playbook then says why.
    let text = crate::regular_file::read_text(path, crate::regular_file::INPUT_TEXT_LIMIT).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value.get("flow_plan")?;
    Some(match serde_json::from_value::<SavedPlan>(value) {
        Ok(plan) if plan.flow_plan == FORMAT => Ok(plan),
        Ok(plan) => Err(format!(
            "{} is a plan of format {}; this flow reads format {FORMAT}",
            path.display(),
            plan.flow_plan
        )),
        Err(e) => Err(format!("{} is not a valid flow plan: {e}", path.display())),
    })
}

/// One way the world moved since the plan.
#[derive(Debug, Clone)]
pub struct Drift {
    pub what: String,
    pub diff: Vec<String>,
}

/// A unified diff of two texts, `- ` and `+ ` lines with a little context.
pub fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    for group in diff.grouped_ops(2) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "- ",
                    similar::ChangeTag::Insert => "+ ",
                    similar::ChangeTag::Equal => "  ",
                };
                out.push(format!("{sign}{}", change.value().trim_end_matches('\n')));
            }
        }
        out.push("  …".to_string());
    }
    out.pop();
    out
}

/// Compares what the plan saw with what a fresh plan sees now.
pub fn compare_reads(saved: &SavedPlan, now: &IndexMap<String, ReadFingerprint>) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for (step, before) in &saved.reads {
        match now.get(step) {
            None => drifts.push(Drift {
                what: format!("step `{step}` was read for the plan but is not read now"),
                diff: Vec::new(),
            }),
            Some(after) if after.sha256 != before.sha256 || after.sha256 == "unkeyed" => drifts
                .push(Drift {
                    what: format!("step `{step}` reads something else now"),
                    diff: diff_lines(&before.preview.join("\n"), &after.preview.join("\n")),
                }),
            Some(_) => {}
        }
    }
    for step in now.keys().filter(|s| !saved.reads.contains_key(*s)) {
        drifts.push(Drift {
            what: format!("step `{step}` is read now but was not for the plan"),
            diff: Vec::new(),
        });
    }
    drifts
}

/// Compares params (secrets excluded on both sides).
pub fn compare_params(
    saved: &IndexMap<String, Value>,
    now: &IndexMap<String, Value>,
) -> Vec<Drift> {
    let show = |v: Option<&Value>| {
        v.map(crate::evaluate::display_value)
            .unwrap_or_else(|| "(not set)".into())
    };
    saved
        .keys()
        .chain(now.keys().filter(|k| !saved.contains_key(*k)))
        .filter(|name| saved.get(*name) != now.get(*name))
        .map(|name| Drift {
            what: format!(
                "param `{name}`: `{}` in the plan, `{}` now",
                show(saved.get(name)),
                show(now.get(name))
            ),
            diff: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (test case 6).
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_read_holding_a_secret_is_fingerprinted_with_the_key_only() {
        let masker = Masker::new();
        masker.add(&Value::String("4831".into()));
        let key = PlanKey { key: vec![7; 32] };
        let outputs = serde_json::json!({ "stdout": "pin 4831" });
        let keyed = fingerprint("plan", &outputs, &masker, Some(&key));
        assert!(keyed.keyed);
        let plain = hex(&sha2::Sha256::digest(
            format!("plan\n{}", serde_json::to_string(&outputs).unwrap()).as_bytes(),
        ));
        assert_ne!(keyed.sha256, plain);
        let other_key = PlanKey { key: vec![8; 32] };
        assert_ne!(
            fingerprint("plan", &outputs, &masker, Some(&other_key)).sha256,
            keyed.sha256
        );
        let public = serde_json::json!({ "stdout": "nothing secret" });
        assert!(!fingerprint("plan", &public, &masker, Some(&key)).keyed);
    }
}
