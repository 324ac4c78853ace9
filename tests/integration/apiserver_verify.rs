//! `verify`, `certs` and `build --renew` on bundles that carry kube-apiserver: every
//! certificate checked by its spec, the serving certificate's names rebuilt from
//! manifest.json, the front-proxy chain, and what every master must share. Faults are
//! planted with openssl and repacked with GNU tar and sha256sum (`verify::rewrite`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::verify::rewrite;

const SERVING: &str = "rootfs/etc/kubernetes/cert/kube-apiserver.pem";
const FRONT_PROXY_CLIENT: &str = "rootfs/etc/kubernetes/cert/front-proxy-client.pem";
const ENCRYPTION: &str = "rootfs/etc/kubernetes/encryption-config.yaml";

/// Every name m1's serving certificate carries with the inventory below.
const M1_SANS: [&str; 10] = [
    "IP:127.0.0.1",
    "IP:127.0.1.1",
    "DNS:m1",
    "DNS:lb.example.com",
    "IP:10.0.0.100",
    "IP:10.254.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
];

/// The test inventory with kube-apiserver: extra names and an https etcd whose CA and
/// client pair openssl makes beside the inventory.
fn apiserver_project() -> Project {
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-scheduler]\n\n[kube-apiserver]\n\
         extra-sans = [\"lb.example.com\", \"10.0.0.100\"]\n\
         etcd-servers = [\"https://127.0.2.1:2379\"]\n\
         etcd-ca = \"etcd/ca.pem\"\netcd-cert = \"etcd/client.pem\"\netcd-key = \"etcd/client-key.pem\"\n"
    ));
    let dir = project.path("etcd");
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=etcd-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    std::fs::write(
        dir.join("client.cnf"),
        "[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=kube-apiserver-etcd-client",
            "-keyout",
            "client-key.pem",
            "-out",
            "client.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-set_serial",
            "4660",
            "-days",
            "365",
            "-extfile",
            "client.cnf",
            "-extensions",
            "ext",
            "-out",
            "client.pem",
        ],
    );
    project
}

/// openssl's signature over a new certificate for the key `key`: subject `subj`,
/// extended key usage `eku`, SANs `sans` (none when empty), issued by `ca`/`ca_key`.
pub fn openssl_sign(
    dir: &Path,
    key: &Path,
    subj: &str,
    eku: &str,
    sans: &str,
    ca: &Path,
    ca_key: &Path,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut ext = format!(
        "[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = {eku}\n"
    );
    if !sans.is_empty() {
        ext.push_str(&format!("subjectAltName = {sans}\n"));
    }
    std::fs::write(dir.join("leaf.cnf"), ext).unwrap();
    let (csr, out) = (dir.join("leaf.csr"), dir.join("leaf.pem"));
    run_ok(
        openssl_command(&["req", "-new", "-subj", subj, "-key"])
            .arg(key)
            .arg("-out")
            .arg(&csr),
    );
    run_ok(
        openssl_command(&["x509", "-req", "-set_serial", "48879", "-days", "365"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(ca)
            .arg("-CAkey")
            .arg(ca_key)
            .arg("-extfile")
            .arg(dir.join("leaf.cnf"))
            .args(["-extensions", "ext", "-out"])
            .arg(&out),
    );
    out
}

/// Re-signs m1's serving certificate with openssl (same key, root CA) carrying `sans`,
/// and puts it into m1's bundle.
fn plant_serving(project: &Project, sans: &[&str]) {
    let sans = sans.join(",");
    let cert = openssl_sign(
        &project.path("openssl-serving"),
        &project.path("pki/m1/kube-apiserver-key.pem"),
        "/CN=kube-apiserver",
        "serverAuth",
        &sans,
        &project.path("pki/ca.pem"),
        &project.path("pki/ca-key.pem"),
    );
    rewrite(&project.tarball("m1"), |top| {
        std::fs::copy(&cert, top.join(SERVING)).unwrap();
    });
}

/// Re-signs m1's front-proxy client certificate with openssl (same key) by `ca`.
fn plant_front_proxy_client(project: &Project, ca: &str) {
    let cert = openssl_sign(
        &project.path(&format!("openssl-fp-{ca}")),
        &project.path("pki/m1/front-proxy-client-key.pem"),
        "/CN=front-proxy-client",
        "clientAuth",
        "",
        &project.path(&format!("pki/{ca}.pem")),
        &project.path(&format!("pki/{ca}-key.pem")),
    );
    rewrite(&project.tarball("m1"), |top| {
        std::fs::copy(&cert, top.join(FRONT_PROXY_CLIENT)).unwrap();
    });
}

fn manifest_of(project: &Project, node: &str) -> serde_json::Value {
    let bundle = project.unpack(node);
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn fresh_apiserver_bundles_verify_clean() {
    let project = apiserver_project();
    project.build_ok();
    let all: Vec<PathBuf> = NODES.iter().map(|(n, _)| project.tarball(n)).collect();
    let out = project.verify(&all.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("3 bundle(s) checked (0 signed), 0 finding(s)"),
        "{}",
        stderr(&out)
    );
    // What verify rebuilds the serving names from, and the files it checked.
    let manifest = manifest_of(&project, "m2");
    assert_eq!(
        manifest["apiserver"],
        serde_json::json!({
            "service-ip": "10.254.0.1",
            "dns-domain": "cluster.local",
            "extra-sans": ["lb.example.com", "10.0.0.100"],
        })
    );
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for want in [
        SERVING,
        FRONT_PROXY_CLIENT,
        "rootfs/etc/kubernetes/cert/kube-apiserver-kubelet-client.pem",
        "rootfs/etc/kubernetes/cert/front-proxy-ca.pem",
        "rootfs/etc/kubernetes/cert/apiserver-etcd-client-key.pem",
        ENCRYPTION,
    ] {
        assert!(files.contains(&want), "{want} not in {files:?}");
    }
    assert!(!files
        .iter()
        .any(|f| f.ends_with("kube-apiserver.kubeconfig")));
    // The unit writes its audit log under its working directory, which verify accepts.
    let unit = std::fs::read_to_string(
        project
            .unpack("m1")
            .join("rootfs/etc/systemd/system/kube-apiserver.service"),
    )
    .unwrap();
    assert!(
        unit.contains("--audit-log-path=/data/k8s/k8s/kube-apiserver/"),
        "{unit}"
    );

    // A bundle without kube-apiserver has no `apiserver` object at all.
    let plain = Project::new(INVENTORY);
    plain.build_ok();
    assert!(manifest_of(&plain, "m1").get("apiserver").is_none());
}

#[test]
fn a_serving_cert_missing_a_service_name_is_found() {
    let project = apiserver_project();
    project.build_ok();
    // openssl's certificate with every name passes: the fixture path is sound.
    plant_serving(&project, &M1_SANS);
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    plant_serving(&project, &M1_SANS[..9]);
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(1));
    let f = stdout(&out);
    let lines: Vec<&str> = f.lines().collect();
    assert_eq!(lines.len(), 1, "{f}");
    assert!(
        lines[0].starts_with(&format!(
            "control-plane-m1.tar.gz: {SERVING}: SANs lack DNS:kubernetes.default.svc.cluster.local (has "
        )),
        "{f}"
    );
}

#[test]
fn a_serving_name_with_a_trailing_dot_is_found() {
    let project = apiserver_project();
    project.build_ok();
    let mut sans = M1_SANS.to_vec();
    sans[9] = "DNS:kubernetes.default.svc.cluster.local.";
    plant_serving(&project, &sans);
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(1));
    let f = stdout(&out);
    assert!(
        f.contains(&format!(
            "{SERVING}: SAN DNS:kubernetes.default.svc.cluster.local. ends with a dot"
        )),
        "{f}"
    );
    assert!(
        f.contains(&format!(
            "{SERVING}: SANs lack DNS:kubernetes.default.svc.cluster.local (has"
        )),
        "{f}"
    );
    assert_eq!(f.lines().count(), 2, "{f}");
}

#[test]
fn a_serving_cert_with_client_usage_or_an_org_is_found() {
    let project = apiserver_project();
    project.build_ok();
    let sans = M1_SANS.join(",");
    let cert = openssl_sign(
        &project.path("openssl-eku"),
        &project.path("pki/m1/kube-apiserver-key.pem"),
        "/O=system:masters/CN=kube-apiserver",
        "serverAuth, clientAuth",
        &sans,
        &project.path("pki/ca.pem"),
        &project.path("pki/ca-key.pem"),
    );
    rewrite(&project.tarball("m1"), |top| {
        std::fs::copy(&cert, top.join(SERVING)).unwrap();
    });
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(
        stdout(&out),
        format!(
            "control-plane-m1.tar.gz: {SERVING}: subject must be CN `kube-apiserver` with no O, found CN `kube-apiserver` O `system:masters`\n\
             control-plane-m1.tar.gz: {SERVING}: extended key usage must be exactly serverAuth\n"
        )
    );
}

#[test]
fn a_front_proxy_client_signed_by_the_root_ca_is_found() {
    let project = apiserver_project();
    project.build_ok();
    // Signed by the front-proxy CA, openssl's certificate passes.
    plant_front_proxy_client(&project, "front-proxy-ca");
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    plant_front_proxy_client(&project, "ca");
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "control-plane-m1.tar.gz: {FRONT_PROXY_CLIENT}: does not chain to the bundled front-proxy CA (front-proxy-ca.pem)\n"
        )
    );
}

#[test]
fn apiserver_bundles_from_different_pki_are_found() {
    let a = apiserver_project();
    a.build_ok();
    let b = apiserver_project();
    b.build_ok();
    let out = a.verify(&[&a.tarball("m1"), &b.tarball("m2")]);
    assert_eq!(out.status.code(), Some(1));
    let f = stdout(&out);
    for (file, what) in [
        ("cert/ca.pem", "CA"),
        ("cert/sa.key", "service-account key"),
        ("cert/front-proxy-ca.pem", "front-proxy CA"),
        ("cert/client-ca.pem", "client CA bundle"),
        ("encryption-config.yaml", "encryption config"),
    ] {
        assert!(
            f.contains(&format!(
                "control-plane-m2.tar.gz: rootfs/etc/kubernetes/{file}: the {what} differs from control-plane-m1.tar.gz's: every master must share it"
            )),
            "{file}: {f}"
        );
    }

    // The same pki/ but another encryption key: only the encryption config differs.
    let c = apiserver_project();
    for dir in ["pki", "etcd"] {
        std::fs::remove_dir_all(c.path(dir)).ok();
        run_ok(
            Command::new(tool("cp"))
                .arg("-a")
                .arg(a.path(dir))
                .arg(c.path(dir)),
        );
    }
    std::fs::write(
        c.path("pki/encryption-key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    c.build_ok();
    let out = a.verify(&[&a.tarball("m1"), &c.tarball("m2")]);
    assert_eq!(
        stdout(&out),
        format!(
            "control-plane-m2.tar.gz: {ENCRYPTION}: the encryption config differs from control-plane-m1.tar.gz's: every master must share it\n"
        )
    );
}

#[test]
fn an_encryption_key_of_the_wrong_length_is_found() {
    let project = apiserver_project();
    project.build_ok();
    rewrite(&project.tarball("m1"), |top| {
        let path = top.join(ENCRYPTION);
        let text = std::fs::read_to_string(&path).unwrap();
        let key = std::fs::read_to_string(project.path("pki/encryption-key")).unwrap();
        assert!(text.contains(key.trim()), "{text}");
        // 16 bytes: an AES-128 key, not the 32 bytes kube-bundle makes.
        std::fs::write(&path, text.replace(key.trim(), "AAECAwQFBgcICQoLDA0ODw==")).unwrap();
    });
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(
        stdout(&out),
        format!(
            "control-plane-m1.tar.gz: {ENCRYPTION}: resources[0].providers[0].aescbc.keys[0].secret decodes to 16 bytes; an aescbc key here is 32\n"
        )
    );
}

#[test]
fn certs_lists_every_apiserver_certificate() {
    let project = apiserver_project();
    project.build_ok();
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(String, String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["node"].as_str().unwrap_or("-").to_string(),
                r["issuer"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let row = |name: &str, node: &str| {
        rows.iter()
            .find(|r| r.0 == name && r.1 == node)
            .unwrap_or_else(|| panic!("no row {name} {node} in {rows:?}"))
            .2
            .clone()
    };
    assert_eq!(row("front-proxy-ca", "-"), "kubernetes-front-proxy-ca");
    assert_eq!(row("admin", "-"), "kubernetes-ca");
    for (node, _) in NODES {
        assert_eq!(row("kube-apiserver", node), "kubernetes-ca");
        assert_eq!(row("kube-apiserver-kubelet-client", node), "kubernetes-ca");
        assert_eq!(row("front-proxy-client", node), "kubernetes-front-proxy-ca");
        assert_eq!(row("kube-controller-manager", node), "kubernetes-ca");
        assert_eq!(row("kube-scheduler", node), "kubernetes-ca");
    }
    // ca, service-account key, front-proxy CA, admin, and five per node.
    assert_eq!(rows.len(), 4 + 5 * NODES.len(), "{rows:?}");
    let table = stdout(&project.kube_bundle(&["certs", "-c", "cluster.toml"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("front-proxy-client ") && l.contains(" m3 ")),
        "{table}"
    );
}

#[test]
fn renewing_kube_apiserver_reissues_all_its_certificates_on_the_node() {
    let project = apiserver_project();
    project.build_ok();
    let cert = |node: &str, name: &str| project.path(&format!("pki/{node}/{name}.pem"));
    let ours = [
        "kube-apiserver",
        "kube-apiserver-kubelet-client",
        "front-proxy-client",
    ];
    let before: Vec<String> = ours.iter().map(|n| serial_of(&cert("m1", n))).collect();
    let others = [
        cert("m1", "kube-controller-manager"),
        cert("m1", "kube-scheduler"),
        cert("m2", "kube-apiserver"),
        cert("m2", "front-proxy-client"),
        project.path("pki/admin.pem"),
    ];
    let others_before: Vec<String> = others.iter().map(|p| serial_of(p)).collect();
    let out = project.build_with(&["--renew", "m1", "--component", "kube-apiserver"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    for (name, old) in ours.iter().zip(&before) {
        assert!(
            log.contains(&format!(
                "m1: reissued the {name} certificate: renewal was asked for"
            )),
            "{log}"
        );
        assert_ne!(&serial_of(&cert("m1", name)), old, "{name}");
    }
    let others_after: Vec<String> = others.iter().map(|p| serial_of(p)).collect();
    assert_eq!(others_after, others_before);
    // The renewed certificates still pass verify, the front-proxy one under its own CA.
    let all: Vec<PathBuf> = NODES.iter().map(|(n, _)| project.tarball(n)).collect();
    let out = project.verify(&all.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn unit_paths_may_lie_under_the_work_dir_only() {
    let project = apiserver_project();
    project.build_ok();
    let unit = "rootfs/etc/systemd/system/kube-apiserver.service";
    rewrite(&project.tarball("m1"), |top| {
        let path = top.join(unit);
        let text = std::fs::read_to_string(&path).unwrap();
        let escaped = text.replace(
            "--audit-log-path=/data/k8s/k8s/kube-apiserver/audit.log",
            "--audit-log-path=/data/k8s/k8s/kube-apiserver/../kube-scheduler/audit.log",
        );
        assert_ne!(escaped, text);
        std::fs::write(&path, escaped).unwrap();
    });
    let out = project.verify(&[&project.tarball("m1")]);
    assert_eq!(
        stdout(&out),
        format!(
            "control-plane-m1.tar.gz: {unit}: names `/data/k8s/k8s/kube-apiserver/../kube-scheduler/audit.log`, which is neither in the bundle nor listed as external\n"
        )
    );
}
