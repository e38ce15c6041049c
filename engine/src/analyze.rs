//! Static checks across steps: every template reference names something real that is
//! guaranteed to exist when it is read, and the dependency graph has no cycle.

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::playbook::{Playbook, Step};
use crate::template::{Reference, Tmpl};
use std::collections::{BTreeSet, BinaryHeap, HashSet};

/// Outputs every step has, whatever its type.
pub const COMMON_OUTPUTS: &[&str] = &["status", "error", "reason"];

/// A playbook that passed every static check, with its graph.
pub struct Checked {
    pub playbook: Playbook,
    /// For each main step (by index in `playbook.steps`), the steps it waits for.
    pub deps: Vec<Vec<usize>>,
    /// For each main step, the steps waiting for it.
    pub dependents: Vec<Vec<usize>>,
    /// Main steps in execution order (dependencies first, then written order).
    pub order: Vec<usize>,
    /// For each step (main and `finally`), the steps whose skip skips it.
    pub needed: Vec<Vec<usize>>,
    pub warnings: Vec<Diagnostic>,
}

impl Checked {
    pub fn main_count(&self) -> usize {
        self.deps.len()
    }

    /// Every step as plan, policy and the recorded graph walk them: the main steps in
    /// execution order, then the `finally` steps in written order.
    pub fn walk_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.order
            .iter()
            .copied()
            .chain(self.playbook.finally_steps().map(|s| s.index))
    }
}

/// Where a template is written, which decides which names it may use.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    With,
    When,
    ForEach,
    Until,
    Undo,
    Outputs,
}

pub fn analyze(playbook: Playbook, warnings: Vec<Diagnostic>) -> Result<Checked, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let main_count = playbook.main_steps().count();
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); main_count];
    for step in &playbook.steps {
        for (tmpl, place) in templates_of(step) {
            for reference in tmpl.references() {
                if let Some(dep) = check_reference(&playbook, step, reference, place, &mut errors)
                    && !step.finally
                    && place != Place::Undo
                    && dep != step.index
                {
                    deps[step.index].insert(dep);
                }
            }
        }
        for (source, names) in &step.body.deferred {
            for reference in source
                .references
                .iter()
                .filter(|r| !names.iter().any(|n| n == r.root()))
            {
                if let Some(dep) =
                    check_reference(&playbook, step, reference, Place::With, &mut errors)
                    && !step.finally
                    && dep != step.index
                {
                    deps[step.index].insert(dep);
                }
            }
        }
        match (&step.needs, step.finally) {
            (Some(needs), true) if !needs.is_empty() => errors.push(Diagnostic::error(
                Some(&needs[0].1),
                format!("step `{}` is a `finally` step: those run in written order after everything else, so `needs` does not apply", step.id),
            )),
            (Some(needs), false) => {
                for (id, span) in needs {
                    match playbook.step(id) {
                        Some(dep) if dep.finally => errors.push(Diagnostic::error(Some(span), format!("step `{}` needs `{id}`, a `finally` step that runs after every other step", step.id))),
                        Some(dep) if dep.index == step.index => errors.push(Diagnostic::error(Some(span), format!("step `{id}` needs itself"))),
                        Some(dep) => {
                            deps[step.index].insert(dep.index);
                        }
                        None => errors.push(unknown_step(&playbook, id, span, &format!("step `{}` needs `{id}`, which is not a step", step.id))),
                    }
                }
            }
            (None, false) if step.index > 0 => {
                deps[step.index].insert(step.index - 1);
            }
            _ => {}
        }
    }
    // `outputs` are rendered after every step: any step may be read, nothing depends on them.
    if let Some(any_step) = playbook.steps.first() {
        for (_, _, tmpl) in &playbook.outputs {
            for reference in tmpl.references() {
                check_reference(&playbook, any_step, reference, Place::Outputs, &mut errors);
            }
        }
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return Err(errors);
    }
    let deps: Vec<Vec<usize>> = deps.into_iter().map(|d| d.into_iter().collect()).collect();
    if let Some(cycle) = find_cycle(&deps) {
        let first = &playbook.steps[*cycle.iter().min().unwrap_or(&0)];
        let names: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|i| playbook.steps[*i].id.as_str())
            .collect();
        return Err(vec![Diagnostic::error(Some(&first.span), format!("dependency cycle: {}", names.join(" → ")))
            .with_help("a step waits for the steps in its `needs`, the steps whose outputs it references, and (without `needs`) the step above it")]);
    }
    let mut dependents = vec![Vec::new(); main_count];
    for (step, ds) in deps.iter().enumerate() {
        for d in ds {
            dependents[*d].push(step);
        }
    }
    let order = topological_order(&deps, &dependents);
    check_undo_references(&playbook, &deps, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let needed = crate::skip_propagation::needed_steps(&playbook);
    let every_step: Vec<usize> = order
        .iter()
        .copied()
        .chain(playbook.finally_steps().map(|s| s.index))
        .collect();
    let mut warnings = warnings;
    warnings.extend(crate::skip_propagation::warnings(
        &playbook,
        &needed,
        &every_step,
    ));
    warnings.extend(crate::argv_secrets::warnings(&playbook));
    Ok(Checked {
        playbook,
        deps,
        dependents,
        order,
        needed,
        warnings,
    })
}

fn templates_of(step: &Step) -> Vec<(&Tmpl, Place)> {
    let mut out = vec![(&step.body.with, Place::With)];
    if let Some(when) = &step.when {
        out.push((&when.expr, Place::When));
    }
    if let Some(for_each) = &step.for_each {
        out.push((for_each, Place::ForEach));
    }
    if let Some(confirm) = &step.confirm {
        out.push((confirm, Place::With));
    }
    if let Some(until) = step.retry.as_ref().and_then(|r| r.until.as_ref()) {
        out.push((&until.expr, Place::Until));
    }
    if let Some(undo) = &step.undo {
        out.push((&undo.with, Place::Undo));
    }
    out
}

const ROOTS: &[&str] = &[
    "params",
    "steps",
    "env",
    "run",
    "item",
    "item_index",
    "result",
];
const RUN_FIELDS: &[&str] = &["id", "mode", "started_at", "playbook_dir"];

/// Checks one reference; returns the main step it depends on, if any.
fn check_reference(
    playbook: &Playbook,
    step: &Step,
    reference: &Reference,
    place: Place,
    errors: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let here = if place == Place::Outputs {
        "`outputs`".to_string()
    } else {
        format!("step `{}`", step.id)
    };
    let span = Some(&reference.span);
    match reference.root() {
        "params" => {
            let name = reference.path.get(1)?;
            if !playbook.params.contains_key(name) {
                let d = Diagnostic::error(
                    span,
                    format!("{here} uses `params.{name}`, which is not declared under `params:`"),
                );
                errors.push(
                    match did_you_mean(name, playbook.params.keys().map(String::as_str)) {
                        Some(hint) => d.with_help(hint),
                        None => d.with_help(format!(
                            "declare it: `params: {{ {name}: {{ type: string }} }}`"
                        )),
                    },
                );
            }
            None
        }
        "item" | "item_index" => {
            let inside = step.for_each.is_some()
                && matches!(place, Place::With | Place::Until | Place::Undo);
            if !inside {
                let root = reference.root();
                let message = match place {
                    Place::When if step.for_each.is_some() => format!(
                        "`{root}` cannot be used in `when`: `when` is evaluated once for the whole step, before `for_each` runs"
                    ),
                    Place::ForEach => format!(
                        "`{root}` cannot be used in `for_each` itself, which produces the elements"
                    ),
                    _ => format!(
                        "`{root}` is only defined inside a `for_each` step, and {here} has no `for_each`"
                    ),
                };
                errors.push(Diagnostic::error(span, message));
            }
            None
        }
        "result" => {
            if place != Place::Until {
                errors.push(Diagnostic::error(
                    span,
                    "`result` is only defined in `retry.until` (the outputs of the attempt)",
                ));
            } else if let Some(field) = reference.path.get(1) {
                let meta = step.body.step_type.meta();
                if !meta.outputs.iter().any(|o| o == field) {
                    let d = Diagnostic::error(
                        span,
                        format!("step `{}` ({}) has no output `{field}`", step.id, meta.name),
                    );
                    errors.push(
                        match did_you_mean(field, meta.outputs.iter().map(String::as_str)) {
                            Some(hint) => d.with_help(hint),
                            None => {
                                d.with_help(format!("its outputs: {}", meta.outputs.join(", ")))
                            }
                        },
                    );
                }
            }
            None
        }
        "env" => None,
        "run" => {
            if let Some(field) = reference.path.get(1)
                && !RUN_FIELDS.contains(&field.as_str())
            {
                errors.push(Diagnostic::error(
                    span,
                    format!(
                        "`run.{field}` does not exist; `run` has {}",
                        RUN_FIELDS.join(", ")
                    ),
                ));
            }
            None
        }
        "steps" => check_step_reference(playbook, step, reference, place, &here, errors),
        other => {
            let d = Diagnostic::error(span, format!("{here} uses `{other}`, which is not defined"));
            errors.push(match did_you_mean(other, ROOTS.iter().copied()) {
                Some(hint) => d.with_help(hint),
                None => d.with_help("templates can use params, steps, env, run, and item/item_index inside for_each"),
            });
            None
        }
    }
}

fn check_step_reference(
    playbook: &Playbook,
    step: &Step,
    reference: &Reference,
    place: Place,
    here: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let span = Some(&reference.span);
    let id = reference.step()?;
    let Some(target) = playbook.step(id) else {
        errors.push(unknown_step(
            playbook,
            id,
            &reference.span,
            &format!("{here} references `steps.{id}`, which is not a step"),
        ));
        return None;
    };
    if let Some(field) = reference.path.get(2) {
        let meta = target.body.step_type.meta();
        let valid = COMMON_OUTPUTS.contains(&field.as_str())
            || if target.for_each.is_some() {
                field == "results"
            } else {
                meta.outputs.iter().any(|o| o == field)
            };
        if !valid {
            let mut names: Vec<&str> = COMMON_OUTPUTS.to_vec();
            if target.for_each.is_some() {
                names.push("results");
            } else {
                names.extend(meta.outputs.iter().map(String::as_str));
            }
            let message = if target.for_each.is_some() && meta.outputs.iter().any(|o| o == field) {
                format!(
                    "step `{id}` runs `for_each`: its `{field}` is per element, in `steps.{id}.results[i].{field}`"
                )
            } else {
                format!("step `{id}` ({}) has no output `{field}`", meta.name)
            };
            let d = Diagnostic::error(span, message);
            errors.push(match did_you_mean(field, names.iter().copied()) {
                Some(hint) => d.with_help(hint),
                None => d.with_help(format!("its outputs: {}", names.join(", "))),
            });
            return None;
        }
    }
    if place == Place::Outputs {
        return None;
    }
    if target.index == step.index {
        if place != Place::Undo {
            let hint = if place == Place::Until {
                "; in `retry.until` the attempt's outputs are `result`"
            } else {
                ""
            };
            errors.push(Diagnostic::error(
                span,
                format!("step `{id}` references its own outputs{hint}"),
            ));
        }
        return None;
    }
    if target.finally && (!step.finally || target.index > step.index) {
        errors.push(Diagnostic::error(
            span,
            format!("{here} references `steps.{id}`, which is not guaranteed to have run before it: `{id}` is a `finally` step and runs later"),
        ));
        return None;
    }
    (!target.finally && !step.finally).then_some(target.index)
}

fn unknown_step(
    playbook: &Playbook,
    id: &str,
    span: &crate::source::Span,
    message: &str,
) -> Diagnostic {
    let d = Diagnostic::error(Some(span), message.to_string());
    match did_you_mean(id, playbook.steps.iter().map(|s| s.id.as_str())) {
        Some(hint) => d.with_help(hint),
        None => d,
    }
}

/// An `undo` runs after its step, possibly when later steps never ran: it may only read its
/// own step and that step's ancestors.
fn check_undo_references(playbook: &Playbook, deps: &[Vec<usize>], errors: &mut Vec<Diagnostic>) {
    for step in playbook.main_steps() {
        let Some(undo) = &step.undo else { continue };
        let ancestors = ancestors(deps, step.index);
        for reference in undo.with.references() {
            if let Some(target) = reference.step().and_then(|id| playbook.step(id))
                && target.index != step.index
                && !target.finally
                && !ancestors.contains(&target.index)
            {
                errors.push(Diagnostic::error(
                    Some(&reference.span),
                    format!("the `undo` of step `{}` references `steps.{}`, which is not guaranteed to have run before it (not one of its dependencies)", step.id, target.id),
                ));
            }
        }
    }
}

pub fn ancestors(deps: &[Vec<usize>], step: usize) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack = deps[step].clone();
    while let Some(s) = stack.pop() {
        if seen.insert(s) {
            stack.extend(deps[s].iter().copied());
        }
    }
    seen
}

/// A cycle as the list of steps on it, starting at its first-written step when the graph
/// has one cycle.
///
/// Iterative throughout, so a chain of 100 000 steps is checked in linear time on any stack
/// (petgraph's `tarjan_scc` recursed once per step and overflowed at about 30 000). Kahn's
/// algorithm peels off the steps that wait for nothing left, and then the steps nothing left
/// waits for: every step that remains has a dependency and a dependant among the remaining
/// steps, so walking from the first-written one to its first-written remaining dependant,
/// and on, must come back to a step already walked: that loop is a cycle.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    let count = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (step, ds) in deps.iter().enumerate() {
        for d in ds {
            dependents[*d].push(step);
        }
    }
    let mut removed = vec![false; count];
    // Peel one way (`ins`: what a step waits for, `outs`: what waits for it), in place.
    let peel = |removed: &mut Vec<bool>, ins: &[Vec<usize>], outs: &[Vec<usize>]| {
        let mut waiting: Vec<usize> = (0..count)
            .map(|s| ins[s].iter().filter(|d| !removed[**d]).count())
            .collect();
        let mut free: Vec<usize> = (0..count)
            .filter(|s| !removed[*s] && waiting[*s] == 0)
            .collect();
        while let Some(step) = free.pop() {
            removed[step] = true;
            for next in &outs[step] {
                if !removed[*next] {
                    waiting[*next] -= 1;
                    if waiting[*next] == 0 {
                        free.push(*next);
                    }
                }
            }
        }
    };
    peel(&mut removed, deps, &dependents);
    if removed.iter().all(|r| *r) {
        return None;
    }
    peel(&mut removed, &dependents, deps);
    let start = (0..count).find(|s| !removed[*s])?;
    let mut position = vec![usize::MAX; count];
    let mut path = vec![start];
    position[start] = 0;
    let mut current = start;
    loop {
        let next = dependents[current]
            .iter()
            .copied()
            .filter(|n| !removed[*n])
            .min()?;
        if position[next] != usize::MAX {
            return Some(path[position[next]..].to_vec());
        }
        position[next] = path.len();
        path.push(next);
        current = next;
    }
}

/// Kahn's algorithm, always taking the earliest-written ready step.
fn topological_order(deps: &[Vec<usize>], dependents: &[Vec<usize>]) -> Vec<usize> {
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..deps.len())
        .filter(|s| remaining[*s] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(std::cmp::Reverse(step)) = ready.pop() {
        order.push(step);
        for d in &dependents[step] {
            remaining[*d] -= 1;
            if remaining[*d] == 0 {
                ready.push(std::cmp::Reverse(*d));
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::find_cycle;

    fn chain(count: usize) -> Vec<Vec<usize>> {
        (0..count)
            .map(|s| if s == 0 { vec![] } else { vec![s - 1] })
            .collect()
    }

    #[test]
    fn a_chain_of_100_000_steps_has_no_cycle_and_does_not_overflow_the_stack() {
        assert_eq!(find_cycle(&chain(100_000)), None);
    }

    #[test]
    fn a_cycle_at_the_end_of_a_long_chain_is_named() {
        let mut deps = chain(100_000);
        deps[99_998].push(99_999);
        assert_eq!(find_cycle(&deps), Some(vec![99_998, 99_999]));
    }

    #[test]
    fn a_cycle_is_named_from_its_first_written_step() {
        // 0 → 1 → 2 → 3 → 1, 3 → 4, and 5 waits for 4: only 1, 2, 3 are on the cycle.
        let deps = vec![vec![], vec![0, 3], vec![1], vec![2], vec![3], vec![4]];
        assert_eq!(find_cycle(&deps), Some(vec![1, 2, 3]));
        // A long chain that does not start at the cycle's first-written step.
        let mut deps = chain(50_000);
        deps[10].push(40_000);
        let cycle = find_cycle(&deps).expect("a cycle");
        assert_eq!(cycle.first(), Some(&10));
        assert_eq!(cycle.len(), 40_000 - 10 + 1);
    }
}
