//! The step types a playbook may use, by name.

use crate::step_type::{DynStepType, Erased, StepType};
use indexmap::IndexMap;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct Registry {
    types: IndexMap<&'static str, Arc<dyn DynStepType>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<T: StepType>(&mut self, step_type: T) -> &mut Self {
        self.types.insert(T::NAME, Arc::new(Erased::new(step_type)));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynStepType>> {
        self.types.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn DynStepType>> {
        self.types.values()
    }

    /// The `defaults:` families known to the registered types.
    pub fn families(&self) -> Vec<String> {
        let mut families: Vec<String> = self.iter().map(|t| t.meta().family.clone()).collect();
        families.sort();
        families.dedup();
        families
    }
}
