//! kube-apiserver's object in manifest.json: the inventory values behind its serving
//! certificate's names beyond the node's own, from which `verify` rebuilds the names.

use serde::{Deserialize, Serialize};

use crate::manifest::Owned;
use crate::model::{Inventory, ManifestPart, Node, San};

pub(super) const PART: ManifestPart = ManifestPart {
    key: "apiserver",
    write,
    read: Owned::reads_as::<ManifestApiServer>,
};

/// The object, under `apiserver`.
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

fn write(inv: &Inventory, _node: &Node) -> Option<Owned> {
    let api = super::own(inv)?;
    let names = ManifestApiServer {
        service_ip: inv.cluster.kubernetes_service_ip().to_string(),
        dns_domain: inv.cluster.dns_domain.clone(),
        extra_sans: api
            .extra_sans
            .iter()
            .map(|san| match san {
                San::Ip(ip) => ip.to_string(),
                San::Dns(name) => name.clone(),
            })
            .collect(),
    };
    Some(Owned::of(&names).expect("strings serialize"))
}
