//! `flow validate`: static checks only.

use super::{Global, check, exit, json_output};
use crate::output::Verbosity;
use crate::registry::Registry;
use std::path::Path;

/// `flow validate`.
pub fn validate(path: &Path, registry: &Registry, global: &Global) -> i32 {
    match check(path, registry) {
        Ok(checked) => {
            if global.verbosity > Verbosity::Quiet {
                let playbook = &checked.playbook;
                let finally = playbook.finally_steps().count();
                let finally = if finally > 0 {
                    format!(" + {finally} finally")
                } else {
                    String::new()
                };
                if json_output() {
                    let event = serde_json::json!({ "event": "validated", "playbook": playbook.file.display_path(), "steps": checked.main_count(), "params": playbook.params.len() });
                    println!("{event}");
                    return exit::OK;
                }
                println!(
                    "✔ {} is valid: {} step{}{finally}, {} param{}",
                    playbook.file.display_path(),
                    checked.main_count(),
                    if checked.main_count() == 1 { "" } else { "s" },
                    playbook.params.len(),
                    if playbook.params.len() == 1 { "" } else { "s" },
                );
            }
            exit::OK
        }
        Err(code) => code,
    }
}
