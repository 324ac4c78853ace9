//! Inputs a newcomer gets wrong, refused before anything is written: an `apiserver` the
//! serving certificate does not name.

use std::path::Path;

use crate::bad_input::{no_setup, refused};
use crate::common::*;

/// The test inventory with kube-apiserver and etcd built.
fn with_apiserver() -> String {
    format!("{INVENTORY}\n[kube-apiserver]\n[etcd]\nversion = \"3.4\"\n")
}

#[test]
fn an_apiserver_the_serving_certificate_does_not_name_is_refused_naming_extra_sans() {
    let apiserver = "apiserver = \"https://{{node.ip}}:6443\"";
    for (url, host) in [
        ("https://lb.example.com:6443", "lb.example.com"),
        ("https://localhost:6443", "localhost"),
        ("https://[::1]:6443", "::1"),
        ("https://10.0.0.100", "10.0.0.100"),
    ] {
        let text = with_apiserver().replace(apiserver, &format!("apiserver = \"{url}\""));
        let project = refused(
            &text,
            no_setup,
            &[
                "cluster.toml:3:13: `cluster.apiserver`",
                &format!("`{host}` is not a name of kube-apiserver's serving certificate, which on `m1` holds IP:127.0.0.1, IP:127.0.1.1, DNS:m1, IP:10.254.0.1, DNS:kubernetes,"),
                &format!("hint: add `{host}` to `extra-sans` under [kube-apiserver]"),
            ],
        );
        assert!(!project.path("pki").exists(), "{url}: pki/ written");
    }
    // What the certificate names is accepted: loopback, each node's own IP (the
    // placeholder resolves per node), the service's names, an extra SAN in any case.
    let parse = |text: &str| kube_bundle::config::parse(Path::new("cluster.toml"), text);
    for url in [
        "https://127.0.0.1:6443",
        "https://{{node.ip}}:6443",
        "https://kubernetes.default.svc:443",
        "https://10.254.0.1",
    ] {
        let text = with_apiserver().replace(apiserver, &format!("apiserver = \"{url}\""));
        parse(&text).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // A node's IP is in its own certificate only.
    let text = with_apiserver().replace(apiserver, "apiserver = \"https://127.0.1.1:6443\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("`127.0.1.1` is not a name of kube-apiserver's serving certificate, which on `m2` holds"),
        "{err}"
    );
    // Without kube-apiserver built, the apiserver is someone else's: not checked.
    let text = INVENTORY.replace(apiserver, "apiserver = \"https://lb.example.com:6443\"");
    parse(&text).unwrap();
    // Named in extra-sans, it builds, and the kubeconfigs point at it.
    let text = with_apiserver()
        .replace(apiserver, "apiserver = \"https://LB.example.com:6443\"")
        .replace(
            "[kube-apiserver]\n",
            "[kube-apiserver]\nextra-sans = [\"lb.example.com\"]\n",
        );
    let project = Project::new(&text);
    project.build_ok();
    let kubeconfig = std::fs::read_to_string(
        project
            .unpack("m2")
            .join("rootfs/etc/kubernetes/kube-controller-manager.kubeconfig"),
    )
    .unwrap();
    assert!(
        kubeconfig.contains("server: https://LB.example.com:6443\n"),
        "{kubeconfig}"
    );
}

#[test]
fn worker_apiserver_is_a_url_kept_for_workers() {
    let parse = |extra: &str| {
        let text = INVENTORY.replace("[cluster]\n", &format!("[cluster]\n{extra}\n"));
        kube_bundle::config::parse(Path::new("cluster.toml"), &text)
    };
    let inv = parse("worker-apiserver = \"https://127.0.0.1:8443\"").unwrap();
    assert_eq!(
        inv.cluster.worker_apiserver.as_deref(),
        Some("https://127.0.0.1:8443")
    );
    assert_eq!(inv.apiserver_for(&inv.nodes[0]), "https://127.0.1.1:6443");
    for (bad, needle) in [
        ("http://127.0.0.1:8443", "is not an https URL"),
        ("https://127.0.0.1:0", "has a bad port"),
        (
            "https://{{node.ip}}:8443",
            "`{{node.ip}}` stands for a master's IP, not a worker's",
        ),
    ] {
        let err = parse(&format!("worker-apiserver = \"{bad}\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cluster.toml:2:20: `cluster.worker-apiserver`") && err.contains(needle),
            "{bad}: {err}"
        );
    }
}
