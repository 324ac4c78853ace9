//! Command-line flags of each component: the tutorial's flag set made valid for one
//! Kubernetes version (a profile per component, facts from
//! ../shared/reference/kcm-flags-by-version.md), and the scheduler's configuration file
//! fields. The catalogue of which flags exist lives in `catalogue`; this module renders
//! nothing and reads no files.

use std::time::Duration;

use crate::component::{
    paths, Component, APISERVER_ETCD_CLIENT, FRONT_PROXY_CLIENT, KUBELET_CLIENT,
};
use crate::model::{ComponentSettings, CsrSigning, Flag, Inventory, Node, ServiceAccountKey};
use crate::version::KubeVersion;

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
fn serving(c: &Component, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    vec![
        Flag::set("bind-address", node.ip.to_string()),
        Flag::set("secure-port", settings.secure_port.to_string()),
        Flag::set("tls-cert-file", c.cert_path()),
        Flag::set("tls-private-key-file", c.key_path()),
    ]
}

fn delegated_auth(inv: &Inventory, c: &Component) -> Vec<Flag> {
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
fn request_header(inv: &Inventory) -> Vec<Flag> {
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

/// The tutorial's chapter 05-2 flags, with kubeadm's choices where the tutorial is
/// outdated: service-account issuer and signing key (required from 1.20), front-proxy
/// CA and client, and no `DynamicAuditing` gate or `--runtime-config=api/all=true`
/// (alpha APIs on; set it in `extra-args` if wanted).
pub fn apiserver(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let c = settings.component;
    let minor = inv.cluster.version.profile_minor();
    let api = inv
        .apiserver
        .as_ref()
        .expect("kube-apiserver settings come with its component");
    let mut flags = vec![
        Flag::set("advertise-address", node.ip.to_string()),
        Flag::set("default-not-ready-toleration-seconds", "360"),
        Flag::set("default-unreachable-toleration-seconds", "360"),
        Flag::set("max-mutating-requests-inflight", "2000"),
        Flag::set("max-requests-inflight", "4000"),
        Flag::set("default-watch-cache-size", "200"),
        Flag::set("delete-collection-workers", "2"),
        Flag::set("encryption-provider-config", paths::ENCRYPTION_CONFIG),
    ];
    if let Some(etcd) = &inv.etcd {
        flags.extend([
            Flag::set("etcd-cafile", paths::ETCD_CA),
            Flag::set("etcd-certfile", APISERVER_ETCD_CLIENT.cert_path()),
            Flag::set("etcd-keyfile", APISERVER_ETCD_CLIENT.key_path()),
            Flag::set("etcd-servers", etcd.servers_for(&inv.nodes, node).join(",")),
        ]);
    } else {
        if api.etcd_tls.is_some() {
            flags.extend([
                Flag::set("etcd-cafile", paths::ETCD_CA),
                Flag::set("etcd-certfile", paths::ETCD_CLIENT_CERT),
                Flag::set("etcd-keyfile", paths::ETCD_CLIENT_KEY),
            ]);
        }
        flags.push(Flag::set("etcd-servers", api.etcd_servers.join(",")));
    }
    flags.extend(serving(c, node, settings));
    // The insecure port 8080 is on by default below 1.20 and the flag is gone in 1.24.
    if minor < 20 {
        flags.push(Flag::set("insecure-port", "0"));
    }
    let work_dir = c.work_dir(&inv.cluster.k8s_dir);
    flags.extend([
        Flag::set("audit-log-maxage", "15"),
        Flag::set("audit-log-maxbackup", "3"),
        Flag::set("audit-log-maxsize", "100"),
        Flag::on("audit-log-truncate-enabled"),
        Flag::set("audit-log-path", format!("{work_dir}/audit.log")),
        Flag::set("audit-policy-file", paths::AUDIT_POLICY),
        Flag::on("profiling"),
        Flag::set("anonymous-auth", "false"),
        Flag::set("client-ca-file", paths::CLIENT_CA),
        Flag::on("enable-bootstrap-token-auth"),
    ]);
    flags.extend(request_header(inv));
    let (sa_public, sa_private) = match inv.pki.service_account_key {
        ServiceAccountKey::Dedicated => (paths::SA_PUB, paths::SA_KEY),
        ServiceAccountKey::Ca => (paths::CA_CERT, paths::CA_KEY),
    };
    let issuer = service_account_issuer(inv);
    flags.extend([
        Flag::set("service-account-issuer", &issuer),
        Flag::set("service-account-key-file", sa_public),
        Flag::set("service-account-signing-key-file", sa_private),
        Flag::set("api-audiences", &issuer),
        Flag::set("authorization-mode", "Node,RBAC"),
        Flag::set("enable-admission-plugins", "NodeRestriction"),
        Flag::set("allow-privileged", "true"),
        Flag::set("event-ttl", "168h"),
        // Kubelets' serving certificates come from the CSR signers: root or signing CA.
        Flag::set("kubelet-certificate-authority", paths::CLIENT_CA),
        Flag::set("kubelet-client-certificate", KUBELET_CLIENT.cert_path()),
        Flag::set("kubelet-client-key", KUBELET_CLIENT.key_path()),
        Flag::set("kubelet-timeout", "10s"),
        Flag::set("proxy-client-cert-file", FRONT_PROXY_CLIENT.cert_path()),
        Flag::set("proxy-client-key-file", FRONT_PROXY_CLIENT.key_path()),
        Flag::set(
            "service-cluster-ip-range",
            inv.cluster.service_cidr.to_string(),
        ),
        Flag::set("service-node-port-range", &api.node_port_range),
    ]);
    if minor < 23 {
        flags.push(Flag::set("logtostderr", "true"));
    }
    flags.push(Flag::set("v", "2"));
    flags
}

pub fn controller_manager(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let c = settings.component;
    let minor = inv.cluster.version.profile_minor();
    let kubeconfig = c.kubeconfig_path();
    let mut flags = vec![
        Flag::on("profiling"),
        Flag::set("cluster-name", &inv.cluster.name),
        Flag::set("controllers", "*,bootstrapsigner,tokencleaner"),
        Flag::set("kube-api-qps", "1000"),
        Flag::set("kube-api-burst", "2000"),
        Flag::on("leader-elect"),
        Flag::on("use-service-account-credentials"),
        Flag::set("concurrent-service-syncs", "2"),
    ];
    flags.extend(serving(c, node, settings));
    // Below 1.22 the insecure HTTP port 10252 is on unless explicitly disabled; from 1.24
    // the flag is gone and its presence stops the binary.
    if minor < 22 {
        flags.push(Flag::set("port", "0"));
    }
    flags.extend(delegated_auth(inv, c));
    // One pair for every signer (kubelet client and serving, kube-apiserver client,
    // legacy-unknown): the per-signer flags of 1.19+ would only repeat it. With `off`
    // the signers stay off, as when the flags are unset and the default files absent.
    let signing = match inv.pki.csr_signing {
        CsrSigning::Ca => Some((paths::CA_CERT, paths::CA_KEY)),
        CsrSigning::Signer => Some((paths::SIGNER_CERT, paths::SIGNER_KEY)),
        CsrSigning::Off => None,
    };
    if let Some((cert, key)) = signing {
        flags.extend([
            Flag::set("cluster-signing-cert-file", cert),
            Flag::set("cluster-signing-key-file", key),
        ]);
        // The experimental spelling is the only one before 1.19 and is removed in 1.25.
        let duration = if minor < 19 {
            "experimental-cluster-signing-duration"
        } else {
            "cluster-signing-duration"
        };
        flags.push(Flag::set(duration, go_duration(inv.pki.cert_validity)));
    }
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
        ServiceAccountKey::Dedicated => paths::SA_KEY,
        ServiceAccountKey::Ca => paths::CA_KEY,
    };
    flags.extend([
        Flag::set("terminated-pod-gc-threshold", "10000"),
        Flag::set("root-ca-file", paths::CA_CERT),
        Flag::set("service-account-private-key-file", sa_key),
        Flag::set("kubeconfig", &kubeconfig),
    ]);
    // klog's own flags are deprecated from 1.23 and unknown from 1.26; stderr is the
    // default anyway, and journald collects it.
    if minor < 23 {
        flags.push(Flag::set("logtostderr", "true"));
    }
    flags.push(Flag::set("v", "2"));
    flags
}

/// The tutorial's chapter 05-4 flags. The kubeconfig, client settings and leader election
/// live in the `--config` file (flags for them are ignored when `--config` is given).
pub fn scheduler(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let c = settings.component;
    let minor = inv.cluster.version.profile_minor();
    let mut flags = vec![Flag::set(
        "config",
        c.config_path().expect("the scheduler has a config file"),
    )];
    flags.extend(serving(c, node, settings));
    // Insecure HTTP on 10251 unless disabled, below 1.23; 1.23 accepts only 0, and 1.24
    // removed the flag.
    if minor < 23 {
        flags.push(Flag::set("port", "0"));
    }
    flags.extend(delegated_auth(inv, c));
    if minor < 23 {
        flags.push(Flag::set("logtostderr", "true"));
    }
    flags.push(Flag::set("v", "2"));
    flags
}

/// The tutorial's chapter 04 flags, for the etcd release of the inventory: TLS with one
/// certificate per node for clients and peers, both checked against etcd's CA; client and
/// peer URLs on the node IP only (the tutorial's plain-http loopback listener would let
/// any local process read every Secret); the tutorial's compaction, request and quota
/// limits and timings.
pub fn etcd(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let etcd = inv
        .etcd
        .as_ref()
        .expect("etcd settings come with its component");
    let c = settings.component;
    let state = if etcd.joining.contains(&node.name) {
        "existing"
    } else {
        "new"
    };
    let (cert, key) = (c.cert_path(), c.key_path());
    vec![
        Flag::set("name", &node.name),
        Flag::set("data-dir", &etcd.data_dir),
        Flag::set("wal-dir", &etcd.wal_dir),
        Flag::set("cert-file", &cert),
        Flag::set("key-file", &key),
        Flag::set("trusted-ca-file", paths::ETCD_CA),
        Flag::set("peer-cert-file", &cert),
        Flag::set("peer-key-file", &key),
        Flag::set("peer-trusted-ca-file", paths::ETCD_CA),
        Flag::on("peer-client-cert-auth"),
        Flag::on("client-cert-auth"),
        Flag::set("listen-peer-urls", etcd.peer_url(node)),
        Flag::set("initial-advertise-peer-urls", etcd.peer_url(node)),
        Flag::set("listen-client-urls", etcd.client_url(node)),
        Flag::set("advertise-client-urls", etcd.client_url(node)),
        Flag::set("initial-cluster-token", &etcd.cluster_token),
        Flag::set("initial-cluster", etcd.initial_cluster(&inv.nodes, node)),
        Flag::set("initial-cluster-state", state),
        Flag::set("auto-compaction-mode", "periodic"),
        Flag::set("auto-compaction-retention", "1"),
        Flag::set("max-request-bytes", "33554432"),
        Flag::set("quota-backend-bytes", "6442450944"),
        Flag::set("heartbeat-interval", "250"),
        Flag::set("election-timeout", "2000"),
        // 3.4 logs through the deprecated capnslog unless told otherwise; zap is the
        // default from 3.5, which refuses capnslog.
        Flag::set("logger", "zap"),
    ]
}

/// The KubeSchedulerConfiguration apiVersion the target release accepts (reference
/// section 5): v1alpha1 to 1.18, v1beta1 1.19-1.21, v1beta2 1.22, v1beta3 1.23-1.24, v1 from 1.25.
pub fn scheduler_config_api(version: &KubeVersion) -> &'static str {
    match version.profile_minor() {
        ..=18 => "kubescheduler.config.k8s.io/v1alpha1",
        19..=21 => "kubescheduler.config.k8s.io/v1beta1",
        22 => "kubescheduler.config.k8s.io/v1beta2",
        23..=24 => "kubescheduler.config.k8s.io/v1beta3",
        _ => "kubescheduler.config.k8s.io/v1",
    }
}

/// The EncryptionConfiguration apiVersion: `apiserver.config.k8s.io/v1` from 1.13
/// through 1.34 (the tutorial's `EncryptionConfig` `v1` is the pre-1.13 spelling).
pub fn encryption_config_api(_version: &KubeVersion) -> &'static str {
    "apiserver.config.k8s.io/v1"
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

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use crate::component::catalogue::known_in;
    use crate::component::{ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER};
    use crate::load::config;
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
        for minor in crate::model::ETCD_MINORS {
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
