#![allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
#![allow(clippy::needless_pass_by_value)] // test helpers take what they are handed
//! Integration tests through the built `kube-bundle` binary and the real tools an operator
//! would use: openssl, kubectl, systemd-analyze, shellcheck, GNU tar, sha256sum, cfssl.

mod apiserver;
mod apiserver_verify;
mod archive;
mod bad_input;
mod bench;
mod certs;
mod cli;
mod common;
mod etcd;
mod etcd_verify;
mod fetch_sh;
mod fuzz;
mod hardening;
mod init;
mod inputs;
mod install;
mod install_parts;
mod install_safety;
mod interop;
mod layers;
mod member_cache;
mod outputs;
mod readme;
mod registry;
mod registry_hostile;
mod repacked;
mod reproducible;
mod restarts;
mod sbom;
mod scheduler;
mod sealed;
mod shared_member;
mod signing;
mod verify;
