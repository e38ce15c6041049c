//! The text `INFO` returns, as sections of fields, with the figures runbooks look at.

use indexmap::IndexMap;
use serde_json::{Value, json};

/// `# Memory` / `used_memory:1024` → `{ "memory": { "used_memory": 1024 } }`. Numbers become
/// numbers; `db0:keys=1,expires=0,avg_ttl=0` becomes a mapping.
pub fn parse(text: &str) -> IndexMap<String, IndexMap<String, Value>> {
    let mut sections: IndexMap<String, IndexMap<String, Value>> = IndexMap::new();
    let mut current = String::from("info");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('#') {
            current = name.trim().to_lowercase();
            sections.entry(current.clone()).or_default();
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        sections
            .entry(current.clone())
            .or_default()
            .insert(key.to_string(), field_value(value));
    }
    sections
}

fn field_value(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
        && !text.contains(',')
    {
        return json!(f);
    }
    if text.contains('=') && text.contains(',') || text.starts_with("keys=") {
        let pairs: serde_json::Map<String, Value> = text
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), field_value(v)))
            .collect();
        return Value::Object(pairs);
    }
    Value::String(text.to_string())
}

/// Looks a field up in whichever section has it.
pub fn field<'a>(
    sections: &'a IndexMap<String, IndexMap<String, Value>>,
    name: &str,
) -> Option<&'a Value> {
    sections.values().find_map(|fields| fields.get(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_numbers_and_keyspace() {
        let info = parse(
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Memory\r\nused_memory:1024\r\nmem_fragmentation_ratio:1.5\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\n",
        );
        assert_eq!(info["server"]["redis_version"], json!("7.0.15"));
        assert_eq!(info["memory"]["used_memory"], json!(1024));
        assert_eq!(info["memory"]["mem_fragmentation_ratio"], json!(1.5));
        assert_eq!(
            info["keyspace"]["db0"],
            json!({"keys": 3, "expires": 1, "avg_ttl": 100})
        );
        assert_eq!(field(&info, "used_memory"), Some(&json!(1024)));
    }
}
