//! What a step file imports: `use flow_engine::prelude::*;`. The engine may move its modules
//! without touching every step type, and a step file reads as its own logic.

pub use crate::context::{PlanContext, StepContext};
pub use crate::kinds::{Action, Description, Effect, StepError};
pub use crate::permission::{Permission, PermissionContext, Permissions};
pub use crate::resources::Resource;
pub use crate::step_type::{RenderedParams, StepType};
pub use crate::values::{
    Evaluated, FileMode, FlowDuration, NoOutputs, OneOrMany, Printable, Scalar, Secret, Text,
};
pub use schemars::JsonSchema;
pub use serde::{Deserialize, Serialize};
