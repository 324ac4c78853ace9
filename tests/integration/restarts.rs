//! Restarts only what changed, with `--root` on a whole control plane (the review's part
//! 3): a file restarts only the components that read it, so kube-apiserver's files never
//! restart or snapshot etcd.

use crate::common::*;
use crate::etcd::{data_intact, install, ok, project, read, seed_data};

const BACKUPS: &str = "var/backups/kube-bundle";

/// The review's row 5: an audit policy of its own (a template override) changes one file,
/// which restarts kube-apiserver alone; etcd is neither restarted nor snapshotted. Every
/// file of the bundle restarts exactly the components that read it.
#[test]
fn apiserver_files_restart_only_the_apiserver_and_never_snapshot_etcd() {
    let project = project("");
    project.build_ok();
    let a = project.unpack("m1");
    let script = read(&a.join("install.sh"));
    let table: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("FILE_COMPONENTS["))
        .collect();
    let files = |c: &str| format!("FILE_COMPONENTS[\"/etc/kubernetes/{c}");
    let expected: Vec<String> = [
        ("audit-policy.yaml", "kube-apiserver"),
        ("cert/apiserver-etcd-client-key.pem", "kube-apiserver"),
        ("cert/apiserver-etcd-client.pem", "kube-apiserver"),
        ("cert/ca.pem", "kube-controller-manager,kube-scheduler"),
        ("cert/client-ca.pem", "kube-apiserver"),
        ("cert/csr-signer-key.pem", "kube-controller-manager"),
        ("cert/csr-signer.pem", "kube-controller-manager"),
        ("cert/etcd-ca.pem", "etcd,kube-apiserver"),
        ("cert/etcd-key.pem", "etcd"),
        ("cert/etcd.pem", "etcd"),
        (
            "cert/front-proxy-ca.pem",
            "kube-apiserver,kube-controller-manager,kube-scheduler",
        ),
        ("cert/front-proxy-client-key.pem", "kube-apiserver"),
        ("cert/front-proxy-client.pem", "kube-apiserver"),
        ("cert/kube-apiserver-key.pem", "kube-apiserver"),
        (
            "cert/kube-apiserver-kubelet-client-key.pem",
            "kube-apiserver",
        ),
        ("cert/kube-apiserver-kubelet-client.pem", "kube-apiserver"),
        ("cert/kube-apiserver.pem", "kube-apiserver"),
        (
            "cert/kube-controller-manager-key.pem",
            "kube-controller-manager",
        ),
        (
            "cert/kube-controller-manager.pem",
            "kube-controller-manager",
        ),
        ("cert/kube-scheduler-key.pem", "kube-scheduler"),
        ("cert/kube-scheduler.pem", "kube-scheduler"),
        ("cert/sa.key", "kube-apiserver,kube-controller-manager"),
        ("cert/sa.pub", "kube-apiserver"),
        ("encryption-config.yaml", "kube-apiserver"),
        (
            "kube-controller-manager.kubeconfig",
            "kube-controller-manager",
        ),
        ("kube-scheduler.kubeconfig", "kube-scheduler"),
        ("kube-scheduler.yaml", "kube-scheduler"),
    ]
    .iter()
    .map(|(path, cs)| format!("{}\"]=\"{cs}\"", files(path)))
    .chain(
        [
            ("/etc/systemd/system/etcd.service", "etcd"),
            (
                "/etc/systemd/system/kube-apiserver.service",
                "kube-apiserver",
            ),
            (
                "/etc/systemd/system/kube-controller-manager.service",
                "kube-controller-manager",
            ),
            (
                "/etc/systemd/system/kube-scheduler.service",
                "kube-scheduler",
            ),
            ("/opt/k8s/bin/etcd", "etcd"),
        ]
        .iter()
        .map(|(path, cs)| format!("FILE_COMPONENTS[\"{path}\"]=\"{cs}\"")),
    )
    .collect();
    assert_eq!(table, expected);

    let root = project.path("root");
    let r = root.to_str().unwrap();
    ok(&install(&a, &["--root", r]));
    let data = seed_data(&root);
    let policy = include_str!("../../bundle-templates/audit-policy.yaml.hbs");
    project.write(
        "templates/audit-policy.yaml.hbs",
        &format!("# Reviewed by the security team.\n{policy}"),
    );
    let out = project.build_with(&["--templates", "templates"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(project.path("unpacked-m1")).unwrap();
    let b = project.unpack("m1");

    let dry = ok(&install(&b, &["--root", r, "--dry-run"]));
    let would: Vec<&str> = dry
        .lines()
        .filter_map(|l| l.strip_prefix("install.sh: would install "))
        .collect();
    assert_eq!(
        would,
        ["/etc/kubernetes/audit-policy.yaml (mode 0644)"],
        "{dry}"
    );
    assert!(
        dry.contains(
            "install.sh: units whose files change: kube-apiserver.service (not restarted with --root)\n"
        ),
        "{dry}"
    );
    let out = ok(&install(&b, &["--root", r]));
    assert!(!out.contains("snapshot"), "{out}");
    let snapshots: Vec<String> = std::fs::read_dir(root.join(BACKUPS))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("etcd-snapshot-"))
        .collect();
    assert!(snapshots.is_empty(), "{snapshots:?}");
    assert_eq!(
        read(&root.join("etc/kubernetes/audit-policy.yaml")),
        format!("# Reviewed by the security team.\n{policy}")
    );
    data_intact(&data, "an apiserver-only change");
}
