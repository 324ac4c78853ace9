//! The binary's own modules: the command line (`cli`), the progress line (`progress`)
//! and the push and pull commands (`transfer`).
pub mod cli;
pub mod progress;
pub mod transfer;
