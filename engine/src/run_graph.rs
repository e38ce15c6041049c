//! The step graph of a run as `run.json` records it (`graph`): each step's id, label, type
//! and the steps it waits for, so that a reader of the journal alone (`flow serve`) can draw
//! the playbook — including the steps that have not started yet.

use crate::analyze::Checked;
use crate::secrets::Masker;
use serde::{Deserialize, Serialize};

/// One step of the recorded graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphStep {
    pub id: String,
    /// The step's `name:`, when it has one (masked like the events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The steps it waits for (none for a `finally` step: those run in written order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finally: bool,
}

/// The graph of `checked`: main steps in execution order, then the `finally` steps.
pub fn graph(checked: &Checked, masker: &Masker) -> Vec<GraphStep> {
    let playbook = &checked.playbook;
    let node = |step: &crate::playbook::Step| GraphStep {
        id: step.id.clone(),
        name: step.name.as_ref().map(|n| masker.mask(n)),
        type_name: step.body.type_name.clone(),
        needs: checked
            .deps
            .get(step.index)
            .into_iter()
            .flatten()
            .filter_map(|d| playbook.steps.get(*d))
            .map(|d| d.id.clone())
            .collect(),
        finally: step.finally,
    };
    checked
        .walk_order()
        .filter_map(|i| playbook.steps.get(i))
        .map(node)
        .collect()
}
