//! `sbom.spdx.json`, an SPDX 2.3 JSON document in every bundle, one schema both ways:
//! `bundle` writes it and `verify` reads it back. It describes the bundle as a package
//! that contains every file the tarball carries (but itself, SHA256SUMS and its
//! signature, which cover it), each with its sha256, and one package per binary carried
//! from the build host with where the inventory took it from (the path as the inventory
//! wrote it, relative to the inventory's folder) and its release when the inventory states
//! it. It is a pure function of the files: no clock (the creation time is the entries'
//! mtime, from SOURCE_DATE_EPOCH) and a document namespace made from the listing's hash.
//! Files carry only SHA256 checksums: SPDX 2.3 asks for SHA1 too, which would mean
//! reading every binary once more for a hash nothing here trusts.

use std::collections::BTreeMap;

use crate::plan::Origin;
use serde::{Deserialize, Serialize};

/// The document's name in a bundle.
pub const FILE: &str = "sbom.spdx.json";
pub const SPDX_VERSION: &str = "SPDX-2.3";
const NOASSERTION: &str = "NOASSERTION";
const BUNDLE_ID: &str = "SPDXRef-Package-bundle";
const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    #[serde(rename = "spdxVersion")]
    pub spdx_version: String,
    #[serde(rename = "dataLicense")]
    pub data_license: String,
    #[serde(rename = "SPDXID")]
    pub id: String,
    pub name: String,
    #[serde(rename = "documentNamespace")]
    pub namespace: String,
    #[serde(rename = "creationInfo")]
    pub creation_info: CreationInfo,
    #[serde(rename = "documentDescribes", default)]
    pub describes: Vec<String>,
    #[serde(default)]
    pub packages: Vec<Package>,
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default)]
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreationInfo {
    pub created: String,
    pub creators: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    #[serde(rename = "SPDXID")]
    pub id: String,
    #[serde(
        rename = "versionInfo",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub version: Option<String>,
    #[serde(
        rename = "packageFileName",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub file_name: Option<String>,
    #[serde(rename = "downloadLocation")]
    pub download_location: String,
    #[serde(rename = "filesAnalyzed", default)]
    pub files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub checksums: Vec<Checksum>,
    #[serde(
        rename = "sourceInfo",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub source_info: Option<String>,
    #[serde(
        rename = "primaryPackagePurpose",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub purpose: Option<String>,
    #[serde(rename = "licenseConcluded")]
    pub license_concluded: String,
    #[serde(rename = "licenseDeclared")]
    pub license_declared: String,
    #[serde(rename = "copyrightText")]
    pub copyright: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct File {
    /// `./` and the path in the bundle's top folder.
    #[serde(rename = "fileName")]
    pub name: String,
    #[serde(rename = "SPDXID")]
    pub id: String,
    pub checksums: Vec<Checksum>,
    #[serde(rename = "licenseConcluded")]
    pub license_concluded: String,
    #[serde(rename = "copyrightText")]
    pub copyright: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: String,
    #[serde(rename = "checksumValue")]
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relationship {
    #[serde(rename = "spdxElementId")]
    pub element: String,
    #[serde(rename = "relationshipType")]
    pub kind: String,
    #[serde(rename = "relatedSpdxElement")]
    pub related: String,
}

fn sha256(value: &str) -> Vec<Checksum> {
    vec![Checksum {
        algorithm: "SHA256".into(),
        value: value.into(),
    }]
}

fn relationship(element: &str, kind: &str, related: &str) -> Relationship {
    Relationship {
        element: element.into(),
        kind: kind.into(),
        related: related.into(),
    }
}

impl File {
    /// The bundle path it describes (`fileName` without `./`).
    pub fn path(&self) -> &str {
        self.name.strip_prefix("./").unwrap_or(&self.name)
    }

    pub fn sha256(&self) -> Option<&str> {
        self.checksums
            .iter()
            .find(|c| c.algorithm == "SHA256")
            .map(|c| c.value.as_str())
    }
}

impl Package {
    pub fn sha256(&self) -> Option<&str> {
        self.checksums
            .iter()
            .find(|c| c.algorithm == "SHA256")
            .map(|c| c.value.as_str())
    }
}

/// What one bundle's SBOM says.
pub struct Bundle<'a> {
    /// The top folder, `control-plane-<node>`.
    pub top: &'a str,
    pub kubernetes_version: &'a str,
    pub components: Vec<&'a str>,
    /// The entries' mtime, seconds since the epoch.
    pub created: u64,
    /// Bundle path → sha256 of every file listed.
    pub files: &'a BTreeMap<String, String>,
    /// Bundle path → origin of each binary carried from the build host.
    pub binaries: &'a BTreeMap<String, Origin>,
}

/// The document for `b`, as pretty JSON with a final newline.
pub fn write(b: &Bundle<'_>) -> Vec<u8> {
    let listing = crate::digest::sha256sums(b.files);
    let namespace = format!(
        "https://kube-bundle.invalid/spdx/{}-{}",
        b.top,
        crate::digest::sha256_hex(listing.as_bytes())
    );
    let mut packages = vec![Package {
        name: b.top.to_string(),
        id: BUNDLE_ID.into(),
        version: Some(b.kubernetes_version.to_string()),
        file_name: Some(format!("{}.tar.gz", b.top)),
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        checksums: Vec::new(),
        source_info: Some(format!(
            "built by kube-bundle {} with {}",
            env!("CARGO_PKG_VERSION"),
            b.components.join(", ")
        )),
        purpose: Some("INSTALL".into()),
        license_concluded: NOASSERTION.into(),
        license_declared: NOASSERTION.into(),
        copyright: NOASSERTION.into(),
    }];
    let mut files = Vec::new();
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", BUNDLE_ID)];
    for (i, (path, sha)) in b.files.iter().enumerate() {
        let id = format!("SPDXRef-File-{}", i + 1);
        files.push(File {
            name: format!("./{path}"),
            id: id.clone(),
            checksums: sha256(sha),
            license_concluded: NOASSERTION.into(),
            copyright: NOASSERTION.into(),
        });
        relationships.push(relationship(BUNDLE_ID, "CONTAINS", &id));
        if let Some(origin) = b.binaries.get(path) {
            let package = format!("SPDXRef-Package-binary-{}", i + 1);
            packages.push(Package {
                name: origin.name.clone(),
                id: package.clone(),
                version: origin.version.clone(),
                file_name: Some(origin.source.clone()),
                download_location: NOASSERTION.into(),
                files_analyzed: false,
                checksums: sha256(sha),
                source_info: Some(format!(
                    "carried from `{}` (inventory key {})",
                    origin.source, origin.key
                )),
                purpose: Some("APPLICATION".into()),
                license_concluded: NOASSERTION.into(),
                license_declared: NOASSERTION.into(),
                copyright: NOASSERTION.into(),
            });
            relationships.push(relationship(BUNDLE_ID, "CONTAINS", &package));
            relationships.push(relationship(&package, "CONTAINS", &id));
        }
    }
    let doc = Document {
        spdx_version: SPDX_VERSION.into(),
        data_license: "CC0-1.0".into(),
        id: DOCUMENT_ID.into(),
        name: b.top.to_string(),
        namespace,
        creation_info: CreationInfo {
            created: crate::manifest::rfc3339(b.created),
            creators: vec![format!("Tool: kube-bundle-{}", env!("CARGO_PKG_VERSION"))],
        },
        describes: vec![BUNDLE_ID.into()],
        packages,
        files,
        relationships,
    };
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The binary packages of `doc` with the bundle path of the file each contains.
pub fn binaries(doc: &Document) -> Vec<(&Package, Option<&File>)> {
    doc.packages
        .iter()
        .filter(|p| p.id != BUNDLE_ID)
        .map(|p| {
            let file = doc
                .relationships
                .iter()
                .find(|r| r.element == p.id && r.kind == "CONTAINS")
                .and_then(|r| doc.files.iter().find(|f| f.id == r.related));
            (p, file)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    fn sample(sha: &str) -> Vec<u8> {
        let files: BTreeMap<String, String> = [
            ("install.sh".to_string(), "aa".repeat(32)),
            ("rootfs/opt/k8s/bin/kube-apiserver".to_string(), sha.into()),
        ]
        .into();
        let binaries: BTreeMap<String, Origin> = [(
            "rootfs/opt/k8s/bin/kube-apiserver".to_string(),
            Origin {
                name: "kube-apiserver".into(),
                key: "kube-apiserver.binary".into(),
                source: "bin/kube-apiserver".into(),
                version: Some("1.20.2".into()),
            },
        )]
        .into();
        write(&Bundle {
            top: "control-plane-m1",
            kubernetes_version: "1.20.2",
            components: vec!["kube-apiserver"],
            created: 1_700_000_000,
            files: &files,
            binaries: &binaries,
        })
    }

    #[test]
    fn the_document_is_a_function_of_the_files_and_names_each_binarys_origin() {
        let a = sample(&"bb".repeat(32));
        assert_eq!(a, sample(&"bb".repeat(32)));
        let other = sample(&"cc".repeat(32));
        let doc: Document = serde_json::from_slice(&a).unwrap();
        let doc2: Document = serde_json::from_slice(&other).unwrap();
        assert_ne!(
            doc.namespace, doc2.namespace,
            "the namespace follows the content"
        );
        assert_eq!(doc.spdx_version, "SPDX-2.3");
        assert_eq!(doc.creation_info.created, "2023-11-14T22:13:20Z");
        assert_eq!(doc.files.len(), 2);
        assert_eq!(doc.files[1].path(), "rootfs/opt/k8s/bin/kube-apiserver");
        let bins = binaries(&doc);
        assert_eq!(bins.len(), 1);
        let (p, f) = bins[0];
        assert_eq!(p.file_name.as_deref(), Some("bin/kube-apiserver"));
        assert_eq!(p.version.as_deref(), Some("1.20.2"));
        assert_eq!(p.sha256(), Some("bb".repeat(32).as_str()));
        assert_eq!(f.unwrap().sha256(), p.sha256());
    }
}
