//! kube-controller-manager command-line flags: the tutorial's flag set made valid for one
//! Kubernetes version, and the catalogue that says which flags a version has. Version
//! facts come from ../shared/reference/kcm-flags-by-version.md and the catalogue file
//! `kcm-flags.tsv`; this module renders nothing and reads no files at run time.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::{Inventory, Node, ServiceAccountKey};
use crate::plan::paths;
use crate::version::{KubeVersion, OLDEST_MINOR};

/// One flag as it appears on the command line: `--name` or `--name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

impl Flag {
    fn on(name: &str) -> Self {
        Flag {
            name: name.into(),
            value: None,
        }
    }

    fn set(name: &str, value: impl Into<String>) -> Self {
        Flag {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// Flags whose value kube-bundle owns through a dedicated inventory key.
const MANAGED: &[(&str, &str)] = &[("secure-port", "kube-controller-manager.secure-port")];

/// The unit's flags for one node: the tutorial's set for the target version, then
/// `extra-args` overriding in place or appended in name order.
pub fn kcm_flags(inv: &Inventory, node: &Node) -> Vec<Flag> {
    let minor = inv.cluster.version.profile_minor();
    let ca = format!("{}/ca.pem", paths::CERT_DIR);
    let ca_key = format!("{}/ca-key.pem", paths::CERT_DIR);
    let kubeconfig = paths::KUBECONFIG.to_string();
    let mut flags = vec![
        Flag::on("profiling"),
        Flag::set("cluster-name", &inv.cluster.name),
        Flag::set("controllers", "*,bootstrapsigner,tokencleaner"),
        Flag::set("kube-api-qps", "1000"),
        Flag::set("kube-api-burst", "2000"),
        Flag::on("leader-elect"),
        Flag::on("use-service-account-credentials"),
        Flag::set("concurrent-service-syncs", "2"),
        Flag::set("bind-address", node.ip.to_string()),
        Flag::set("secure-port", inv.kcm.secure_port.to_string()),
        Flag::set(
            "tls-cert-file",
            format!("{}/kube-controller-manager.pem", paths::CERT_DIR),
        ),
        Flag::set(
            "tls-private-key-file",
            format!("{}/kube-controller-manager-key.pem", paths::CERT_DIR),
        ),
    ];
    // Below 1.22 the insecure HTTP port 10252 is on unless explicitly disabled; from 1.24
    // the flag is gone and its presence stops the binary.
    if minor < 22 {
        flags.push(Flag::set("port", "0"));
    }
    flags.extend([
        Flag::set("authentication-kubeconfig", &kubeconfig),
        Flag::set("client-ca-file", &ca),
        Flag::set("requestheader-allowed-names", "aggregator"),
        Flag::set("requestheader-client-ca-file", &ca),
        Flag::set("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        Flag::set("requestheader-group-headers", "X-Remote-Group"),
        Flag::set("requestheader-username-headers", "X-Remote-User"),
        Flag::set("authorization-kubeconfig", &kubeconfig),
        Flag::set("cluster-signing-cert-file", &ca),
        Flag::set("cluster-signing-key-file", &ca_key),
    ]);
    // The experimental spelling is the only one before 1.19 and is removed in 1.25.
    let signing = if minor < 19 {
        "experimental-cluster-signing-duration"
    } else {
        "cluster-signing-duration"
    };
    flags.push(Flag::set(signing, go_duration(inv.pki.cert_validity)));
    flags.extend([
        Flag::set("horizontal-pod-autoscaler-sync-period", "10s"),
        Flag::set("concurrent-deployment-syncs", "10"),
        Flag::set("concurrent-gc-syncs", "30"),
    ]);
    if let Some(cidr) = inv.cluster.cluster_cidr {
        flags.push(Flag::set("cluster-cidr", cidr.to_string()));
    }
    flags.extend([
        Flag::set("node-cidr-mask-size", "24"),
        Flag::set(
            "service-cluster-ip-range",
            inv.cluster.service_cidr.to_string(),
        ),
    ]);
    // Removed in 1.27 together with the non-taint eviction path.
    if minor < 27 {
        flags.push(Flag::set("pod-eviction-timeout", "6m"));
    }
    let sa_key = match inv.pki.service_account_key {
        ServiceAccountKey::Dedicated => format!("{}/sa.key", paths::CERT_DIR),
        ServiceAccountKey::Ca => ca_key.clone(),
    };
    flags.extend([
        Flag::set("terminated-pod-gc-threshold", "10000"),
        Flag::set("root-ca-file", &ca),
        Flag::set("service-account-private-key-file", sa_key),
        Flag::set("kubeconfig", &kubeconfig),
    ]);
    // klog's own flags are deprecated from 1.23 and unknown from 1.26; stderr is the
    // default anyway, and journald collects it.
    if minor < 23 {
        flags.push(Flag::set("logtostderr", "true"));
    }
    flags.push(Flag::set("v", "2"));

    for (name, value) in &inv.kcm.extra_args {
        match flags.iter_mut().find(|f| &f.name == name) {
            Some(flag) => flag.value = Some(value.clone()),
            None => flags.push(Flag::set(name, value)),
        }
    }
    flags
}

/// Go's duration syntax, as kube-controller-manager parses it.
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    }
}

/// First and last minor release that has a flag; `None` last means still present.
#[derive(Debug, Clone, Copy)]
struct Lifetime {
    first: u32,
    last: Option<u32>,
}

fn catalogue() -> &'static BTreeMap<&'static str, Lifetime> {
    static CATALOGUE: OnceLock<BTreeMap<&'static str, Lifetime>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        include_str!("kcm-flags.tsv")
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut cols = line.split('\t');
                let name = cols.next().expect("flag column");
                let first = cols
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(OLDEST_MINOR);
                let last = cols.next().and_then(|c| c.parse().ok());
                (name, Lifetime { first, last })
            })
            .collect()
    })
}

/// Whether `version` of kube-controller-manager has `--name`, as a user-facing
/// (message, hint) pair when it does not.
pub fn check_extra_arg(name: &str, version: &KubeVersion) -> Result<(), (String, String)> {
    if let Some((_, key)) = MANAGED.iter().find(|(flag, _)| *flag == name) {
        return Err((
            format!("`--{name}` is set by kube-bundle"),
            format!("set `{key}` instead"),
        ));
    }
    let minor = version.profile_minor();
    let Some(life) = catalogue().get(name) else {
        return Err((
            format!("kube-controller-manager has no flag `--{name}`"),
            format!("check the spelling against `kube-controller-manager --help` of {version}; names are written without leading dashes"),
        ));
    };
    if minor < life.first {
        return Err((
            format!("`--{name}` does not exist in kube-controller-manager {version}; it was added in 1.{}", life.first),
            "remove it or raise `cluster.kubernetes-version`".into(),
        ));
    }
    if let Some(last) = life.last.filter(|last| minor > *last) {
        return Err((
            format!("`--{name}` does not exist in kube-controller-manager {version}; it was removed after 1.{last}"),
            "remove it from `extra-args`".into(),
        ));
    }
    Ok(())
}

/// Every catalogue flag present in one minor release; for tests and `--help` tooling.
pub fn known_in(minor: u32) -> impl Iterator<Item = &'static str> {
    catalogue()
        .iter()
        .filter(move |(_, l)| l.first <= minor && l.last.is_none_or(|last| minor <= last))
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::version::NEWEST_MINOR;
    use std::path::Path;

    fn inventory(version: &str, extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nkubernetes-version = \"{version}\"\nservice-cidr = \"10.254.0.0/16\"\n\
             [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n[kube-controller-manager]\n{extra}\n"
        );
        config::parse(Path::new("cluster.toml"), &text).unwrap()
    }

    fn names(version: &str) -> Vec<String> {
        let inv = inventory(version, "");
        kcm_flags(&inv, &inv.nodes[0])
            .into_iter()
            .map(|f| f.name)
            .collect()
    }

    #[test]
    fn version_specific_flags_follow_the_reference_table() {
        let has = |v: &str, f: &str| names(v).iter().any(|n| n == f);
        assert!(has("1.16", "port") && has("1.21", "port") && !has("1.22", "port"));
        assert!(has("1.18", "experimental-cluster-signing-duration"));
        assert!(
            !has("1.19", "experimental-cluster-signing-duration")
                && has("1.19", "cluster-signing-duration")
        );
        assert!(has("1.26", "pod-eviction-timeout") && !has("1.27", "pod-eviction-timeout"));
        assert!(
            has("1.22", "logtostderr")
                && !has("1.23", "logtostderr")
                && !has("1.34", "logtostderr")
        );
    }

    #[test]
    fn every_default_flag_exists_in_its_version() {
        for minor in OLDEST_MINOR..=NEWEST_MINOR {
            let version = format!("1.{minor}");
            let known: Vec<&str> = known_in(minor).collect();
            for name in names(&version) {
                assert!(
                    known.contains(&name.as_str()),
                    "1.{minor} renders unknown --{name}"
                );
            }
        }
    }

    #[test]
    fn extra_args_override_in_place_and_append() {
        let inv = inventory(
            "1.20.2",
            "extra-args = { v = 4, \"--allocate-node-cidrs\" = true }",
        );
        let flags = kcm_flags(&inv, &inv.nodes[0]);
        assert_eq!(flags.iter().filter(|f| f.name == "v").count(), 1);
        assert_eq!(
            flags
                .iter()
                .find(|f| f.name == "v")
                .unwrap()
                .value
                .as_deref(),
            Some("4")
        );
        assert_eq!(
            flags.last().unwrap(),
            &Flag::set("allocate-node-cidrs", "true")
        );
    }

    #[test]
    fn extra_args_the_version_lacks_are_refused() {
        let v = |s| KubeVersion::parse(s).unwrap();
        assert!(check_extra_arg("port", &v("1.21")).is_ok());
        assert!(check_extra_arg("port", &v("1.24"))
            .unwrap_err()
            .0
            .contains("removed after 1.23"));
        assert!(check_extra_arg("cluster-signing-duration", &v("1.18"))
            .unwrap_err()
            .0
            .contains("added in 1.19"));
        assert!(check_extra_arg("no-such-flag", &v("1.20"))
            .unwrap_err()
            .0
            .contains("no flag"));
        assert!(check_extra_arg("secure-port", &v("1.20"))
            .unwrap_err()
            .1
            .contains("secure-port"));
    }
}
