//! Step types for Redis: commands, info, waiting, comparing two instances, backups and
//! declarative deletes. All share one connection per target for the whole run.

pub mod backup;
pub mod command;
pub mod compare;
pub mod delete;
pub mod info;
mod info_text;
mod reply;
pub mod target;
pub mod wait;

pub use target::{Connections, RedisTarget};
