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
    /// The plan as it was shown, line by line (secrets masked).
    #[serde(default)]
    pub lines: Vec<crate::plan::PlanLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReadFingerprint {
    /// sha256 of the read's outputs (salted with the plan id), secrets included: a secret
    /// that changed is drift too.
    pub sha256: String,
    /// The outputs with secrets masked, pretty-printed and cut short, to show what moved.
    pub preview: Vec<String>,
}

const PREVIEW_LINES: usize = 60;

pub fn fingerprint(plan_id: &str, outputs: &Value, masker: &Masker) -> ReadFingerprint {
    let canonical = serde_json::to_string(outputs).unwrap_or_default();
    let digest = sha2::Sha256::digest(format!("{plan_id}\n{canonical}").as_bytes());
    let pretty = serde_json::to_string_pretty(&masker.mask_json(outputs)).unwrap_or_default();
    ReadFingerprint {
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        preview: pretty
            .lines()
            .take(PREVIEW_LINES)
            .map(str::to_string)
            .collect(),
    }
}

/// Reads a plan file; `None` when the file is not a plan (a playbook, say).
pub fn read(path: &std::path::Path) -> Option<Result<SavedPlan, String>> {
    let text = std::fs::read_to_string(path).ok()?;
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
            Some(after) if after.sha256 != before.sha256 => drifts.push(Drift {
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
