//! flow's step types, one module per family, and the one list that registers them.

pub mod core;
mod process;

use flow_engine::Registry;

/// Every step type flow ships. Adding a step type: one file, plus one line here.
pub fn register_all(registry: &mut Registry) {
    registry
        .register(core::exec::Exec)
        .register(core::confirm::Confirm)
        .register(core::choose::Choose)
        .register(core::assert::Assert)
        .register(core::log::Log)
        .register(core::sleep::Sleep)
        .register(core::file_write::FileWrite)
        .register(core::envfile_set::EnvfileSet);
}

/// A registry with every step type.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    register_all(&mut registry);
    registry
}
