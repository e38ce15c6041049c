//! `flow steps`: the catalogue of step types, and one type's page, from their definitions.

use crate::diagnostic::Diagnostic;
use crate::registry::Registry;

/// `flow steps`: the catalogue, or one type's page.
pub fn steps_page(registry: &Registry, name: Option<&str>) -> Result<String, Diagnostic> {
    let Some(name) = name else {
        let rows: Vec<Vec<String>> =
            std::iter::once(vec!["type".into(), "effect".into(), "what it does".into()])
                .chain(registry.iter().map(|t| {
                    let m = t.meta();
                    let effect = if m.effect_overridable {
                        format!("{} (or read)", m.effect.as_str())
                    } else {
                        m.effect.as_str().to_string()
                    };
                    vec![m.name.to_string(), effect, m.summary.to_string()]
                }))
                .collect();
        return Ok(format!(
            "{}\n`flow steps TYPE` shows a type's params, outputs and an example.\n",
            crate::table::render_rows(&rows, true)
        ));
    };
    let Some(step_type) = registry.get(name) else {
        let d = Diagnostic::error(None, format!("unknown step type `{name}`"));
        return Err(
            match crate::diagnostic::did_you_mean(name, registry.names()) {
                Some(hint) => d.with_help(hint),
                None => d.with_help("`flow steps` lists the step types"),
            },
        );
    };
    let meta = step_type.meta();
    let mut out = format!(
        "{} — {}\neffect: {}{}\n",
        meta.name,
        meta.summary,
        meta.effect.as_str(),
        if meta.effect_overridable {
            " (override with `effect: read`)"
        } else {
            ""
        }
    );
    let defaults = meta.defaults_keys();
    if !defaults.is_empty() {
        out.push_str(&format!(
            "defaults: {}\n",
            defaults
                .iter()
                .map(|k| format!("`defaults.{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("\nParams (`with`):\n");
    let required: Vec<&str> = meta
        .params_schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut rows = vec![vec![
        "name".to_string(),
        "type".to_string(),
        "required".to_string(),
        "description".to_string(),
    ]];
    if let Some(props) = meta
        .params_schema
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (field, schema) in props {
            rows.push(vec![
                field.clone(),
                crate::schema::describe(schema),
                if required.contains(&field.as_str()) {
                    "yes".into()
                } else {
                    "no".into()
                },
                // Doc comments wrap: the whole description, on one line.
                schema
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
    }
    out.push_str(&crate::table::render_rows(&rows, true));
    out.push_str("\nOutputs (`steps.<id>.<name>`, plus status and error):\n");
    let mut rows = vec![vec![
        "name".to_string(),
        "type".to_string(),
        "description".to_string(),
    ]];
    if let Some(props) = meta
        .outputs_schema
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (field, schema) in props {
            let sensitive = if meta.sensitive_outputs.contains(field) {
                " (secret: masked)"
            } else {
                ""
            };
            rows.push(vec![
                field.clone(),
                crate::schema::describe(schema),
                format!(
                    "{}{sensitive}",
                    schema
                        .get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or("")
                ),
            ]);
        }
    }
    if rows.len() == 1 {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&crate::table::render_rows(&rows, true));
    }
    out.push_str("\nExample:\n");
    for line in meta.example.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    Ok(out)
}

/// `flow --output json steps [TYPE]`: each type's name, summary, effect, family, params and
/// outputs schemas, and example.
pub fn steps_json(
    registry: &Registry,
    name: Option<&str>,
) -> Result<serde_json::Value, Diagnostic> {
    let page = |meta: &crate::step_type::StepMeta| {
        serde_json::json!({
            "type": meta.name,
            "summary": meta.summary,
            "effect": meta.effect.as_str(),
            "effect_overridable": meta.effect_overridable,
            "defaults": meta.defaults_keys(),
            "params": meta.params_schema,
            "outputs": meta.outputs_schema,
            "example": meta.example,
        })
    };
    match name {
        None => Ok(serde_json::Value::Array(
            registry.iter().map(|t| page(t.meta())).collect(),
        )),
        Some(name) => match registry.get(name) {
            Some(step_type) => Ok(page(step_type.meta())),
            None => steps_page(registry, Some(name)).map(|_| serde_json::Value::Null),
        },
    }
}
