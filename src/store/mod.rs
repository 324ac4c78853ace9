//! The artifact store: `artifact` pushes a finished `dist/` to an OCI registry and pulls
//! it back (`oci` holds the references and documents, `registry` the HTTP client), and
//! `fetch` writes `dist/fetch.sh`, which gets one node's bundle with curl alone.
pub mod artifact;
pub mod cosign;
pub mod fetch;
pub mod oci;
pub mod registry;
