//! What a run's journal says each step came to, across the run and its resumes: the events
//! replayed in order, the last word on each step winning. `flow apply --resume` decides from
//! this what to keep.

use crate::event::{Event, Status};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The last outcome of a step, or of one `for_each` element.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub outputs: Value,
    pub reason: Option<String>,
    pub outputs_masked: bool,
    /// The element's item, as recorded (masked).
    pub item: Option<Value>,
    /// Its `undo` ran and succeeded afterwards: what it did was reversed.
    pub undone: bool,
}

#[derive(Debug, Default)]
pub struct Recorded {
    /// By step id (main and `finally` steps alike).
    pub steps: HashMap<String, Outcome>,
    /// By step id, then element index.
    pub elements: HashMap<String, BTreeMap<usize, Outcome>>,
    /// Step ids in the order they last succeeded.
    pub completion_order: Vec<String>,
    /// How many times the `undo` of each step (element) succeeded: a step that runs again
    /// after one gets a token of its own, as what the first token made is gone.
    pub undos: HashMap<(String, Option<usize>), u32>,
    /// Undos that failed (or could not run) and have not succeeded since, by step id and
    /// element, in the order they ran: what they should have reversed is still applied.
    pub failed_undos: Vec<(String, Option<usize>)>,
}

impl Recorded {
    pub fn replay(events: &[Event]) -> Self {
        let mut recorded = Recorded::default();
        events.iter().for_each(|event| recorded.observe(event));
        recorded
    }

    /// Takes the next event of the journal (read one at a time: it may be large).
    pub fn observe(&mut self, event: &Event) {
        let Event::StepFinished {
            step,
            element,
            status,
            outputs,
            reason,
            kept,
            outputs_masked,
            item,
            ..
        } = event
        else {
            return;
        };
        // A kept step is reported again, unchanged: its record stands.
        if *kept {
            return;
        }
        if let Some(undone) = step.strip_suffix(".undo") {
            let key = (undone.to_string(), *element);
            if *status == Status::Succeeded {
                self.undone(undone, *element);
                self.failed_undos.retain(|f| *f != key);
            } else if !self.failed_undos.contains(&key) {
                self.failed_undos.push(key);
            }
            return;
        }
        let outcome = Outcome {
            status: *status,
            outputs: outputs.clone().unwrap_or(Value::Object(Default::default())),
            reason: reason.clone(),
            outputs_masked: *outputs_masked,
            item: item.clone(),
            undone: false,
        };
        match element {
            Some(element) => {
                self.elements
                    .entry(step.clone())
                    .or_default()
                    .insert(*element, outcome);
            }
            None => {
                self.completion_order.retain(|s| s != step);
                if *status == Status::Succeeded {
                    self.completion_order.push(step.clone());
                }
                self.steps.insert(step.clone(), outcome);
            }
        }
    }

    fn undone(&mut self, step: &str, element: Option<usize>) {
        *self.undos.entry((step.to_string(), element)).or_default() += 1;
        if let Some(outcome) = self.steps.get_mut(step) {
            outcome.undone = true;
        }
        if let Some(element) = element
            && let Some(outcome) = self
                .elements
                .get_mut(step)
                .and_then(|elements| elements.get_mut(&element))
        {
            outcome.undone = true;
        }
    }

    /// Whether a step finished for good: it succeeded and was not undone since, or its
    /// `when` skipped it.
    pub fn finished(&self, step: &str) -> Option<&Outcome> {
        self.steps.get(step).filter(|o| {
            !o.undone
                && (o.status == Status::Succeeded
                    || (o.status == Status::Skipped
                        && o.reason
                            .as_deref()
                            .is_some_and(crate::playbook::is_when_reason)))
        })
    }

    /// The elements of a step that succeeded and were not undone since.
    pub fn finished_elements(&self, step: &str) -> BTreeMap<usize, &Outcome> {
        self.elements
            .get(step)
            .into_iter()
            .flatten()
            .filter(|(_, o)| o.status == Status::Succeeded && !o.undone)
            .map(|(i, o)| (*i, o))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finished(step: &str, element: Option<usize>, status: Status) -> Event {
        Event::StepFinished {
            step: step.into(),
            element,
            status,
            duration_ms: 1,
            attempts: 1,
            outputs: Some(json!({ "stdout": step })),
            error: None,
            reason: None,
            continued: false,
            kept: false,
            outputs_masked: false,
            item: element.map(|e| json!(e)),
        }
    }

    #[test]
    fn the_last_word_on_a_step_wins_and_an_undo_reverses_it() {
        let events = vec![
            finished("made", None, Status::Succeeded),
            finished("flaky", None, Status::Failed),
            finished("made.undo", None, Status::Succeeded),
            finished("kept", None, Status::Succeeded),
            finished("flaky", None, Status::Succeeded),
        ];
        let recorded = Recorded::replay(&events);
        assert!(recorded.finished("made").is_none(), "undone");
        assert!(recorded.finished("flaky").is_some(), "succeeded on resume");
        assert!(recorded.finished("kept").is_some());
        assert_eq!(recorded.completion_order, vec!["made", "kept", "flaky"]);
    }

    #[test]
    fn a_failed_undo_stays_outstanding_until_one_succeeds() {
        let events = vec![
            finished("secret", None, Status::Succeeded),
            finished("env", None, Status::Succeeded),
            finished("each", Some(0), Status::Succeeded),
            finished("boom", None, Status::Failed),
            finished("each.undo", Some(0), Status::Failed),
            finished("env.undo", None, Status::Succeeded),
            finished("secret.undo", None, Status::Failed),
            // A resume runs the failed ones again: the element's succeeds this time.
            finished("each.undo", Some(0), Status::Succeeded),
            finished("secret.undo", None, Status::Failed),
        ];
        let recorded = Recorded::replay(&events);
        assert_eq!(recorded.failed_undos, vec![("secret".to_string(), None)]);
        assert!(
            recorded.finished("secret").is_some(),
            "its undo failed: still applied"
        );
        assert!(recorded.finished("env").is_none(), "undone");
        assert_eq!(recorded.undos.get(&("each".to_string(), Some(0))), Some(&1));
    }

    #[test]
    fn elements_are_kept_one_by_one() {
        let events = vec![
            finished("each", Some(0), Status::Succeeded),
            finished("each", Some(1), Status::Failed),
            finished("each", Some(2), Status::Succeeded),
            finished("each.undo", Some(2), Status::Succeeded),
            finished("each", None, Status::Failed),
        ];
        let recorded = Recorded::replay(&events);
        assert!(recorded.finished("each").is_none());
        let kept: Vec<usize> = recorded.finished_elements("each").keys().copied().collect();
        assert_eq!(kept, vec![0]);
    }
}
