//! Step types for Redis: commands, info, waiting, comparing two instances, backups and
//! declarative deletes. All share one connection per target for the whole run.

pub mod backup;
mod backup_copy;
pub mod command;
pub mod compare;
pub mod delete;
pub mod info;
mod info_text;
pub mod kubernetes;
mod pod_files;
mod port_forward;
mod reply;
pub mod target;
pub mod wait;
mod walk;

pub use target::{Connections, RedisTarget};

/// The run's Redis connections, able to open tunnels through its SSH connections.
pub fn connections(ctx: &flow_engine::context::PlanContext) -> std::sync::Arc<Connections> {
    let connections = ctx.resource::<Connections>();
    connections.attach(|| ctx.resource::<crate::ssh::Sessions>());
    connections
}
