//! `manifest.json`, one schema for both directions: `bundle` writes it into every tarball
//! and `verify` reads it back. It names the node, the components, every file with its
//! mode and sha256, every certificate with subject, SANs, serial and validity, the node
//! paths the units name that the bundle does not carry and, in bundles with
//! kube-apiserver, the inventory values its serving certificate's names come from and, in
//! bundles with etcd, its data and WAL folders.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub node: String,
    #[serde(rename = "node-ip")]
    pub node_ip: String,
    /// The components this bundle installs, in start order.
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(rename = "kubernetes-version", default)]
    pub kubernetes_version: String,
    #[serde(rename = "kube-bundle-version", default)]
    pub kube_bundle_version: String,
    #[serde(default)]
    pub files: Vec<ManifestFile>,
    #[serde(default)]
    pub certificates: Vec<ManifestCert>,
    /// Files the units name that the bundle does not carry (a binary, when none is given).
    #[serde(default)]
    pub external: Vec<String>,
    /// What kube-apiserver's serving certificate must be checked against, in bundles that
    /// carry kube-apiserver; absent (not `null`) in every other bundle, so they keep their
    /// bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apiserver: Option<ManifestApiServer>,
    /// etcd's folders on the node, in bundles that carry etcd; absent in every other
    /// bundle, so they keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<ManifestEtcd>,
}

/// The node folders etcd's unit names (`--data-dir`, `--wal-dir`): etcd makes them at
/// its first start, so the bundle carries no file there and `verify` accepts them by
/// these values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEtcd {
    #[serde(rename = "data-dir")]
    pub data_dir: String,
    #[serde(rename = "wal-dir")]
    pub wal_dir: String,
}

/// The inventory values behind kube-apiserver's serving certificate names, beyond the
/// node's own: `verify` rebuilds the names from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestApiServer {
    /// The `kubernetes` service's cluster IP: the first address of `cluster.service-cidr`.
    #[serde(rename = "service-ip")]
    pub service_ip: String,
    /// `cluster.dns-domain`, for `kubernetes.default.svc.<domain>`.
    #[serde(rename = "dns-domain")]
    pub dns_domain: String,
    /// `kube-apiserver.extra-sans`, as written there: IP addresses and DNS names.
    #[serde(rename = "extra-sans", default)]
    pub extra_sans: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub mode: String,
    pub size: u64,
    /// Of the file itself, also when it travels sealed.
    pub sha256: String,
    /// The file travels sealed with the node's seal key (see `seal`); absent when it does
    /// not, so bundles without sealing keep their bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestCert {
    pub path: String,
    #[serde(flatten)]
    pub summary: CertSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    #[serde(rename = "not-before")]
    pub not_before: String,
    #[serde(rename = "not-after")]
    pub not_after: String,
}

/// `epoch` as an RFC 3339 UTC time, as the documents kube-bundle writes carry it
/// (`org.opencontainers.image.created`, the SBOM's creation time).
pub fn rfc3339(epoch: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats")
}
