//! Step types that need nothing but the local machine and the operator.

pub mod assert;
pub mod choose;
pub mod confirm;
pub mod envfile;
pub mod envfile_set;
pub mod exec;
pub mod file_write;
pub mod files_prune;
pub mod log;
pub mod password_generate;
pub mod program;
pub mod safe_file;
pub mod sleep;
