//! Stage 5, pack: `bundle` writes the nodes' deterministic tarballs (each with its
//! `manifest`) in parallel (`parallel`) into a staging folder that replaces `dist/` in one
//! rename; `member` compresses each binary once and `cache` keeps members between builds.
pub mod bundle;
pub mod cache;
pub mod member;
pub mod sbom;
