//! A small YAML writer for the `to_yaml` filter: block style, strings quoted when plain
//! text would be read back as something else.

use serde_json::Value;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn write_value(out: &mut String, value: &Value, indent: usize, in_block: bool) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if in_block || !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                write_value(out, item, indent + 2, false);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            let mut first = !in_block;
            for (key, item) in map {
                if !first || !out.is_empty() && !out.ends_with("- ") {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                }
                first = false;
                out.push_str(&scalar(&Value::String(key.clone())));
                out.push(':');
                match item {
                    Value::Array(a) if !a.is_empty() => write_value(out, item, indent, true),
                    Value::Object(m) if !m.is_empty() => write_value(out, item, indent + 2, true),
                    _ => {
                        out.push(' ');
                        out.push_str(&scalar(item));
                    }
                }
            }
        }
        other => out.push_str(&scalar(other)),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || "-_./@ ".contains(c))
                && !s.starts_with(' ')
                && !s.ends_with(' ')
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off"
                )
                && s.parse::<f64>().is_err();
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml() {
        let text = to_yaml(&json!({"a": 1, "b": ["x", "true"], "c": {"d": null}}));
        assert_eq!(text, "a: 1\nb:\n- x\n- \"true\"\nc:\n  d: null\n");
    }
}
