//! flow's step types, one module per family, and the one list that registers them.

pub mod core;
pub mod redis;
pub mod ssh;

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
        .register(core::envfile_set::EnvfileSet)
        .register(core::files_prune::FilesPrune)
        .register(core::password_generate::PasswordGenerate)
        .register(redis::command::Command)
        .register(redis::info::Info)
        .register(redis::wait::Wait)
        .register(redis::compare::Compare)
        .register(redis::backup::Backup)
        .register(redis::delete::Delete)
        .register(ssh::exec::SshExec)
        .register(ssh::wait::SshWait)
        .register(ssh::upload::SshUpload)
        .register(ssh::download::SshDownload);
}

/// A registry with every step type.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    register_all(&mut registry);
    registry
}

#[cfg(test)]
mod tests {
    use flow_engine::source::SourceFile;

    /// Every step type's example (shown by `flow steps TYPE`) uses its own type and passes
    /// the check of `with`, so the documentation cannot drift from the code.
    #[test]
    fn examples_match_their_schemas() {
        let registry = super::registry();
        for step_type in registry.iter() {
            let meta = step_type.meta();
            let file = SourceFile::new(format!("{}.example", meta.name), meta.example);
            let root = flow_engine::yaml::parse(&file)
                .unwrap_or_else(|d| panic!("{}: {}", meta.name, d.render()));
            let steps = root
                .as_map()
                .unwrap_or_else(|| panic!("{}: example is not a mapping of steps", meta.name));
            assert!(!steps.is_empty(), "{}: empty example", meta.name);
            for (id, step) in steps {
                assert_eq!(
                    step.get("type").and_then(|t| t.as_str()),
                    Some(meta.name),
                    "{}: step {} has another type",
                    meta.name,
                    id.name
                );
                let with = step
                    .get("with")
                    .unwrap_or_else(|| panic!("{}: step {} has no with", meta.name, id.name));
                let mut problems = Vec::new();
                flow_engine::schema::check(with, &meta.params_schema, "with", &mut problems);
                assert!(
                    problems.is_empty(),
                    "{}: {}",
                    meta.name,
                    problems.iter().map(|d| d.render()).collect::<String>()
                );
            }
        }
    }
}
