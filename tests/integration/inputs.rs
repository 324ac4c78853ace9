//! Inputs a newcomer gets wrong, refused before anything is written: an `apiserver` the
//! serving certificate does not name, and binaries that are not executables for the
//! nodes of the release the inventory states. `binary-check = false` carries them as is.

use std::path::Path;

use crate::bad_input::{no_setup, refused_holding as refused};
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
    let parse = |text: &str| kube_bundle::load::config::parse(Path::new("cluster.toml"), text);
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
        kube_bundle::load::config::parse(Path::new("cluster.toml"), &text)
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
    let err = parse("arch = \"x86_64\"").unwrap_err().to_string();
    assert!(
        err.contains("`cluster.arch`: unknown architecture `x86_64`"),
        "{err}"
    );
}

/// The test inventory carrying `file` as `section`'s binary (`key`), plus `extra`.
fn carrying(section: &str, key: &str, file: &str, extra: &str) -> String {
    let section = match section {
        "etcd" => "[kube-apiserver]\n[etcd]\nversion = \"3.4\"".to_string(),
        other => format!("[{other}]"),
    };
    format!("{INVENTORY}\n{section}\n{key} = \"{file}\"\n{extra}")
}

#[test]
fn binaries_not_of_the_release_for_the_nodes_are_refused_naming_field_and_path() {
    let cases: Vec<(String, Vec<u8>, Vec<&str>)> = vec![
        (
            carrying("kube-scheduler", "binary", "bin/ks", ""),
            b"kube-scheduler, as text\n".to_vec(),
            vec![
                "cluster.toml: `kube-scheduler.binary`: `bin/ks` is a text file, not an ELF executable",
                "hint: point it at the Linux amd64 build of kube-scheduler, or, if you know better, set `binary-check = false` under [kube-scheduler]",
            ],
        ),
        (
            carrying("kube-scheduler", "binary", "bin/ks", ""),
            b"#!/bin/sh\nexec /usr/bin/kube-scheduler \"$@\"\n".to_vec(),
            vec!["`kube-scheduler.binary`: `bin/ks` is a script (it starts with `#!`), not an ELF executable"],
        ),
        (
            carrying("kube-controller-manager", "binary", "bin/kcm", ""),
            stand_in_on(EM_AARCH64, "kube-controller-manager", "1.20.2", b"code"),
            vec![
                "`kube-controller-manager.binary`: `bin/kcm` is an ELF executable for AArch64, but the nodes are amd64: the inventory sets no `cluster.arch`, and amd64 is the default",
                "hint: carry the Linux amd64 build of kube-controller-manager, or set `arch` under [cluster]",
            ],
        ),
        (
            carrying("kube-controller-manager", "binary", "bin/kcm", ""),
            elf_binary(
                EM_X86_64,
                Some("path\tk8s.io/kubernetes/cmd/kube-controller-manager\nbuild\tGOOS=linux\n"),
                // A release string alone, without gitMinor before it, is not the stamp.
                &["v1.20.2"],
                b"code",
            ),
            vec![
                "`kube-controller-manager.binary`: the release of `bin/kcm` cannot be read without running it: it carries no Kubernetes version stamp kube-bundle knows",
                "set `binary-check = false` under [kube-controller-manager]",
            ],
        ),
        (
            carrying("kube-scheduler", "binary", "bin/ks", "")
                .replace("kubernetes-version = \"1.20.2\"", "kubernetes-version = \"1.23.0\""),
            stand_in("kube-scheduler", "1.20.2"),
            vec!["`kube-scheduler.binary`: `bin/ks` is kube-scheduler v1.20.2, but `cluster.kubernetes-version` is 1.23.0"],
        ),
        (
            carrying("kube-scheduler", "binary", "bin/ks", "")
                .replace("kubernetes-version = \"1.20.2\"", "kubernetes-version = \"1.20.3\""),
            stand_in("kube-scheduler", "1.20.2"),
            vec!["`bin/ks` is kube-scheduler v1.20.2, but `cluster.kubernetes-version` is 1.20.3"],
        ),
        (
            carrying("kube-scheduler", "binary", "bin/ks", ""),
            stand_in("kube-controller-manager", "1.20.2"),
            vec!["`kube-scheduler.binary`: `bin/ks` is the Go program `k8s.io/kubernetes/cmd/kube-controller-manager`, not kube-scheduler"],
        ),
        (
            carrying("etcd", "binary", "bin/etcd", "").replace("version = \"3.4\"", "version = \"3.5\""),
            stand_in("etcd", "3.4.23"),
            vec![
                "`etcd.binary`: `bin/etcd` is etcd 3.4.23, but `etcd.version` is 3.5",
                "hint: carry etcd 3.5, or correct `etcd.version`",
            ],
        ),
        (
            carrying("etcd", "etcdctl", "bin/etcd", ""),
            stand_in("etcdctl", "3.5.9"),
            vec!["`etcd.etcdctl`: `bin/etcd` is etcdctl 3.5.9, but `etcd.version` is 3.4"],
        ),
    ];
    for (text, bytes, needles) in cases {
        let file = ["bin/ks", "bin/kcm", "bin/etcd"]
            .into_iter()
            .find(|f| text.contains(&format!("\"{f}\"")))
            .unwrap();
        let project = refused(&text, |p| p.write_binary(file, &bytes), &needles);
        assert!(!project.path("pki").exists(), "{needles:?}: pki/ written");
    }
}

#[test]
fn binary_check_false_carries_a_binary_as_is_but_not_for_another_architecture() {
    let text = carrying(
        "kube-scheduler",
        "binary",
        "bin/ks",
        "binary-check = false\n[kube-controller-manager]\nbinary = \"bin/kcm\"\nbinary-check = false\n",
    );
    let project = Project::new(&text);
    // A wrapper script, and an executable without a version stamp: both carried.
    let script = b"#!/bin/sh\nexec /usr/local/bin/kube-scheduler \"$@\"\n";
    project.write_binary("bin/ks", script);
    let unstamped = elf_binary(EM_X86_64, None, &[], b"kube-controller-manager");
    project.write_binary("bin/kcm", &unstamped);
    project.build_ok();
    let bin = project.unpack("m1").join("rootfs/opt/k8s/bin");
    assert_eq!(std::fs::read(bin.join("kube-scheduler")).unwrap(), script);
    assert_eq!(
        std::fs::read(bin.join("kube-controller-manager")).unwrap(),
        unstamped
    );
    let refused_again = |needle: &str| {
        let out = project.build();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    };
    // An executable for another machine is still refused with the override.
    let arm64 = stand_in_on(EM_AARCH64, "kube-controller-manager", "1.20.2", b"code");
    project.write_binary("bin/kcm", &arm64);
    refused_again("`kube-controller-manager.binary`: `bin/kcm` is an ELF executable for AArch64, but the nodes are amd64");
    // Unless the nodes are arm64; then an x86-64 one is refused, naming `cluster.arch`.
    let arm = text.replace("[cluster]\n", "[cluster]\narch = \"arm64\"\n");
    project.write("cluster.toml", &arm);
    project.build_ok();
    project.write_binary("bin/kcm", &stand_in("kube-controller-manager", "1.20.2"));
    refused_again("`bin/kcm` is an ELF executable for x86-64, but `cluster.arch` is arm64\nhint: carry the Linux arm64 build of kube-controller-manager, or correct `cluster.arch`");
}

/// Debian's etcd and etcdctl (the end-to-end run's), and the Kubernetes v1.20.2 binaries
/// the end-to-end run builds when they are there, pass the check; the same etcd is
/// refused for `version = "3.5"`.
#[test]
fn the_real_binaries_pass() {
    let etcd = tool("etcd");
    let etcdctl = tool("etcdctl");
    let cache = Path::new("/var/cache/kube-bundle/k8s-v1.20.2");
    let mut text = format!(
        "{INVENTORY}\n[etcd]\nversion = \"3.4\"\nbinary = \"{}\"\netcdctl = \"{}\"\n",
        etcd.display(),
        etcdctl.display()
    );
    let mut kube = Vec::new();
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let path = cache.join(name);
        if path.is_file() {
            text.push_str(&format!("[{name}]\nbinary = \"{}\"\n", path.display()));
            kube.push(name);
        }
    }
    if !kube.contains(&"kube-apiserver") {
        text.push_str("[kube-apiserver]\n");
    }
    let project = Project::new(&text);
    let check = |text: &str| {
        project.write("cluster.toml", text);
        let inv = kube_bundle::load::config::load(&project.path("cluster.toml")).unwrap();
        kube_bundle::load::binary::check(&inv)
    };
    check(&text).unwrap_or_else(|e| panic!("{kube:?} and Debian's etcd: {e}"));
    let err = check(&text.replace("version = \"3.4\"", "version = \"3.5\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("`etcd.binary`: `{}` is etcd 3.4.", etcd.display())),
        "{err}"
    );
    if !kube.is_empty() {
        let err = check(&text.replace(
            "kubernetes-version = \"1.20.2\"",
            "kubernetes-version = \"1.21\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("v1.20.2, but `cluster.kubernetes-version` is 1.21"),
            "{err}"
        );
    }
}
