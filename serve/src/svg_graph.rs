//! The playbook's step graph as an inline SVG, drawn on the server: steps in rows by their
//! dependency depth (a step sits one row below the deepest step it needs), `finally` steps
//! after them in written order, each box coloured by the step's status in the run.

use crate::html::{escape, mark, segment};
use crate::model::StepView;
use std::collections::HashMap;

const WIDTH: usize = 184;
const HEIGHT: usize = 46;
const GAP_X: usize = 20;
const GAP_Y: usize = 42;
const MARGIN: usize = 8;
/// Characters of a label that fit in a box.
const LABEL_CHARS: usize = 21;

/// The row of each step: 0 for a step that needs none, else one below its deepest need.
/// A need the graph does not hold is ignored; a cycle (a damaged record) stops at the
/// number of steps instead of looping.
fn rows(steps: &[StepView]) -> Vec<usize> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut row = vec![0usize; steps.len()];
    for _ in 0..steps.len() {
        let mut changed = false;
        for (i, step) in steps.iter().enumerate().filter(|(_, s)| !s.finally) {
            let depth = step
                .needs
                .iter()
                .filter_map(|n| index.get(n.as_str()))
                .map(|&d| row[d] + 1)
                .max()
                .unwrap_or(0)
                .min(steps.len());
            if depth != row[i] {
                row[i] = depth;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let main_rows = steps
        .iter()
        .zip(&row)
        .filter(|(s, _)| !s.finally)
        .map(|(_, r)| r + 1)
        .max()
        .unwrap_or(0);
    let mut next = main_rows;
    for (i, step) in steps.iter().enumerate() {
        if step.finally {
            row[i] = next;
            next += 1;
        }
    }
    row
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= LABEL_CHARS {
        text.to_string()
    } else {
        let cut: String = text.chars().take(LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// The SVG of the run's steps; each box links to the step's page.
pub fn render(run_id: &str, steps: &[StepView]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    let row = rows(steps);
    let row_count = row.iter().max().map_or(0, |r| r + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); row_count];
    for (i, r) in row.iter().enumerate() {
        members[*r].push(i);
    }
    let widest = members.iter().map(Vec::len).max().unwrap_or(1);
    let total_width = MARGIN * 2 + widest * WIDTH + widest.saturating_sub(1) * GAP_X;
    let total_height = MARGIN * 2 + row_count * HEIGHT + row_count.saturating_sub(1) * GAP_Y;
    // Each row is centred.
    let mut at = vec![(0usize, 0usize); steps.len()];
    for (r, items) in members.iter().enumerate() {
        let row_width = items.len() * WIDTH + items.len().saturating_sub(1) * GAP_X;
        let left = (total_width - row_width) / 2;
        for (n, &i) in items.iter().enumerate() {
            at[i] = (left + n * (WIDTH + GAP_X), MARGIN + r * (HEIGHT + GAP_Y));
        }
    }
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {total_width} {total_height}\" \
width=\"{total_width}\" role=\"img\" aria-label=\"step graph\">\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
markerHeight=\"7\" orient=\"auto\"><path class=\"arrow\" d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>"
    );
    let edge = |from: usize, to: usize, svg: &mut String| {
        let (fx, fy) = (at[from].0 + WIDTH / 2, at[from].1 + HEIGHT);
        let (tx, ty) = (at[to].0 + WIDTH / 2, at[to].1);
        let bend = (ty.saturating_sub(fy)) / 2;
        svg.push_str(&format!(
            "<path class=\"edge\" marker-end=\"url(#arrow)\" d=\"M{fx},{fy} C{fx},{} {tx},{} {tx},{ty}\"/>",
            fy + bend,
            ty.saturating_sub(bend)
        ));
    };
    let mut previous_finally = None;
    for (i, step) in steps.iter().enumerate() {
        for need in &step.needs {
            if let Some(&from) = index.get(need.as_str()) {
                edge(from, i, &mut svg);
            }
        }
        if step.finally {
            if let Some(from) = previous_finally {
                edge(from, i, &mut svg);
            }
            previous_finally = Some(i);
        }
    }
    for (i, step) in steps.iter().enumerate() {
        let (x, y) = at[i];
        let finally = if step.finally { " finally" } else { "" };
        let kind = if step.finally {
            format!("{} · finally", step.type_name)
        } else {
            step.type_name.clone()
        };
        svg.push_str(&format!(
            "<a href=\"/runs/{}/steps/{}\"><g class=\"node st-{}{finally}\" data-step=\"{}\">\
<title>{} — {}</title>\
<rect x=\"{x}\" y=\"{y}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" rx=\"8\"/>\
<text class=\"mk\" x=\"{}\" y=\"{}\">{}</text>\
<text x=\"{}\" y=\"{}\">{}</text>\
<text class=\"type\" x=\"{}\" y=\"{}\">{}</text></g></a>",
            segment(run_id),
            segment(&step.id),
            escape(&step.status),
            escape(&step.id),
            escape(step.label()),
            escape(&step.status),
            x + 10,
            y + 20,
            mark(&step.status),
            x + 28,
            y + 20,
            escape(&shorten(step.label())),
            x + 28,
            y + 37,
            escape(&shorten(&kind)),
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, needs: &[&str], finally: bool) -> StepView {
        let mut view = crate::model::pending_step(id);
        view.needs = needs.iter().map(|n| n.to_string()).collect();
        view.finally = finally;
        view
    }

    #[test]
    fn rows_follow_dependency_depth_and_survive_a_cycle() {
        let steps = vec![
            step("a", &[], false),
            step("b", &["a"], false),
            step("c", &["a", "b"], false),
            step("d", &[], false),
            step("fin", &[], true),
        ];
        assert_eq!(rows(&steps), vec![0, 1, 2, 0, 3]);
        let cycle = vec![step("x", &["y"], false), step("y", &["x"], false)];
        assert!(rows(&cycle).iter().all(|r| *r <= 2));
        assert!(render("r", &cycle).starts_with("<svg"));
    }

    #[test]
    fn labels_are_escaped() {
        let steps = vec![step("<script>", &[], false)];
        let svg = render("r", &steps);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }
}
