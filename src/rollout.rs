//! Rollout order: which master to update first. Nodes that lead no component go first,
//! then leaders, the node leading the most components last, one at a time, so each
//! leadership moves once at most. Leaders are read from each component's lease with
//! kubectl when an admin kubeconfig is given; this module never changes the cluster or a
//! node.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::component::{Component, LEASE_NAMESPACE};
use crate::error::{Error, Result};
use crate::model::{Inventory, Node};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub node: String,
    pub ip: String,
    /// Whether the node leads any component.
    pub leader: bool,
    /// The components whose lease this node holds.
    pub leads: Vec<String>,
}

/// Where the leader was read from, or why it could not be.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub enum LeaderSource {
    Lease,
    EndpointsAnnotation,
    Unknown(String),
}

/// Inventory order, with leaders moved last: `leaders` pairs each component with the
/// node holding its lease, when known. Among leaders, fewer components first.
pub fn order(nodes: &[Node], leaders: &[(&str, Option<&str>)]) -> Vec<Step> {
    let step = |n: &Node| {
        let leads: Vec<String> = leaders
            .iter()
            .filter(|(_, node)| *node == Some(n.name.as_str()))
            .map(|(c, _)| c.to_string())
            .collect();
        Step {
            node: n.name.clone(),
            ip: n.ip.to_string(),
            leader: !leads.is_empty(),
            leads,
        }
    };
    let mut steps: Vec<Step> = nodes.iter().map(step).collect();
    steps.sort_by_key(|s| s.leads.len());
    steps
}

/// The node a holder identity (`<hostname>_<uuid>`) names.
pub fn node_of_identity<'a>(nodes: &'a [Node], identity: &str) -> Option<&'a str> {
    let host = identity.split('_').next().unwrap_or(identity);
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .find(|n| *n == host || host.split('.').next() == Some(n))
}

/// Reads the holder identity of `c`'s leader with kubectl. Below 1.17 the lock is the
/// Endpoints annotation; from 1.17 the Lease (1.17–1.19 write both).
pub fn read_leader(
    inv: &Inventory,
    c: &Component,
    kubeconfig: &Path,
) -> Result<(String, LeaderSource)> {
    let Some(lease) = c.lease else {
        return Err(Error::input(
            c.name,
            "runs active on every node and elects no leader",
        ));
    };
    let endpoints = inv.cluster.version.minor < 17;
    let jsonpath = if endpoints {
        r"jsonpath={.metadata.annotations.control-plane\.alpha\.kubernetes\.io/leader}"
    } else {
        "jsonpath={.spec.holderIdentity}"
    };
    let kind = if endpoints { "endpoints" } else { "lease" };
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--request-timeout=10s",
            "-n",
            LEASE_NAMESPACE,
            "get",
            kind,
            lease,
            "-o",
            jsonpath,
        ])
        .output()
        .map_err(|e| {
            Error::input("kubectl", format!("cannot run kubectl ({e})"))
                .with_hint("install kubectl, or leave out --kubeconfig")
        })?;
    if !out.status.success() {
        return Err(Error::input(
            format!("`{}`", kubeconfig.display()),
            format!(
                "kubectl could not read the {kind} {LEASE_NAMESPACE}/{lease}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if endpoints {
        #[derive(serde::Deserialize)]
        struct Record {
            #[serde(rename = "holderIdentity")]
            holder_identity: String,
        }
        let record: Record = serde_json::from_str(&text).map_err(|e| {
            Error::input(
                format!("endpoints {LEASE_NAMESPACE}/{lease}"),
                format!("has no leader record ({e})"),
            )
        })?;
        Ok((record.holder_identity, LeaderSource::EndpointsAnnotation))
    } else {
        Ok((text, LeaderSource::Lease))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    fn nodes() -> Vec<Node> {
        ["m1", "m2", "m3"]
            .iter()
            .enumerate()
            .map(|(i, n)| Node {
                name: n.to_string(),
                ip: format!("10.0.0.{}", i + 1).parse().unwrap(),
            })
            .collect()
    }

    #[test]
    fn the_leader_goes_last_and_the_rest_keep_their_order() {
        let names = |steps: Vec<Step>| steps.into_iter().map(|s| s.node).collect::<Vec<_>>();
        let one = |leader| vec![("kube-controller-manager", leader)];
        assert_eq!(names(order(&nodes(), &one(Some("m1")))), ["m2", "m3", "m1"]);
        assert_eq!(names(order(&nodes(), &one(Some("m2")))), ["m1", "m3", "m2"]);
        assert_eq!(names(order(&nodes(), &one(None))), ["m1", "m2", "m3"]);
        assert_eq!(
            names(order(&nodes(), &one(Some("elsewhere")))),
            ["m1", "m2", "m3"]
        );
    }

    #[test]
    fn the_node_leading_most_components_goes_last() {
        let leaders = [
            ("kube-controller-manager", Some("m1")),
            ("kube-scheduler", Some("m2")),
        ];
        let steps = order(&nodes(), &leaders);
        let names: Vec<&str> = steps.iter().map(|s| s.node.as_str()).collect();
        assert_eq!(names, ["m3", "m1", "m2"]);
        assert_eq!(steps[1].leads, ["kube-controller-manager"]);
        let both = [
            ("kube-controller-manager", Some("m2")),
            ("kube-scheduler", Some("m2")),
        ];
        let one_and_both = [("kube-controller-manager", Some("m3")), both[1]];
        let names = |l: &[(&str, Option<&str>)]| {
            order(&nodes(), l)
                .into_iter()
                .map(|s| s.node)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&both), ["m1", "m3", "m2"]);
        assert_eq!(names(&one_and_both), ["m1", "m2", "m3"]);
    }

    #[test]
    fn identities_name_their_host() {
        let n = nodes();
        assert_eq!(node_of_identity(&n, "m2_6b52-40e0"), Some("m2"));
        assert_eq!(node_of_identity(&n, "m3.example.com_e334e88d"), Some("m3"));
        assert_eq!(node_of_identity(&n, "m4_x"), None);
    }
}
