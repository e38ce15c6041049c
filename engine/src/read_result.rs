//! What a read returned, briefly, for its plan line: a scalar as itself, a listing as a small
//! table, anything long cut with its size said — so the plan of a health check reads as the
//! health report, and a plan that chooses a backup shows the backups.

use serde_json::Value;

/// Longest text shown for one value before it is cut.
const WIDTH: usize = 80;
/// Rows of a listing shown in a plan.
const ROWS: usize = 10;
/// Longest text of one table cell.
const CELL: usize = 40;

/// Detail lines for the outputs of a read: `key: value` each, a listing as a table under its
/// key. Empty and null outputs are left out.
pub fn brief(outputs: &Value) -> Vec<String> {
    let Value::Object(fields) = outputs else {
        return vec![cut(&text_of(outputs), WIDTH)];
    };
    let mut lines = Vec::new();
    for (key, value) in fields {
        match value {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::Array(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => {
                lines.push(format!(
                    "{key}: {} row{}",
                    rows.len(),
                    if rows.len() == 1 { "" } else { "s" }
                ));
                lines.extend(table(rows).lines().map(|l| format!("  {}", l.trim_start())));
                if rows.len() > ROWS {
                    lines.push(format!("  … and {} more", rows.len() - ROWS));
                }
            }
            other => lines.push(format!("{key}: {}", shown(other))),
        }
    }
    lines
}

/// Detail lines for all a read returned (`flow plan -v`): each output in full, a listing as a
/// table of every row, long texts line by line.
pub fn whole(outputs: &Value) -> Vec<String> {
    let Value::Object(fields) = outputs else {
        return text_of(outputs).lines().map(str::to_string).collect();
    };
    let mut lines = Vec::new();
    for (key, value) in fields {
        match value {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) if s.contains('\n') => {
                lines.push(format!("{key}:"));
                lines.extend(s.lines().map(|l| format!("  {l}")));
            }
            Value::Array(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => {
                lines.push(format!(
                    "{key}: {} row{}",
                    rows.len(),
                    if rows.len() == 1 { "" } else { "s" }
                ));
                lines.extend(
                    table_of(rows, rows.len(), usize::MAX)
                        .lines()
                        .map(|l| format!("  {}", l.trim_start())),
                );
            }
            other => lines.push(format!("{key}: {}", text_of(other))),
        }
    }
    lines
}

/// A value on one line, cut with its size when long.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let lines = s.lines().count();
            if lines > 1 {
                let first = s.lines().next().unwrap_or_default();
                format!("{} ({lines} lines)", cut_plain(first, WIDTH))
            } else {
                cut(s, WIDTH)
            }
        }
        Value::Array(items) => {
            let text = text_of(value);
            if text.chars().count() > WIDTH {
                format!("{} ({} items)", cut_plain(&text, WIDTH), items.len())
            } else {
                text
            }
        }
        Value::Object(map) => {
            let text = text_of(value);
            if text.chars().count() > WIDTH {
                format!("{} ({} keys)", cut_plain(&text, WIDTH), map.len())
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// `text`, or its first `width` characters and how long it was.
fn cut(text: &str, width: usize) -> String {
    let length = text.chars().count();
    if length > width {
        format!("{} ({length} chars)", cut_plain(text, width))
    } else {
        text.to_string()
    }
}

fn cut_plain(text: &str, width: usize) -> String {
    if text.chars().count() > width {
        format!("{}…", text.chars().take(width).collect::<String>())
    } else {
        text.to_string()
    }
}

/// The first rows of a listing, a column per key.
fn table(rows: &[Value]) -> String {
    table_of(rows, ROWS, CELL)
}

/// The first `count` rows of a listing, cells cut at `cell` characters.
fn table_of(rows: &[Value], count: usize, cell: usize) -> String {
    let mut header: Vec<String> = Vec::new();
    for row in rows.iter().take(count) {
        for key in row.as_object().into_iter().flat_map(|m| m.keys()) {
            if !header.contains(key) {
                header.push(key.clone());
            }
        }
    }
    let mut cells = vec![header.clone()];
    cells.extend(rows.iter().take(count).map(|row| {
        header
            .iter()
            .map(|key| match row.get(key) {
                None | Some(Value::Null) => "-".to_string(),
                Some(value) => cut_plain(&text_of(value), cell),
            })
            .collect()
    }));
    crate::table::render_rows(&cells, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_show_as_themselves_and_long_ones_are_cut_with_their_size() {
        let long = "x".repeat(100);
        let lines =
            brief(&json!({ "reply": "PONG", "count": 3, "gone": null, "empty": "", "long": long }));
        assert_eq!(lines[0], "reply: PONG");
        assert_eq!(lines[1], "count: 3");
        assert_eq!(lines[2], format!("long: {}… (100 chars)", "x".repeat(80)));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_listing_is_a_small_table_with_how_many_more() {
        let rows: Vec<Value> = (0..12)
            .map(|i| json!({ "key": format!("daily/{i:02}.rdb"), "size": i }))
            .collect();
        let lines = brief(&json!({ "objects": rows }));
        assert_eq!(lines[0], "objects: 12 rows");
        assert!(lines[1].starts_with("  key"), "{lines:?}");
        assert!(lines[3].contains("daily/00.rdb"), "{lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("  … and 2 more"));
    }

    #[test]
    fn a_multi_line_text_shows_its_first_line_and_how_many() {
        let lines = brief(&json!({ "stdout": "one\ntwo\nthree\n" }));
        assert_eq!(lines, vec!["stdout: one (3 lines)"]);
    }
}
