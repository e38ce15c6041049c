//! `flow graph`: the dependency graph as Graphviz dot or Mermaid.

use crate::analyze::Checked;

/// `flow graph`: the dependency graph as Graphviz dot or Mermaid.
pub fn graph(checked: &Checked, mermaid: bool) -> String {
    let playbook = &checked.playbook;
    let mut out = String::new();
    let label = |i: usize| {
        let s = &playbook.steps[i];
        format!("{}\\n{}", s.display_name(), s.body.type_name)
    };
    if mermaid {
        out.push_str("flowchart TD\n");
        for &i in &checked.order {
            out.push_str(&format!(
                "  {}[\"{}\"]\n",
                playbook.steps[i].id,
                label(i).replace("\\n", "<br/>")
            ));
        }
        for (i, deps) in checked.deps.iter().enumerate() {
            for d in deps {
                out.push_str(&format!(
                    "  {} --> {}\n",
                    playbook.steps[*d].id, playbook.steps[i].id
                ));
            }
        }
        let finally: Vec<&str> = playbook.finally_steps().map(|s| s.id.as_str()).collect();
        if !finally.is_empty() {
            out.push_str("  subgraph finally\n");
            for (n, id) in finally.iter().enumerate() {
                out.push_str(&format!(
                    "    {id}[\"{}\"]\n",
                    label(playbook.step(id).map(|s| s.index).unwrap_or(0)).replace("\\n", "<br/>")
                ));
                if n > 0 {
                    out.push_str(&format!("    {} --> {id}\n", finally[n - 1]));
                }
            }
            out.push_str("  end\n");
        }
    } else {
        out.push_str(&format!(
            "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];\n",
            playbook.name.replace('"', "'")
        ));
        for &i in &checked.order {
            out.push_str(&format!(
                "  {} [label=\"{}\"];\n",
                playbook.steps[i].id,
                label(i)
            ));
        }
        for (i, deps) in checked.deps.iter().enumerate() {
            for d in deps {
                out.push_str(&format!(
                    "  {} -> {};\n",
                    playbook.steps[*d].id, playbook.steps[i].id
                ));
            }
        }
        let finally: Vec<&crate::playbook::Step> = playbook.finally_steps().collect();
        if !finally.is_empty() {
            out.push_str("  subgraph cluster_finally {\n    label=\"finally\";\n");
            for (n, step) in finally.iter().enumerate() {
                out.push_str(&format!(
                    "    {} [label=\"{}\"];\n",
                    step.id,
                    label(step.index)
                ));
                if n > 0 {
                    out.push_str(&format!("    {} -> {};\n", finally[n - 1].id, step.id));
                }
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
    out
}
