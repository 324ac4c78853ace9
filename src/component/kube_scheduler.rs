//! kube-scheduler, as the tutorial's chapter 05-4: its row, its flag profile and its
//! configuration file's apiVersion.

use super::flags::{delegated_auth, serving};
use super::{BLOCKING, HEALTHZ, KUBERNETES_STAMP};
use crate::model::{
    CertSpec, Component, ComponentSettings, ConfigFile, Flag, Inventory, IssuedBy, Names, Node,
    Starter,
};
use crate::version::KubeVersion;

pub const KUBE_SCHEDULER: Component = Component {
    name: "kube-scheduler",
    user: "system:kube-scheduler",
    description: "Kubernetes Scheduler",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
    section: super::STANDARD,
    node_state: None,
    starter: Some(STARTER),
    required: false,
    default_secure_port: 10259,
    port_key: "secure-port",
    extra_ports: &[],
    health: HEALTHZ,
    lease: Some("kube-scheduler"),
    kubeconfig: true,
    serves_api: false,
    binds_node_ip: true,
    certs: &[CertSpec {
        name: "kube-scheduler",
        cn: "system:kube-scheduler",
        org: Some("system:kube-scheduler"),
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
    config: Some(ConfigFile {
        template: "kube-scheduler.yaml",
        text: include_str!("../../bundle-templates/kube-scheduler.yaml.hbs"),
        kind: "KubeSchedulerConfiguration",
        api_version: scheduler_config_api,
        values: config_values,
    }),
    flags: flag_profile,
    main_packages: &[],
    catalogue: include_str!("ks-flags.tsv"),
    version_series: "1.",
    version_stamp: KUBERNETES_STAMP,
    install_data: None,
    managed_flags: &[
        ("secure-port", "secure-port"),
        ("config", ""),
        ("bind-address", ""),
        ("client-ca-file", ""),
        ("requestheader-client-ca-file", ""),
    ],
    guards: &[],
    shared_flags: &[],
    uses_service_account_key: false,
    signs_csrs: false,
    install_hooks: None,
    manifest: None,
    verify: crate::model::Checks::NONE,
};

/// The tutorial's chapter 05-4 flags. The kubeconfig, client settings and leader election
/// live in the `--config` file (flags for them are ignored when `--config` is given).
fn flag_profile(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
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

/// Up to 1.22 a scheduler reading a configuration file opens the insecure port 10251 on
/// every address whatever `--port` says; only these fields move it (checked with 1.20.2).
/// From 1.23 they must be left out.
fn config_values(inv: &Inventory, node: &Node) -> serde_json::Value {
    serde_json::json!({
        "insecure_bind": (inv.cluster.version.profile_minor() <= 22)
            .then(|| format!("{}:10251", crate::model::url_host(node.ip))),
    })
}

/// Its section of the inventory `init` writes: the standard keys.
const STARTER: Starter = Starter {
    vars: &[],
    section: |_, _| {
        Ok(r#"
# kube-scheduler on every master, as the tutorial's chapter 05-4; remove the section to
# leave it out.
[kube-scheduler]
# binary = "/opt/k8s/bin/kube-scheduler"            # carried in each bundle when set
secure-port = 10259
[kube-scheduler.extra-args]
# v = 4
"#
        .to_string())
    },
};
