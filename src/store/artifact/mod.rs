//! Bundles as OCI artifacts: `push` stores a finished `dist/` in a registry and `pull`
//! brings it back. The layout (documented in the README):
//!
//! - the pushed tag holds an OCI index (`artifactType` [`oci::ARTIFACT_SET`]) listing one
//!   manifest per node and one for the dist extras;
//! - each node's manifest (`artifactType` [`oci::ARTIFACT_BUNDLE`], also tagged
//!   `<tag>-<node>`) has the empty config and the bundle's gzip members as layers, in
//!   order, so their concatenation is the tarball byte for byte. The binary's member is the
//!   same in every bundle, so the registry stores it once and a push uploads it once;
//! - the extras manifest ([`oci::ARTIFACT_DIST`]) carries SHA256SUMS, ca.pem,
//!   client-ca.pem, sa.pub, rollout.sh, fetch.sh and the RBAC manifest for the kubelet API
//!   (those the build wrote), each a layer titled with its name. Nothing else in `dist/` is pushed.
//! - with `--cosign-key`, a cosign signature of the index and of every manifest it lists,
//!   each at the tag `sha256-<hex>.sig` cosign looks up (documents and keys: `cosign`).
//!
//! `dist/SHA256SUMS` lists every file that travels (the bundles and those extras), and is
//! read strictly: push sends only what it lists and matches, pull writes only what it lists
//! and matches. Each bundle's node, components and version are read from its own
//! manifest.json, so no file-name pattern is assumed. After writing, push reads the tags
//! back, so a concurrent push or a stale node tag is reported. pull refuses what the
//! registry cannot vouch for (tags where digests belong, two outputs for one path, names
//! off the list, more bytes than allowed) before it downloads anything, keeps its cache
//! private, and puts files in place only once every one is checked. Every blob streams
//! from or to disk; memory stays at a few buffers whatever the bundle size.
//!
//! [`oci::ARTIFACT_SET`]: crate::store::oci::ARTIFACT_SET
//! [`oci::ARTIFACT_BUNDLE`]: crate::store::oci::ARTIFACT_BUNDLE
//! [`oci::ARTIFACT_DIST`]: crate::store::oci::ARTIFACT_DIST

mod local;
mod pull;
mod push;

pub use pull::{pull, PullOptions, PullReport, PulledFile};
pub use push::{
    push, PushOptions, PushReport, PushedDist, PushedLayer, PushedNode, PushedSignature, StaleTag,
};

/// The dist files besides the bundles that a site needs; never keys or admin credentials.
/// All but SHA256SUMS are listed in SHA256SUMS ([`travels`]).
pub const DIST_EXTRAS: [&str; 7] = [
    "SHA256SUMS",
    "ca.pem",
    "client-ca.pem",
    "sa.pub",
    "rollout.sh",
    "fetch.sh",
    crate::component::dist::KUBELET_RBAC,
];

/// Whether `name` is a dist file that leaves with the bundles, and so is listed in
/// `dist/SHA256SUMS` beside them.
pub fn travels(name: &str) -> bool {
    name != "SHA256SUMS" && DIST_EXTRAS.contains(&name)
}

/// How far a transfer is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub verb: &'static str,
    pub done: u64,
    pub total: u64,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;

    use super::local::{split_members, KnownMembers};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn members_are_found_and_a_known_one_is_matched_by_its_bytes() {
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (a, b, c) = (gz(b"head"), gz(&big), gz(b"tail"));
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.tar.gz");
        let two = dir.path().join("two.tar.gz");
        std::fs::write(&one, [a.clone(), b.clone(), c.clone()].concat()).unwrap();
        std::fs::write(&two, [gz(b"other head"), b.clone(), c.clone()].concat()).unwrap();
        let mut known = KnownMembers::default();
        let (m1, sha1) = split_members(&one, &mut known).unwrap();
        assert_eq!(
            m1.iter().map(|m| m.len).collect::<Vec<_>>(),
            vec![a.len() as u64, b.len() as u64, c.len() as u64]
        );
        assert_eq!(
            sha1,
            crate::digest::sha256_hex(&std::fs::read(&one).unwrap())
        );
        assert_eq!(m1[1].digest, crate::digest::sha256_digest(&b));
        let (m2, sha2) = split_members(&two, &mut known).unwrap();
        assert_eq!(m2[1].digest, m1[1].digest);
        assert_eq!(m2[2].digest, m1[2].digest);
        assert_eq!(
            sha2,
            crate::digest::sha256_hex(&std::fs::read(&two).unwrap())
        );
    }

    #[test]
    fn truncated_gzip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tar.gz");
        let data = gz(b"hello world");
        std::fs::write(&p, &data[..data.len() - 3]).unwrap();
        let e = split_members(&p, &mut KnownMembers::default()).unwrap_err();
        assert!(e.to_string().contains("ends early"), "{e}");
    }
}
