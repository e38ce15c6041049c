//! Step types over SSH: commands, copies both ways, and waiting. Every step on the same destination shares one
//! multiplexed OpenSSH connection for the whole run.

pub mod download;
pub mod exec;
mod local_dest;
mod local_tree;
mod master;
pub mod remote_file;
mod remote_kill;
mod remote_listing;
pub mod target;
mod transfer;
pub mod upload;
pub mod wait;

pub use target::{Sessions, SshTarget};
