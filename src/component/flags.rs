//! Command-line flags of each component: the tutorial's flag set made valid for one
//! Kubernetes version (a profile per component, facts from
//! ../shared/reference/kcm-flags-by-version.md), and the scheduler's configuration file
//! fields. The catalogue of which flags exist lives in `catalogue`; this module renders
//! nothing and reads no files.

use std::time::Duration;

use crate::component::{paths, Component, FRONT_PROXY_CLIENT};
use crate::model::{ComponentSettings, Flag, Inventory, Node};

impl Flag {
    pub(super) fn on(name: &str) -> Self {
        Flag {
            name: name.into(),
            value: None,
        }
    }

    pub(super) fn set(name: &str, value: impl Into<String>) -> Self {
        Flag {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// The unit's flags of one component on one node: its row's profile for the target
/// version, then `extra-args` overriding in place or appended in name order.
pub fn flags(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let mut flags = (settings.component.flags)(inv, node, settings);
    for (name, value) in &settings.extra_args {
        match flags.iter_mut().find(|f| &f.name == name) {
            Some(flag) => flag.value = Some(value.clone()),
            None => flags.push(Flag::set(name, value)),
        }
    }
    flags
}

/// Serving and delegated authentication flags both components share: TLS with the
/// bundle certificate on the node IP, and authn/authz through the component's kubeconfig.
pub(super) fn serving(c: &Component, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    vec![
        Flag::set("bind-address", node.ip.to_string()),
        Flag::set("secure-port", settings.secure_port.to_string()),
        Flag::set("tls-cert-file", c.cert_path()),
        Flag::set("tls-private-key-file", c.key_path()),
    ]
}

pub(super) fn delegated_auth(inv: &Inventory, c: &Component) -> Vec<Flag> {
    let kubeconfig = c.kubeconfig_path();
    let mut flags = vec![
        Flag::set("authentication-kubeconfig", &kubeconfig),
        Flag::set("client-ca-file", paths::CA_CERT),
    ];
    flags.extend(request_header(inv));
    flags.push(Flag::set("authorization-kubeconfig", &kubeconfig));
    flags
}

/// Who may assert a user in request headers (the aggregation layer): with the
/// apiserver in the bundle, its front-proxy client certificate under the front-proxy
/// CA, as kubeadm sets it up; otherwise the tutorial's `aggregator` under the root CA.
pub(super) fn request_header(inv: &Inventory) -> Vec<Flag> {
    let (allowed, ca) = if inv.serves_api() {
        (FRONT_PROXY_CLIENT.cn, paths::FRONT_PROXY_CA)
    } else {
        ("aggregator", paths::CA_CERT)
    };
    vec![
        Flag::set("requestheader-allowed-names", allowed),
        Flag::set("requestheader-client-ca-file", ca),
        Flag::set("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        Flag::set("requestheader-group-headers", "X-Remote-Group"),
        Flag::set("requestheader-username-headers", "X-Remote-User"),
    ]
}

/// The service-account token issuer: kubeadm's default, the in-cluster name of the
/// `kubernetes` service.
pub fn service_account_issuer(inv: &Inventory) -> String {
    format!("https://kubernetes.default.svc.{}", inv.cluster.dns_domain)
}

/// Go's duration syntax, as kube-controller-manager parses it.
pub(super) fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use crate::component::catalogue::known_in;
    use crate::component::kube_scheduler::scheduler_config_api;
    use crate::component::{ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER};
    use crate::load::config;
    use crate::version::KubeVersion;
    use crate::version::{NEWEST_MINOR, OLDEST_MINOR};
    use std::path::Path;

    fn inventory(version: &str, extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nkubernetes-version = \"{version}\"\nservice-cidr = \"10.254.0.0/16\"\n\
             [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n[kube-controller-manager]\n{extra}\n[kube-scheduler]\n"
        );
        config::parse(Path::new("cluster.toml"), &text).unwrap()
    }

    fn names_of(version: &str, c: &Component) -> Vec<String> {
        let inv = if c == &KUBE_APISERVER {
            with_apiserver(version)
        } else {
            inventory(version, "")
        };
        flags(&inv, &inv.nodes[0], inv.settings(c).unwrap())
            .into_iter()
            .map(|f| f.name)
            .collect()
    }

    fn with_apiserver(version: &str) -> Inventory {
        let text = format!(
            "[cluster]\nkubernetes-version = \"{version}\"\nservice-cidr = \"10.254.0.0/16\"\n\
             [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n[kube-scheduler]\n\
             [kube-apiserver]\netcd-servers = [\"http://10.0.0.1:2379\"]\n"
        );
        config::parse(Path::new("cluster.toml"), &text).unwrap()
    }

    fn names(version: &str) -> Vec<String> {
        names_of(version, &KUBE_CONTROLLER_MANAGER)
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
    fn scheduler_flags_follow_the_reference_table() {
        let has = |v: &str, f: &str| names_of(v, &KUBE_SCHEDULER).iter().any(|n| n == f);
        assert!(has("1.22", "port") && !has("1.23", "port") && !has("1.24", "port"));
        assert!(has("1.22", "logtostderr") && !has("1.23", "logtostderr"));
        assert!(!has("1.20", "address") && !has("1.20", "kubeconfig"));
        for f in [
            "config",
            "bind-address",
            "secure-port",
            "tls-cert-file",
            "client-ca-file",
        ] {
            assert!(has("1.34", f), "{f}");
        }
        let inv = inventory("1.20.2", "");
        let f = flags(&inv, &inv.nodes[0], inv.settings(&KUBE_SCHEDULER).unwrap());
        assert!(f.contains(&Flag::set("bind-address", "10.0.0.1")));
        assert!(f.contains(&Flag::set("secure-port", "10259")));
        assert!(f.contains(&Flag::set("config", "/etc/kubernetes/kube-scheduler.yaml")));
    }

    #[test]
    fn scheduler_config_api_per_release() {
        let api = |v: &str| scheduler_config_api(&KubeVersion::parse(v).unwrap());
        assert_eq!(api("1.16"), "kubescheduler.config.k8s.io/v1alpha1");
        assert_eq!(api("1.18"), "kubescheduler.config.k8s.io/v1alpha1");
        assert_eq!(api("1.19"), "kubescheduler.config.k8s.io/v1beta1");
        assert_eq!(api("1.21"), "kubescheduler.config.k8s.io/v1beta1");
        assert_eq!(api("1.22"), "kubescheduler.config.k8s.io/v1beta2");
        assert_eq!(api("1.24"), "kubescheduler.config.k8s.io/v1beta3");
        assert_eq!(api("1.25"), "kubescheduler.config.k8s.io/v1");
        assert_eq!(api("1.40"), "kubescheduler.config.k8s.io/v1");
    }

    #[test]
    fn every_default_etcd_flag_exists_in_its_release() {
        for minor in crate::component::etcd::ETCD_MINORS {
            let text = format!(
                "[cluster]\nkubernetes-version = \"1.20.2\"\nservice-cidr = \"10.254.0.0/16\"\n\
                 [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n[[nodes]]\nname = \"m2\"\nip = \"10.0.0.2\"\n\
                 [[nodes]]\nname = \"m3\"\nip = \"10.0.0.3\"\n[kube-apiserver]\n[etcd]\nversion = \"3.{minor}\"\n"
            );
            let inv = config::parse(Path::new("cluster.toml"), &text).unwrap();
            let known: Vec<&str> = known_in(&ETCD, minor).collect();
            let flags = flags(&inv, &inv.nodes[1], inv.settings(&ETCD).unwrap());
            for f in &flags {
                assert!(
                    known.contains(&f.name.as_str()),
                    "etcd 3.{minor} renders unknown --{}",
                    f.name
                );
            }
            assert!(flags.contains(&Flag::set(
                "initial-cluster",
                "m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380"
            )));
            assert!(flags.contains(&Flag::set("listen-client-urls", "https://10.0.0.2:2379")));
            let api = super::flags(&inv, &inv.nodes[1], inv.settings(&KUBE_APISERVER).unwrap());
            assert!(api.contains(&Flag::set(
                "etcd-servers",
                "https://10.0.0.2:2379,https://10.0.0.1:2379,https://10.0.0.3:2379"
            )));
            assert!(api.contains(&Flag::set(
                "etcd-certfile",
                "/etc/kubernetes/cert/apiserver-etcd-client.pem"
            )));
        }
    }

    #[test]
    fn every_default_flag_exists_in_its_version() {
        for c in crate::component::ALL
            .into_iter()
            .filter(|c| c.version_series == "1.")
        {
            for minor in OLDEST_MINOR..=NEWEST_MINOR {
                let version = format!("1.{minor}");
                let known: Vec<&str> = known_in(c, minor).collect();
                for name in names_of(&version, c) {
                    assert!(
                        known.contains(&name.as_str()),
                        "{} 1.{minor} renders unknown --{name}",
                        c.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_apiserver_guards_are_rendered_as_verify_expects() {
        let inv = with_apiserver("1.20.2");
        let flags = flags(&inv, &inv.nodes[0], inv.settings(&KUBE_APISERVER).unwrap());
        for (flag, value, _) in KUBE_APISERVER.guards {
            let set: Vec<_> = flags.iter().filter(|f| &f.name == flag).collect();
            assert_eq!(set, [&Flag::set(flag, *value)], "{flag}");
        }
    }

    #[test]
    fn extra_args_override_in_place_and_append() {
        let inv = inventory(
            "1.20.2",
            "extra-args = { v = 4, \"--allocate-node-cidrs\" = true }",
        );
        let flags = flags(&inv, &inv.nodes[0], &inv.components[0]);
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
}
