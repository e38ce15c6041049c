//! Which steps may start: a step is ready once every step it depends on has finished and let
//! its dependants run (succeeded, was skipped, or failed under `continue_on_error`). A
//! scheduler can start from steps already done — what `--resume` needs.

use crate::analyze::Checked;
use std::collections::BTreeSet;

pub struct Scheduler<'a> {
    checked: &'a Checked,
    /// Per step: how many of its dependencies have not let it run yet.
    waiting_on: Vec<usize>,
    ready: BTreeSet<usize>,
    started: Vec<bool>,
    /// Steps done before (a resume keeps them): they never run, and pass once what they
    /// need is settled.
    kept: Vec<bool>,
}

impl<'a> Scheduler<'a> {
    /// A scheduler of the main steps, with `done` (steps that completed in an earlier run)
    /// counted as started and passed.
    pub fn new(checked: &'a Checked, done: &BTreeSet<usize>) -> Self {
        let count = checked.main_count();
        let mut scheduler = Self {
            checked,
            waiting_on: checked.deps.iter().take(count).map(Vec::len).collect(),
            ready: BTreeSet::new(),
            started: vec![false; count],
            kept: vec![false; count],
        };
        // A step done before lets its dependants start only once everything it needs is
        // settled too: one downstream of a step that runs again (it was undone) waits for it,
        // then passes at once (see `passed`). In execution order, so `waiting_on` is 0
        // exactly when all a step needs is settled.
        for index in checked.order.iter().copied().filter(|i| *i < count) {
            if done.contains(&index) {
                scheduler.started[index] = true;
                scheduler.kept[index] = true;
                if scheduler.waiting_on[index] == 0 {
                    scheduler.release_dependants(index);
                }
            }
        }
        scheduler.ready = (0..count)
            .filter(|i| scheduler.waiting_on[*i] == 0 && !scheduler.started[*i])
            .collect();
        scheduler
    }

    /// The next ready step, in playbook order, marked started.
    pub fn start_next(&mut self) -> Option<usize> {
        let next = self.ready.pop_first()?;
        self.started[next] = true;
        Some(next)
    }

    /// `index` finished and lets its dependants run.
    pub fn passed(&mut self, index: usize) {
        for dependant in self.release_dependants(index) {
            if self.kept[dependant] {
                // Done before, now all it needs is settled: it passes without running.
                self.passed(dependant);
            } else {
                self.ready.insert(dependant);
            }
        }
    }

    /// Steps never started, in execution order: what a halted run reports as skipped.
    pub fn unstarted(&self) -> impl Iterator<Item = usize> + '_ {
        self.checked
            .order
            .iter()
            .copied()
            .filter(|i| !self.started[*i])
    }

    /// Counts `index` as done for each dependant; returns those now waiting on nothing.
    fn release_dependants(&mut self, index: usize) -> Vec<usize> {
        let mut freed = Vec::new();
        for dependant in &self.checked.dependents[index] {
            self.waiting_on[*dependant] -= 1;
            if self.waiting_on[*dependant] == 0
                && (!self.started[*dependant] || self.kept[*dependant])
            {
                freed.push(*dependant);
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> Checked {
        let registry = crate::registry::tests::minimal();
        let file = crate::source::SourceFile::new("test.yaml", text);
        let (playbook, warnings) = crate::load::load_source(file, &registry).expect("loads");
        crate::analyze::analyze(playbook, warnings).expect("checks")
    }

    const DIAMOND: &str = "flow: 1\nsteps:\n  a: { type: log, with: { message: a } }\n  b: { type: log, needs: [a], with: { message: b } }\n  c: { type: log, needs: [a], with: { message: c } }\n  d: { type: log, needs: [b, c], with: { message: d } }\n";

    #[test]
    fn a_step_is_ready_when_all_it_needs_passed() {
        let checked = checked(DIAMOND);
        let mut scheduler = Scheduler::new(&checked, &BTreeSet::new());
        assert_eq!(scheduler.start_next(), Some(0));
        assert_eq!(scheduler.start_next(), None);
        scheduler.passed(0);
        assert_eq!(
            (scheduler.start_next(), scheduler.start_next()),
            (Some(1), Some(2))
        );
        scheduler.passed(1);
        assert_eq!(scheduler.start_next(), None, "d still waits on c");
        scheduler.passed(2);
        assert_eq!(scheduler.start_next(), Some(3));
        assert_eq!(scheduler.unstarted().count(), 0);
    }

    #[test]
    fn a_kept_step_after_one_that_runs_again_waits_for_it() {
        let checked = checked(DIAMOND);
        // a runs again (it was undone); b and c were kept: d must wait for a.
        let done: BTreeSet<usize> = [1, 2].into();
        let mut scheduler = Scheduler::new(&checked, &done);
        assert_eq!(scheduler.start_next(), Some(0));
        assert_eq!(
            scheduler.start_next(),
            None,
            "d waits for a, through b and c"
        );
        scheduler.passed(0);
        assert_eq!(scheduler.start_next(), Some(3));
    }

    #[test]
    fn it_starts_from_steps_already_done() {
        let checked = checked(DIAMOND);
        let done: BTreeSet<usize> = [0, 1].into();
        let mut scheduler = Scheduler::new(&checked, &done);
        assert_eq!(scheduler.start_next(), Some(2), "only c is left before d");
        assert_eq!(scheduler.start_next(), None);
        assert_eq!(scheduler.unstarted().collect::<Vec<_>>(), vec![3]);
        scheduler.passed(2);
        assert_eq!(scheduler.start_next(), Some(3));
    }
}
