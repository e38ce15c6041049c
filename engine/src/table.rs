//! Plain text tables for `confirm.show`, `log.table`, `flow steps` and summaries.

use serde_json::Value;

/// Renders rows of cells with aligned columns; with `header`, a rule under the first row.
pub fn render_rows(rows: &[Vec<String>], header: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        out.push_str("  ");
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if header && index == 0 && rows.len() > 1 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            out.push_str("  ");
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// A value as a table: a list of mappings gets a column per key, a mapping gets key/value
/// rows, a list gets one row per item, anything else is its text.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut header: Vec<String> = Vec::new();
            for item in items {
                for key in item.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !header.contains(key) {
                        header.push(key.clone());
                    }
                }
            }
            let mut rows = vec![header.clone()];
            rows.extend(
                items
                    .iter()
                    .map(|item| header.iter().map(|k| cell(item.get(k))).collect()),
            );
            render_rows(&rows, true)
        }
        Value::Array(items) => render_rows(
            &items
                .iter()
                .map(|i| vec![cell(Some(i))])
                .collect::<Vec<_>>(),
            false,
        ),
        Value::Object(map) => {
            let rows: Vec<Vec<String>> = map
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(Some(v))])
                .collect();
            render_rows(&rows, false)
        }
        other => format!("  {}\n", cell(Some(other))),
    }
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(v) => crate::evaluate::display_value(v),
    }
}
