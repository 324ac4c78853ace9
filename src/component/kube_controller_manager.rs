//! kube-controller-manager, as the tutorial's chapter 05-3: its row and its flag
//! profile.

use super::flags::{delegated_auth, go_duration, serving};
use super::{paths, BLOCKING, HEALTHZ, KUBERNETES_STAMP};
use crate::model::{
    CertSpec, Component, ComponentSettings, CsrSigning, Flag, Inventory, IssuedBy, Names, Node,
    ServiceAccountKey, Starter,
};

pub const KUBE_CONTROLLER_MANAGER: Component = Component {
    name: "kube-controller-manager",
    user: "system:kube-controller-manager",
    description: "Kubernetes Controller Manager",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
    section: super::STANDARD,
    node_state: None,
    starter: Some(STARTER),
    // Built with defaults when absent, as before the other components joined.
    required: true,
    default_secure_port: 10257,
    port_key: "secure-port",
    extra_ports: &[],
    health: HEALTHZ,
    lease: Some("kube-controller-manager"),
    kubeconfig: true,
    serves_api: false,
    binds_node_ip: true,
    certs: &[CertSpec {
        name: "kube-controller-manager",
        cn: "system:kube-controller-manager",
        org: Some("system:kube-controller-manager"),
        server: true,
        client: true,
        names: Names::Node,
        issued_by: IssuedBy::Root,
    }],
    certs_from: &[],
    gates_the_rest: false,
    start: BLOCKING,
    work_mode: 0o755,
    data_dirs: &[],
    unit_settings: &[],
    config: None,
    flags: flag_profile,
    main_packages: &[],
    catalogue: include_str!("kcm-flags.tsv"),
    version_series: "1.",
    version_stamp: KUBERNETES_STAMP,
    install_data: None,
    managed_flags: &[
        ("secure-port", "secure-port"),
        ("bind-address", ""),
        ("client-ca-file", ""),
        ("requestheader-client-ca-file", ""),
    ],
    guards: &[],
    shared_flags: &["service-cluster-ip-range"],
    uses_service_account_key: true,
    signs_csrs: true,
    install_hooks: None,
    manifest: None,
    verify: crate::model::Checks::NONE,
};

fn flag_profile(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
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

/// Its section of the inventory `init` writes: the standard keys.
const STARTER: Starter = Starter {
    vars: &[],
    section: |_, _| {
        Ok(r#"
[kube-controller-manager]
# binary = "/opt/k8s/bin/kube-controller-manager"   # carried in each bundle when set
secure-port = 10257
[kube-controller-manager.extra-args]
# v = 4
"#
        .to_string())
    },
};
