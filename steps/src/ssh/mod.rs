//! Step types over SSH: commands and waiting. Every step on the same destination shares one
//! multiplexed OpenSSH connection for the whole run.

pub mod exec;
pub mod target;
pub mod wait;

pub use target::{Sessions, SshTarget};
