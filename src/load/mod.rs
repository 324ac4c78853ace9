//! Stage 1, load: `config` reads `cluster.toml` into a validated `Inventory` (`init`
//! writes a starting one, optionally from the tutorial's environment.sh); `binary` reads
//! every binary the inventory names, without running it; the release numbers are in `crate::version`.
pub mod binary;
pub mod config;
pub mod init;
