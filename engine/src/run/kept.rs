//! What `flow apply --resume` keeps from the earlier attempts of a run: steps (and `for_each`
//! elements) that finished there, with their recorded outputs. The runner does not run them
//! again; it puts their outputs where templates read them and reports them as kept.

use super::Element;
use crate::event::{Resumed, Status};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A step kept whole: it succeeded (or was skipped by its `when`) before.
#[derive(Debug, Clone)]
pub struct KeptStep {
    pub status: Status,
    pub outputs: Value,
    pub reason: Option<String>,
    pub outputs_masked: bool,
    /// The elements that succeeded (`[None]` for a step without `for_each`): what its `undo`
    /// reverses if the resumed run fails.
    pub elements: Vec<Element>,
}

/// One succeeded element of a `for_each` step that did not succeed as a whole.
#[derive(Debug, Clone)]
pub struct KeptElement {
    /// The item as the journal recorded it (masked); `None` in journals that lack it.
    pub item: Option<Value>,
    pub outputs: Value,
    pub outputs_masked: bool,
}

#[derive(Debug, Clone)]
pub struct Kept {
    pub resumed: Resumed,
    /// Main steps kept whole, by index.
    pub steps: BTreeMap<usize, KeptStep>,
    /// Elements kept of steps that run again, by step index then element index.
    pub elements: HashMap<usize, BTreeMap<usize, KeptElement>>,
    /// Kept steps with an `undo`, in the order they completed: undone last if the resumed run
    /// fails, as they would have been in one run.
    pub completed: Vec<usize>,
    /// How many times each step (element) was undone before, by step id: one that runs again
    /// after its `undo` did gets a new idempotency token (the first one's instance, say, is
    /// gone, and the API would answer with it); the others keep theirs.
    pub undos: HashMap<(String, Option<usize>), u32>,
    /// Undos that failed before (the run's rollback is incomplete), in the order they ran:
    /// the resume runs them again first, and goes on only if they all succeed.
    pub failed_undos: Vec<UndoAgain>,
}

/// A step (element) whose `undo` failed: it is still applied.
#[derive(Debug, Clone)]
pub struct UndoAgain {
    pub index: usize,
    /// The element (with its recorded item), `None` for a step without `for_each`.
    pub element: Element,
    /// What the step finished with, for the undo to read (`None` when it did not finish as a
    /// whole: a `for_each` step whose other elements failed).
    pub outputs: Option<Value>,
}
