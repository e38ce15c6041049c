//! What `flow policy` prints.
