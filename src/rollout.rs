//! Rollout order: which master to update first. Non-leaders go first and the current
//! kube-controller-manager leader last, one at a time, so leadership moves once at most.
//! The leader is read from the cluster with kubectl when an admin kubeconfig is given;
//! this module never changes the cluster or a node.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::config::{Inventory, Node};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub node: String,
    pub ip: String,
    pub leader: bool,
}

/// Where the leader was read from, or why it could not be.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub enum LeaderSource {
    Lease,
    EndpointsAnnotation,
    Unknown(String),
}

/// Inventory order, with the leader (if known and listed) moved last.
pub fn order(nodes: &[Node], leader: Option<&str>) -> Vec<Step> {
    let step = |n: &Node| Step {
        node: n.name.clone(),
        ip: n.ip.to_string(),
        leader: Some(n.name.as_str()) == leader,
    };
    let mut steps: Vec<Step> = nodes.iter().map(step).collect();
    steps.sort_by_key(|s| s.leader);
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

/// Reads the current leader's holder identity with kubectl. Below 1.17 the lock is the
/// Endpoints annotation; from 1.17 the Lease (1.17–1.19 write both).
pub fn read_leader(inv: &Inventory, kubeconfig: &Path) -> Result<(String, LeaderSource)> {
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
            "kube-system",
            "get",
            kind,
            "kube-controller-manager",
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
                "kubectl could not read the {kind} kube-system/kube-controller-manager: {}",
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
                "endpoints kube-system/kube-controller-manager",
                format!("has no leader record ({e})"),
            )
        })?;
        Ok((record.holder_identity, LeaderSource::EndpointsAnnotation))
    } else {
        Ok((text, LeaderSource::Lease))
    }
}

#[cfg(test)]
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
        assert_eq!(names(order(&nodes(), Some("m1"))), ["m2", "m3", "m1"]);
        assert_eq!(names(order(&nodes(), Some("m2"))), ["m1", "m3", "m2"]);
        assert_eq!(names(order(&nodes(), None)), ["m1", "m2", "m3"]);
        assert_eq!(
            names(order(&nodes(), Some("elsewhere"))),
            ["m1", "m2", "m3"]
        );
    }

    #[test]
    fn identities_name_their_host() {
        let n = nodes();
        assert_eq!(node_of_identity(&n, "m2_6b52-40e0"), Some("m2"));
        assert_eq!(node_of_identity(&n, "m3.example.com_e334e88d"), Some("m3"));
        assert_eq!(node_of_identity(&n, "m4_x"), None);
    }
}
