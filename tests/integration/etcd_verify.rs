//! `verify` and `certs` on bundles that carry etcd: the member's unit (its name, listen
//! and advertise URLs on the node IP, its data and WAL folders from manifest.json), its
//! certificates against the bundled etcd CA, and one cluster across the bundles given
//! together (token, etcd CA, initial cluster). Faults are planted with openssl and sed-like
//! edits and repacked with GNU tar and sha256sum (`verify::rewrite`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::apiserver_verify::openssl_sign;
use crate::common::*;
use crate::verify::rewrite;

const ETCD_CERT: &str = "rootfs/etc/kubernetes/cert/etcd.pem";
const ETCD_CLIENT: &str = "rootfs/etc/kubernetes/cert/apiserver-etcd-client.pem";
const ETCD_UNIT: &str = "rootfs/etc/systemd/system/etcd.service";
const ETCD_CA: &str = "rootfs/etc/kubernetes/cert/etcd-ca.pem";

/// Three masters with every component and etcd from a stand-in binary; `pki` and `etcd`
/// are added to those sections.
pub fn project(pki: &str, etcd: &str) -> Project {
    let inventory = format!(
        "{}\n[kube-scheduler]\n[kube-apiserver]\n[etcd]\nversion = \"3.5\"\nbinary = \"fake-etcd\"\n{etcd}",
        INVENTORY
            .replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
            .replace("csr-signing = \"ca\"", &format!("csr-signing = \"signer\"\n{pki}"))
    );
    let project = Project::new(&inventory);
    project.write_binary("fake-etcd", &stand_in("etcd", "3.5.9"));
    project
}

pub fn all(project: &Project) -> Vec<PathBuf> {
    NODES.iter().map(|(n, _)| project.tarball(n)).collect()
}

/// verify's findings, one per line.
pub fn findings(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

pub fn assert_clean(out: &Output, bundles: usize) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
    assert!(
        stderr(out).contains(&format!(
            "{bundles} bundle(s) checked (0 signed), 0 finding(s)"
        )),
        "{}",
        stderr(out)
    );
}

/// Re-signs m1's certificate `stem` (same key) with `subj`, `eku` and `sans` by the CA
/// `pki/<ca>.pem` and puts it into m1's bundle at `in_bundle`.
fn plant(
    project: &Project,
    stem: &str,
    in_bundle: &str,
    subj: &str,
    eku: &str,
    sans: &str,
    ca: &str,
) {
    let cert = openssl_sign(
        &project.path(&format!("openssl-{stem}-{ca}")),
        &project.path(&format!("pki/m1/{stem}-key.pem")),
        subj,
        eku,
        sans,
        &project.path(&format!("pki/{ca}.pem")),
        &project.path(&format!("pki/{ca}-key.pem")),
    );
    rewrite(&project.tarball("m1"), |top| {
        std::fs::copy(&cert, top.join(in_bundle)).unwrap();
    });
}

fn manifest_of(project: &Project, node: &str) -> serde_json::Value {
    let bundle = project.unpack(node);
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

pub fn edit_unit(tarball: &Path, path: &str, change: impl FnOnce(String) -> String) {
    rewrite(tarball, |top| {
        let file = top.join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        let changed = change(text.clone());
        assert_ne!(changed, text, "the edit changed nothing in {path}");
        std::fs::write(&file, changed).unwrap();
    });
}

#[test]
fn fresh_etcd_bundles_verify_clean_with_a_dedicated_or_shared_ca() {
    let dedicated = project("", "");
    dedicated.build_ok();
    assert_clean(&dedicated.verify(&all(&dedicated)), 3);
    // Each bundle alone, too: nothing needs the others.
    assert_clean(&dedicated.verify(&[dedicated.tarball("m2")]), 1);
    // What verify accepts etcd's folders by.
    assert_eq!(
        manifest_of(&dedicated, "m1")["etcd"],
        serde_json::json!({"data-dir": "/data/k8s/etcd/data", "wal-dir": "/data/k8s/etcd/wal"})
    );
    let m1 = dedicated.unpack("m1");
    assert_ne!(
        std::fs::read(m1.join(ETCD_CA)).unwrap(),
        std::fs::read(m1.join("rootfs/etc/kubernetes/cert/ca.pem")).unwrap()
    );

    let shared = project("etcd-ca = \"shared\"", "");
    shared.build_ok();
    assert_clean(&shared.verify(&all(&shared)), 3);
    let m1 = shared.unpack("m1");
    assert_eq!(
        std::fs::read(m1.join(ETCD_CA)).unwrap(),
        std::fs::read(m1.join("rootfs/etc/kubernetes/cert/ca.pem")).unwrap(),
        "with a shared CA, etcd trusts the root CA"
    );
}

#[test]
fn a_member_that_joins_later_verifies_clean_with_the_others_and_alone() {
    let project = project("", "");
    let text = std::fs::read_to_string(project.path("cluster.toml")).unwrap().replace(
        "\n[kube-scheduler]",
        "\n[[nodes]]\nname = \"m4\"\nip = \"127.0.1.4\"\netcd-state = \"existing\"\n\n[kube-scheduler]",
    );
    project.write("cluster.toml", &text);
    project.build_ok();
    let mut bundles = all(&project);
    bundles.push(project.tarball("m4"));
    assert_clean(&project.verify(&bundles), 4);
    assert_clean(&project.verify(&[project.tarball("m1")]), 1);
    // A bootstrapping member that lists the joining one is wrong.
    edit_unit(&project.tarball("m2"), ETCD_UNIT, |t| {
        t.replace(
            "m3=https://127.0.1.3:2380 \\",
            "m3=https://127.0.1.3:2380,m4=https://127.0.1.4:2380 \\",
        )
    });
    let out = project.verify(&bundles);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = findings(&out);
    assert!(
        found.contains(&format!(
            "control-plane-m2.tar.gz: {ETCD_UNIT}: --initial-cluster lists `m4`, which joins the formed cluster later (state `existing` in control-plane-m4.tar.gz)"
        )),
        "{found:#?}"
    );
    assert!(
        found.contains(&format!(
            "control-plane-m2.tar.gz: {ETCD_UNIT}: --initial-cluster differs from control-plane-m1.tar.gz's: the members that bootstrap a cluster must list the same members"
        )),
        "{found:#?}"
    );
}

#[test]
fn etcd_certificates_must_chain_to_the_etcd_ca_and_carry_the_node_ip() {
    let project = project("", "");
    project.build_ok();
    // The member's certificate, signed by the root CA instead of the etcd CA.
    plant(
        &project,
        "etcd",
        ETCD_CERT,
        "/CN=etcd",
        "serverAuth, clientAuth",
        "IP:127.0.0.1,IP:127.0.1.1,DNS:m1",
        "ca",
    );
    let out = project.verify(&[project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        findings(&out),
        [format!(
            "control-plane-m1.tar.gz: {ETCD_CERT}: does not chain to the bundled etcd CA (etcd-ca.pem)"
        )]
    );

    // Signed by the etcd CA, but without the node IP.
    plant(
        &project,
        "etcd",
        ETCD_CERT,
        "/CN=etcd",
        "serverAuth, clientAuth",
        "IP:127.0.0.1,DNS:m1",
        "etcd-ca",
    );
    let out = project.verify(&[project.tarball("m1")]);
    assert_eq!(
        findings(&out),
        [format!(
            "control-plane-m1.tar.gz: {ETCD_CERT}: SANs lack IP:127.0.1.1 (has DNS:m1,IP:127.0.0.1)"
        )]
    );

    // Without the node name, and with the wrong identity.
    plant(
        &project,
        "etcd",
        ETCD_CERT,
        "/CN=etcd/O=system:masters",
        "serverAuth, clientAuth",
        "IP:127.0.0.1,IP:127.0.1.1",
        "etcd-ca",
    );
    let found = findings(&project.verify(&[project.tarball("m1")]));
    assert_eq!(
        found,
        [
            format!("control-plane-m1.tar.gz: {ETCD_CERT}: subject must be CN `etcd` with no O, found CN `etcd` O `system:masters`"),
            format!("control-plane-m1.tar.gz: {ETCD_CERT}: SANs lack DNS:m1 (has IP:127.0.0.1,IP:127.0.1.1)"),
        ]
    );

    // kube-apiserver's client certificate for etcd, signed by the root CA.
    let project = crate::etcd_verify::project("", "");
    project.build_ok();
    plant(
        &project,
        "apiserver-etcd-client",
        ETCD_CLIENT,
        "/CN=kube-apiserver-etcd-client",
        "clientAuth",
        "",
        "ca",
    );
    let found = findings(&project.verify(&[project.tarball("m1")]));
    assert_eq!(
        found,
        [format!(
            "control-plane-m1.tar.gz: {ETCD_CLIENT}: does not chain to the bundled etcd CA (etcd-ca.pem)"
        )]
    );
}

#[test]
fn bundles_of_different_etcd_cas_or_tokens_are_not_one_cluster() {
    let a = project("", "");
    a.build_ok();
    // Another pki/: another etcd CA (and every other CA).
    let b = project("", "");
    b.build_ok();
    let out = a.verify(&[a.tarball("m1"), b.tarball("m2")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = findings(&out);
    assert!(
        found.contains(&format!(
            "control-plane-m2.tar.gz: {ETCD_CA}: the etcd CA differs from control-plane-m1.tar.gz's: every master must share it"
        )),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .all(|f| f.starts_with("control-plane-m2.tar.gz: ")),
        "{found:#?}"
    );

    // The same pki/, another cluster token: only the token differs.
    let c = project("", "cluster-token = \"etcd-cluster-1\"\n");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(a.path("pki"))
            .arg(c.path("pki")),
    );
    c.build_ok();
    let out = a.verify(&[a.tarball("m1"), a.tarball("m2"), c.tarball("m3")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        findings(&out),
        [format!(
            "control-plane-m3.tar.gz: {ETCD_UNIT}: --initial-cluster-token `etcd-cluster-1` differs from `etcd-cluster-0` in control-plane-m1.tar.gz: the members of one cluster share it"
        )]
    );
    // Built together, they agree.
    assert_clean(&c.verify(&all(&c)), 3);
}

#[test]
fn a_unit_whose_initial_cluster_omits_its_node_is_a_finding() {
    let project = project("", "");
    project.build_ok();
    edit_unit(&project.tarball("m2"), ETCD_UNIT, |t| {
        t.replace(",m2=https://127.0.1.2:2380", "")
    });
    let out = project.verify(&all(&project));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = findings(&out);
    assert!(
        found.contains(&format!(
            "control-plane-m2.tar.gz: {ETCD_UNIT}: --initial-cluster does not name this member `m2` (with its peer URL https://127.0.1.2:2380)"
        )),
        "{found:#?}"
    );
    assert!(
        found.contains(&format!(
            "control-plane-m2.tar.gz: {ETCD_UNIT}: --initial-cluster differs from control-plane-m1.tar.gz's: the members that bootstrap a cluster must list the same members"
        )),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .all(|f| f.starts_with("control-plane-m2.tar.gz: ")),
        "{found:#?}"
    );
}

#[test]
fn the_etcd_unit_is_checked_by_its_own_flags_not_bind_address() {
    let project = project("", "");
    project.build_ok();
    // Listening on every address instead of the node IP, another name, another data dir.
    edit_unit(&project.tarball("m1"), ETCD_UNIT, |t| {
        t.replace(
            "--listen-client-urls=https://127.0.1.1:2379",
            "--listen-client-urls=https://0.0.0.0:2379",
        )
        .replace("--name=m1", "--name=m9")
        .replace("--data-dir=/data/k8s/etcd/data", "--data-dir=/var/lib/etcd")
    });
    let found = findings(&project.verify(&[project.tarball("m1")]));
    let unit = |m: &str| format!("control-plane-m1.tar.gz: {ETCD_UNIT}: {m}");
    for want in [
        unit("names `/var/lib/etcd`, which is neither in the bundle nor listed as external"),
        unit("--data-dir is `/var/lib/etcd`, not manifest.json's etcd.data-dir `/data/k8s/etcd/data`"),
        unit("--name is `m9`, not the node name `m1`"),
        unit("--listen-client-urls is `https://0.0.0.0:2379`, which names no https URL on the node IP 127.0.1.1"),
        unit("--initial-cluster does not name this member `m9` (with its peer URL https://127.0.1.1:2380)"),
    ] {
        assert!(found.contains(&want), "{want}\n{found:#?}");
    }
    assert!(
        !found.iter().any(|f| f.contains("bind-address")),
        "{found:#?}"
    );
    // kube-apiserver pointed at a port etcd does not serve.
    let project = crate::etcd_verify::project("", "");
    project.build_ok();
    edit_unit(
        &project.tarball("m1"),
        "rootfs/etc/systemd/system/kube-apiserver.service",
        |t| t.replace("https://127.0.1.2:2379", "https://127.0.1.2:4001"),
    );
    let found = findings(&project.verify(&all(&project)));
    assert_eq!(
        found,
        ["control-plane-m1.tar.gz: rootfs/etc/systemd/system/kube-apiserver.service: --etcd-servers lists https://127.0.1.2:4001, but the member on that host (control-plane-m2.tar.gz) advertises the client URL https://127.0.1.2:2379"]
    );
}

#[test]
fn certs_lists_the_etcd_ca_and_every_nodes_etcd_certificates() {
    let project = project("", "");
    project.build_ok();
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "CERTIFICATE",
            "NODE",
            "EXPIRES",
            "RESIDUAL",
            "TIME",
            "ISSUER",
            "KEY"
        ]
    );
    let ca = rows
        .iter()
        .find(|r| r[0] == "etcd-ca")
        .unwrap_or_else(|| panic!("no etcd-ca row:\n{table}"));
    assert_eq!(ca[1], "-");
    let etcd_issuer = ca[4];
    let root_issuer = rows.iter().find(|r| r[0] == "ca").unwrap()[4];
    assert_ne!(etcd_issuer, root_issuer, "{table}");
    for (node, _) in NODES {
        for name in ["etcd", "apiserver-etcd-client"] {
            let row = rows
                .iter()
                .find(|r| r[0] == name && r[1] == node)
                .unwrap_or_else(|| panic!("no {name} row for {node}:\n{table}"));
            assert_eq!(row.len(), 6, "{row:?}");
            assert_eq!(row[4], etcd_issuer, "{name} on {node}:\n{table}");
            assert_eq!(row[5], "rsa-2048", "{table}");
        }
    }
    // With a shared CA there is no etcd CA of its own, and the root issues etcd's.
    let shared = crate::etcd_verify::project("etcd-ca = \"shared\"", "");
    shared.build_ok();
    let table = stdout(&shared.kube_bundle(&["certs", "-c", "cluster.toml"]));
    assert!(!table.contains("etcd-ca"), "{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let root_issuer = rows.iter().find(|r| r[0] == "ca").unwrap()[4];
    let etcd = rows
        .iter()
        .find(|r| r[0] == "etcd" && r[1] == "m3")
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(etcd[4], root_issuer, "{table}");
}
