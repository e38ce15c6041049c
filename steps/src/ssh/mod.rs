//! Step types over SSH: commands, copies both ways, and waiting. Every step on the same destination shares one
//! multiplexed OpenSSH connection for the whole run.

pub mod download;
pub mod exec;
pub mod remote_file;
pub mod target;
mod transfer;
pub mod upload;
pub mod wait;

pub use target::{Sessions, SshTarget};
