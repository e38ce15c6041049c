//! flow's engine: text → checked model → graph → plan → run → events.
//!
//! The stages, in order: `yaml` (text to spanned nodes), `load` (nodes to the `playbook`
//! model), `analyze` (references and the graph), `plan` / `run` (the `Runner`), `output`
//! (reporters). Step types plug in through `step_type` and the `registry`.

pub mod analyze;
pub mod argv_secrets;
pub mod catalogue;
pub mod children;
pub mod code_scan;
pub mod context;
pub mod diagnostic;
pub mod duration;
pub mod evaluate;
pub mod event;
pub mod expected;
pub mod github;
pub mod graph_view;
pub mod headless;
pub mod history;
pub mod journal;
pub mod journal_read;
pub mod key_file;
pub mod kinds;
pub mod live;
pub mod load;
pub mod ops;
pub mod output;
pub mod param;
pub mod partial_render;
pub mod permission;
pub mod plan;
pub mod playbook;
pub mod playbook_schema;
pub mod policy;
pub mod prelude;
pub mod printable;
pub mod prompt;
pub mod read_result;
pub mod recorded;
pub mod registry;
pub mod regular_file;
pub mod resources;
pub mod run;
pub mod run_graph;
pub mod run_key;
pub mod run_lock;
pub mod saved_plan;
pub mod schema;
pub mod secret_forms;
pub mod secret_outputs;
pub mod secrets;
pub mod skip_propagation;
pub mod source;
pub mod step_fingerprint;
pub mod step_table;
pub mod step_type;
pub mod summary;
pub mod table;
pub mod template;
pub mod template_env;
pub mod template_taint;
pub mod three_valued;
pub mod values;
pub mod yaml;
mod yaml_emit;

pub use analyze::Checked;
pub use diagnostic::Diagnostic;
pub use registry::Registry;

/// Loads, checks and analyzes a playbook file: everything `flow validate` does.
pub fn check_file(path: &std::path::Path, registry: &Registry) -> Result<Checked, Vec<Diagnostic>> {
    let (playbook, warnings) = load::load_file(path, registry)?;
    analyze::analyze(playbook, warnings)
}
