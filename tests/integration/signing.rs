//! `[pki] csr-signing`: which key the controller-manager's CSR signers use. The default
//! signing CA keeps the root CA key on the build host and is its own trust anchor, so
//! what its key mints is refused by everything that trusts the root (openssl, kubectl
//! with the admin kubeconfig, etcd's CA); replacing it makes a new key, trusted beside
//! the old certificate until that is dropped. `ca` is the tutorial's way; `off` leaves
//! the signers out. Checked with openssl, kubectl and through verify.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The test inventory with `csr-signing` set to `mode` (or left to its default).
fn inventory(mode: Option<&str>) -> String {
    let line = "csr-signing = \"ca\"\n";
    assert!(INVENTORY.contains(line));
    match mode {
        None => INVENTORY.replace(line, ""),
        Some(m) => INVENTORY.replace(line, &format!("csr-signing = \"{m}\"\n")),
    }
}

/// Whether `openssl verify` accepts `leaf` with `ca_file` as trust and `untrusted` as
/// the chain it is presented with.
fn verifies(ca_file: &Path, untrusted: Option<&Path>, leaf: &Path) -> bool {
    let mut cmd = openssl_command(&["verify", "-CAfile"]);
    cmd.arg(ca_file);
    if let Some(chain) = untrusted {
        cmd.arg("-untrusted").arg(chain);
    }
    cmd.arg(leaf).output().unwrap().status.success()
}

/// A certificate minted with a CA's key by `openssl x509 -req`, as whoever holds that key
/// could: `<name>.pem` and `<name>-key.pem` in `dir`, with the extensions `ext` (one a
/// line, as in an openssl extension file). Returns the certificate.
fn mint(dir: &Path, name: &str, subject: &str, ext: &str, ca: &Path, ca_key: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let (key, csr, cnf, cert) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.cnf"),
        format!("{name}.pem"),
    );
    std::fs::write(dir.join(&cnf), ext).unwrap();
    openssl(
        dir,
        &[
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            subject,
        ],
    );
    sign_request(dir, &csr, &cnf, ca, ca_key, &cert);
    dir.join(cert)
}

/// `openssl x509 -req`: the request `csr` in `dir` signed with `ca`'s key for a year,
/// with the extensions in the file `ext`, into `out`.
fn sign_request(dir: &Path, csr: &str, ext: &str, ca: &Path, ca_key: &Path, out: &str) {
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-set_serial",
            "0x1234",
            "-days",
            "365",
            "-extfile",
            ext,
            "-out",
            out,
        ],
    );
}

/// A client certificate for the group system:masters, minted with the key of `signer`.
fn mint_masters_client(dir: &Path, name: &str, signer: &Path, signer_key: &Path) -> PathBuf {
    mint(
        dir,
        name,
        "/O=system:masters/CN=evil",
        "extendedKeyUsage = clientAuth\n",
        signer,
        signer_key,
    )
}

fn unit_of(bundle: &std::path::Path) -> String {
    std::fs::read_to_string(
        bundle.join("rootfs/etc/systemd/system/kube-controller-manager.service"),
    )
    .unwrap()
}

#[test]
fn by_default_a_signing_ca_signs_csrs_and_the_root_key_stays_home() {
    let project = Project::new(&inventory(None));
    let log = project.build_ok();
    assert!(log.contains("issued the CSR signing CA"), "{log}");
    assert_eq!(mode_of(&project.path("pki/csr-signer-key.pem")), 0o600);
    let certs = project.path("pki");
    for (node, _) in NODES {
        let bundle = project.unpack(node);
        let cert_dir = bundle.join("rootfs/etc/kubernetes/cert");
        assert!(
            !cert_dir.join("ca-key.pem").exists(),
            "{node} carries the root CA key"
        );
        assert_eq!(
            std::fs::read(cert_dir.join("csr-signer.pem")).unwrap(),
            std::fs::read(certs.join("csr-signer.pem")).unwrap()
        );
        assert_eq!(mode_of(&cert_dir.join("csr-signer-key.pem")), 0o600);
        let unit = unit_of(&bundle);
        assert!(
            unit.contains("--cluster-signing-cert-file=/etc/kubernetes/cert/csr-signer.pem \\\n")
                && unit.contains(
                    "--cluster-signing-key-file=/etc/kubernetes/cert/csr-signer-key.pem \\\n"
                )
                && !unit.contains("ca-key.pem"),
            "{unit}"
        );
    }
    // A CA that may sign leaves only, its own issuer: the root does not vouch for it.
    let text = openssl(
        &certs,
        &["x509", "-noout", "-text", "-in", "csr-signer.pem"],
    );
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
    let subject = openssl(
        &certs,
        &["x509", "-noout", "-subject", "-in", "csr-signer.pem"],
    );
    let issuer = openssl(
        &certs,
        &["x509", "-noout", "-issuer", "-in", "csr-signer.pem"],
    );
    assert!(
        subject.contains(", CN = kubernetes-csr-signer-"),
        "{subject}"
    );
    assert_eq!(
        issuer.strip_prefix("issuer="),
        subject.strip_prefix("subject=")
    );
    let signer = certs.join("csr-signer.pem");
    assert!(verifies(&signer, None, &signer));
    assert!(!verifies(&certs.join("ca.pem"), None, &signer));

    // kube-apiserver's --client-ca-file: the root, then the signing CA.
    let client_ca = std::fs::read_to_string(project.path("dist/client-ca.pem")).unwrap();
    let expected = std::fs::read_to_string(certs.join("ca.pem")).unwrap()
        + &std::fs::read_to_string(certs.join("csr-signer.pem")).unwrap();
    assert_eq!(client_ca, expected);

    // A kubelet client certificate as the signer issues it: the kubelet presents it
    // alone, so only a client CA file holding the signing CA accepts it.
    let dir = project.path("kubelet");
    mint(
        &dir,
        "kubelet",
        "/O=system:nodes/CN=system:node:w1",
        "extendedKeyUsage = clientAuth\n",
        &signer,
        &certs.join("csr-signer-key.pem"),
    );
    let client_ca_path = project.path("dist/client-ca.pem");
    openssl(
        &dir,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            client_ca_path.to_str().unwrap(),
            "kubelet.pem",
        ],
    );
    for chain in [None, Some(signer.as_path())] {
        assert!(
            !verifies(
                &project.path("dist/ca.pem"),
                chain,
                &dir.join("kubelet.pem")
            ),
            "the root must not accept it, presented with {chain:?}"
        );
    }

    // verify is clean and names no root key; certs lists the signing CA.
    assert_verify_clean(&project, None);
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml"]);
    let row = stdout(&out)
        .lines()
        .find(|l| l.starts_with("csr-signer "))
        .map(str::to_string);
    assert!(
        row.as_deref()
            .is_some_and(|r| r.contains(" kubernetes-csr-signer-") && r.contains(" (self-signed) ")),
        "{}",
        stdout(&out)
    );

    // Reused as it is on the next build.
    let before = std::fs::read(certs.join("csr-signer.pem")).unwrap();
    let log = project.build_ok();
    assert!(
        !log.contains("CSR signing CA") && log.contains("no bundle changed"),
        "{log}"
    );
    assert_eq!(std::fs::read(certs.join("csr-signer.pem")).unwrap(), before);
}

#[test]
fn ca_mode_ships_the_root_key_and_verify_says_so() {
    let project = Project::new(&inventory(Some("ca")));
    project.build_ok();
    let bundle = project.unpack("m1");
    assert!(bundle
        .join("rootfs/etc/kubernetes/cert/ca-key.pem")
        .exists());
    assert!(!bundle
        .join("rootfs/etc/kubernetes/cert/csr-signer.pem")
        .exists());
    assert!(!project.path("pki/csr-signer.pem").exists());
    assert!(unit_of(&bundle).contains("--cluster-signing-key-file=/etc/kubernetes/cert/ca-key.pem"));
    assert_eq!(
        std::fs::read(project.path("dist/client-ca.pem")).unwrap(),
        std::fs::read(project.path("dist/ca.pem")).unwrap()
    );
    let out = project.kube_bundle(&["verify", project.tarball("m1").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "a warning, not a finding");
    assert!(
        stderr(&out).contains(
            "warning: control-plane-m1.tar.gz: rootfs/etc/kubernetes/cert/ca-key.pem: is the root CA key"
        ),
        "{}",
        stderr(&out)
    );
    let out = project.kube_bundle(&[
        "verify",
        "--output",
        "json",
        project.tarball("m1").to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn off_leaves_the_signers_out() {
    let project = Project::new(&inventory(Some("off")));
    project.build_ok();
    let bundle = project.unpack("m1");
    let unit = unit_of(&bundle);
    assert!(!unit.contains("cluster-signing"), "{unit}");
    for f in ["ca-key.pem", "csr-signer.pem", "csr-signer-key.pem"] {
        assert!(
            !bundle.join("rootfs/etc/kubernetes/cert").join(f).exists(),
            "{f}"
        );
    }
    let out = project.kube_bundle(&["verify", project.tarball("m1").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_signing_ca_with_tokens_signed_by_the_root_is_refused() {
    let project = Project::new(
        &inventory(Some("signer")).replace("[pki]\n", "[pki]\nservice-account-key = \"ca\"\n"),
    );
    project
        .run_build(&[])
        .status(2)
        .stderr(
            "error: cluster.toml:11:15: `pki.csr-signing`: `signer` keeps the root CA key off the masters, but `pki.service-account-key = \"ca\"` puts it on every one to sign tokens\n\
             hint: use `service-account-key = \"generate\"` (a dedicated token key), or `csr-signing = \"ca\"`\n",
        )
        .check();
    assert!(!project.path("pki").exists());
    // Without csr-signing, tokens signed by the root keep the tutorial's signing too.
    let project =
        Project::new(&inventory(None).replace("[pki]\n", "[pki]\nservice-account-key = \"ca\"\n"));
    project.build_ok();
    assert!(!project.path("pki/csr-signer.pem").exists());
}

#[test]
fn a_signing_ca_issued_by_the_root_or_by_another_ca_is_found() {
    let project = Project::new(&plane_inventory());
    plant_fake_etcd(&project);
    project.build_ok();
    let m1 = project.tarball("m1");
    let pki = project.path("pki");
    // As earlier releases made it: the same key, certified by the root, in client-ca.pem
    // too, so that the sums, the manifest and the client CA bundle are all consistent.
    let legacy = root_issued_signer(&project, &pki.join("csr-signer-key.pem"));
    let client_ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap()
        + &std::fs::read_to_string(&legacy).unwrap();
    crate::verify::rewrite(&m1, |top| {
        let cert = top.join("rootfs/etc/kubernetes/cert");
        std::fs::copy(&legacy, cert.join("csr-signer.pem")).unwrap();
        std::fs::write(cert.join("client-ca.pem"), &client_ca).unwrap();
    });
    let out = project.kube_bundle(&["verify", m1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        crate::verify::findings(&out),
        "control-plane-m1.tar.gz: rootfs/etc/kubernetes/cert/csr-signer.pem: is issued by the bundled CA (ca.pem), so everything that trusts ca.pem (kubeconfigs, etcd, kube-apiserver) accepts what its key signs; build again: the signing CA is replaced by a self-signed one\n"
    );

    // Issued by a CA the bundle does not hold, with a consistent client CA bundle.
    let other = project.path("other");
    std::fs::create_dir(&other).unwrap();
    let (other_ca, other_key) = openssl_self_signed(&other, "ca", "other-ca", "CA:TRUE");
    let signer = mint(
        &other,
        "signer",
        "/CN=kubernetes-csr-signer",
        "basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign\n",
        &other_ca,
        &other_key,
    );
    let client_ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap()
        + &std::fs::read_to_string(&signer).unwrap();
    crate::verify::rewrite(&m1, |top| {
        let cert = top.join("rootfs/etc/kubernetes/cert");
        std::fs::copy(&signer, cert.join("csr-signer.pem")).unwrap();
        std::fs::copy(
            other.join("signer-key.pem"),
            cert.join("csr-signer-key.pem"),
        )
        .unwrap();
        std::fs::write(cert.join("client-ca.pem"), &client_ca).unwrap();
    });
    let out = project.kube_bundle(&["verify", m1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        crate::verify::findings(&out),
        "control-plane-m1.tar.gz: rootfs/etc/kubernetes/cert/csr-signer.pem: is not self-signed: what its key signs would chain to its issuer\n"
    );
}

/// Three masters with the whole control plane, the default signing CA and etcd on the
/// root CA (`etcd-ca = "shared"`), the setting where a root-issued signer reached etcd.
fn plane_inventory() -> String {
    inventory(None)
        .replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
        .replace("[pki]\n", "[pki]\netcd-ca = \"shared\"\n")
        + "\n[kube-scheduler]\n[kube-apiserver]\n[etcd]\nversion = \"3.4\"\nbinary = \"fake-etcd\"\n"
}

fn plant_fake_etcd(project: &Project) {
    project.write_binary("fake-etcd", &stand_in("etcd", "3.4.23"));
}

/// A signing CA for `key` issued by the project's root CA, as kube-bundle made it before
/// it became its own trust anchor: `legacy/csr-signer.pem`.
fn root_issued_signer(project: &Project, key: &Path) -> PathBuf {
    let dir = project.path("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign, digitalSignature\n",
    )
    .unwrap();
    let pki = project.path("pki");
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/C=CN/ST=BeiJing/L=BeiJing/OU=opsnull/CN=kubernetes-csr-signer",
            "-out",
            "csr-signer.csr",
        ],
    );
    sign_request(
        &dir,
        "csr-signer.csr",
        "ext.cnf",
        &pki.join("ca.pem"),
        &pki.join("ca-key.pem"),
        "csr-signer.pem",
    );
    let legacy = dir.join("csr-signer.pem");
    assert!(verifies(&pki.join("ca.pem"), None, &legacy));
    legacy
}

/// Every certificate a bundle holds, in one file: any chain it could be presented with.
fn every_certificate_of(bundle: &Path, out: &Path) -> PathBuf {
    let mut all = String::new();
    for entry in walkdir::WalkDir::new(bundle.join("rootfs")).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text.contains("-----BEGIN CERTIFICATE-----") {
                all.push_str(&text);
            }
        }
    }
    assert!(all.matches("BEGIN CERTIFICATE").count() > 5, "{all}");
    std::fs::write(out, all).unwrap();
    out.to_path_buf()
}

/// The value of `--<flag>=` in a unit.
fn unit_flag(unit: &str, flag: &str) -> String {
    let start = format!("--{flag}=");
    unit.lines()
        .find_map(|l| l.trim().strip_prefix(&start))
        .map_or_else(
            || panic!("no {start} in {unit}"),
            |v| v.trim_end_matches(" \\").to_string(),
        )
}

#[test]
fn what_the_signing_key_mints_is_refused_by_everything_that_trusts_the_root() {
    let project = Project::new(&plane_inventory());
    plant_fake_etcd(&project);
    project.build_ok();
    let pki = project.path("pki");
    let (signer, signer_key) = (pki.join("csr-signer.pem"), pki.join("csr-signer-key.pem"));
    let forged = project.path("forged");
    let client = mint_masters_client(&forged, "evil", &signer, &signer_key);
    let server = mint(
        &forged,
        "apiserver",
        "/CN=kube-apiserver",
        "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\n",
        &signer,
        &signer_key,
    );
    let root = project.path("dist/ca.pem");
    for (node, _) in NODES {
        let bundle = project.unpack(node);
        let cert = bundle.join("rootfs/etc/kubernetes/cert");
        let chain = every_certificate_of(&bundle, &project.path(&format!("chain-{node}.pem")));
        let etcd_unit =
            std::fs::read_to_string(bundle.join("rootfs/etc/systemd/system/etcd.service")).unwrap();
        let etcd_ca = bundle.join(format!(
            "rootfs{}",
            unit_flag(&etcd_unit, "trusted-ca-file")
        ));
        assert_eq!(
            std::fs::read(&etcd_ca).unwrap(),
            std::fs::read(&root).unwrap(),
            "etcd trusts the root CA with etcd-ca = \"shared\""
        );
        for leaf in [&client, &server] {
            for trust in [&root, &cert.join("ca.pem"), &etcd_ca] {
                for untrusted in [None, Some(signer.as_path()), Some(chain.as_path())] {
                    assert!(
                        !verifies(trust, untrusted, leaf),
                        "{node}: {} accepts {} presented with {untrusted:?}",
                        trust.display(),
                        leaf.display()
                    );
                }
            }
        }
        // kube-apiserver's client CA does trust it: the only place the signer is.
        assert!(verifies(&cert.join("client-ca.pem"), None, &client));
        for name in ["ca.pem", "etcd-ca.pem", "front-proxy-ca.pem"] {
            let text = std::fs::read_to_string(cert.join(name)).unwrap();
            assert!(
                !text.contains(std::fs::read_to_string(&signer).unwrap().trim()),
                "{name}"
            );
        }
    }
    let kubeconfig = std::fs::read_to_string(project.path("dist/admin.kubeconfig")).unwrap();
    let signer_b64 = openssl(&pki, &["base64", "-A", "-in", "csr-signer.pem"]);
    assert!(!kubeconfig.contains(signer_b64.trim()));

    // kubectl with the admin kubeconfig refuses a server that presents the forged
    // certificate with the signing CA as its chain, and talks to one the root issued.
    let refused = kubectl_against(
        &project,
        &server,
        &forged.join("apiserver-key.pem"),
        Some(&signer),
    );
    assert!(!refused.status.success(), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("x509: certificate signed by unknown authority"),
        "{}",
        stderr(&refused)
    );
    let genuine = mint(
        &forged,
        "genuine",
        "/CN=kube-apiserver",
        "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\n",
        &pki.join("ca.pem"),
        &pki.join("ca-key.pem"),
    );
    let accepted = kubectl_against(&project, &genuine, &forged.join("genuine-key.pem"), None);
    assert!(
        accepted.status.success() && stdout(&accepted).contains("s_server"),
        "{}{}",
        stdout(&accepted),
        stderr(&accepted)
    );
}

/// `kubectl get --raw /` with dist/admin.kubeconfig against `openssl s_server` on a
/// loopback port, serving `cert` (and `chain` after it).
fn kubectl_against(
    project: &Project,
    cert: &Path,
    key: &Path,
    chain: Option<&Path>,
) -> std::process::Output {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = openssl_command(&["s_server", "-quiet", "-www", "-accept"]);
    server
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(chain) = chain {
        server.arg("-cert_chain").arg(chain);
    }
    let mut server = server.spawn().unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let out = Command::new(tool("kubectl"))
        .arg("--kubeconfig")
        .arg(project.path("dist/admin.kubeconfig"))
        .arg("--server")
        .arg(format!("https://127.0.0.1:{port}"))
        .args(["--request-timeout", "10s", "get", "--raw", "/"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "openssl s_server did not listen on 127.0.0.1:{port}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `kube-bundle verify` of every bundle: no finding, and no warning but, with `previous`
/// (its common name), one a bundle that its client CA also trusts that signing CA.
fn assert_verify_clean(project: &Project, previous: Option<&str>) {
    let tarballs: Vec<String> = NODES
        .iter()
        .map(|(n, _)| project.tarball(n).display().to_string())
        .collect();
    let mut args = vec!["verify"];
    args.extend(tarballs.iter().map(String::as_str));
    let out = project.kube_bundle(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let expected: String = previous
        .map(|cn| {
            NODES
                .iter()
                .map(|(n, _)| format!("warning: control-plane-{n}.tar.gz: rootfs/etc/kubernetes/cert/client-ca.pem: also trusts `{cn}`, the signing CA csr-signer.pem replaced: kube-apiserver accepts what its key signed until a build with `--drop-previous-csr-signer` is installed\n"))
                .collect()
        })
        .unwrap_or_default();
    let warnings: String = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(warnings, expected, "{}", stderr(&out));
}

/// The common name of a certificate file.
fn common_name(cert: &Path) -> String {
    let subject = openssl(
        cert.parent().unwrap(),
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "multiline",
            "-in",
            cert.to_str().unwrap(),
        ],
    );
    subject
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("commonName")
                .map(|v| v.trim_start_matches([' ', '=']).to_string())
        })
        .unwrap_or_else(|| panic!("no common name in {subject}"))
}

#[test]
fn replacing_the_signer_makes_a_new_key_trusted_beside_the_old_until_it_is_dropped() {
    let project = Project::new(&plane_inventory());
    plant_fake_etcd(&project);
    project.build_ok();
    let pki = project.path("pki");
    let (signer, signer_key) = (pki.join("csr-signer.pem"), pki.join("csr-signer-key.pem"));
    let old = project.path("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::copy(&signer, old.join("csr-signer.pem")).unwrap();
    std::fs::copy(&signer_key, old.join("csr-signer-key.pem")).unwrap();
    let old_public = public_key_of(&old.join("csr-signer-key.pem"));
    // What the old key signed: a kubelet's certificate, and a forged admin client.
    let old_kubelet = mint(
        &old,
        "kubelet",
        "/O=system:nodes/CN=system:node:w1",
        "extendedKeyUsage = clientAuth\n",
        &old.join("csr-signer.pem"),
        &old.join("csr-signer-key.pem"),
    );
    let old_evil = mint_masters_client(
        &old,
        "evil",
        &old.join("csr-signer.pem"),
        &old.join("csr-signer-key.pem"),
    );

    let out = project.build_with(&["--replace-csr-signer"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.contains("replaced the CSR signing CA `pki/csr-signer.pem` with a new key: replacement was asked for")
            && log.contains("--drop-previous-csr-signer"),
        "{log}"
    );
    // Every master's bundle changes: its controller-manager signs with the new key and
    // its apiserver trusts both.
    for (node, _) in NODES {
        assert!(
            log.contains(&format!("changed: control-plane-{node}.tar.gz")),
            "{log}"
        );
    }
    let new_public = public_key_of(&signer_key);
    assert_ne!(
        new_public, old_public,
        "a replacement must not keep the key"
    );
    assert_eq!(mode_of(&signer_key), 0o600);
    assert_eq!(
        read(&pki.join("csr-signer-previous.pem")),
        read(&old.join("csr-signer.pem"))
    );
    assert!(!verifies(&pki.join("ca.pem"), None, &signer));
    let client_ca = project.path("dist/client-ca.pem");
    assert_eq!(
        read(&client_ca),
        read(&pki.join("ca.pem")) + &read(&signer) + &read(&old.join("csr-signer.pem"))
    );
    let bundle = project.unpack("m1");
    let cert = bundle.join("rootfs/etc/kubernetes/cert");
    assert_eq!(read(&cert.join("client-ca.pem")), read(&client_ca));
    assert_eq!(read(&cert.join("csr-signer.pem")), read(&signer));
    assert_eq!(public_key_of(&cert.join("csr-signer-key.pem")), new_public);
    let new_kubelet = mint(
        &project.path("new"),
        "kubelet",
        "/O=system:nodes/CN=system:node:w2",
        "extendedKeyUsage = clientAuth\n",
        &signer,
        &signer_key,
    );
    for leaf in [&old_kubelet, &old_evil, &new_kubelet] {
        assert!(
            verifies(&client_ca, None, leaf),
            "during the roll-out both are trusted: {}",
            leaf.display()
        );
    }
    assert_verify_clean(&project, Some(&common_name(&old.join("csr-signer.pem"))));
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml"]);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("csr-signer-previous ") && l.contains(" (self-signed) ")),
        "{}",
        stdout(&out)
    );

    // A second replacement before the first is rolled out is refused, nothing written.
    let before = snapshot(project.dir.path());
    project
        .run_build(&["--replace-csr-signer"])
        .status(2)
        .stderr(
            "error: `pki/csr-signer-previous.pem`: still holds the signing CA replaced before, and this build would replace `pki/csr-signer.pem` (replacement was asked for), which must become the previous one\n\
             hint: finish the roll-out of the last replacement first: once every master runs it and no kubelet certificate of the old signer is in use, build with `--drop-previous-csr-signer` (add `--replace-csr-signer` to replace again in the same build)\n",
        )
        .check();
    assert_eq!(snapshot(project.dir.path()), before);

    // Dropped: only the new signing CA is trusted; what the old key signed is refused.
    let out = project.build_with(&["--drop-previous-csr-signer"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dropped the previous CSR signing CA `pki/csr-signer-previous.pem`"),
        "{}",
        stderr(&out)
    );
    assert!(!pki.join("csr-signer-previous.pem").exists());
    assert_eq!(public_key_of(&signer_key), new_public);
    assert_eq!(read(&client_ca), read(&pki.join("ca.pem")) + &read(&signer));
    assert_eq!(
        read(
            &project
                .unpack("m2")
                .join("rootfs/etc/kubernetes/cert/client-ca.pem")
        ),
        read(&client_ca)
    );
    for leaf in [&old_kubelet, &old_evil] {
        for chain in [None, Some(old.join("csr-signer.pem"))] {
            assert!(
                !verifies(&client_ca, chain.as_deref(), leaf),
                "{} is still trusted (chain {chain:?})",
                leaf.display()
            );
        }
    }
    assert!(verifies(&client_ca, None, &new_kubelet));
    assert_verify_clean(&project, None);
}

#[test]
fn a_signer_certificate_deleted_alone_is_refused_not_certified_again() {
    let project = Project::new(&inventory(None));
    project.build_ok();
    let pki = project.path("pki");
    let old_public = public_key_of(&pki.join("csr-signer-key.pem"));
    std::fs::remove_file(pki.join("csr-signer.pem")).unwrap();
    let before = snapshot(project.dir.path());
    project.run_build(&[]).status(2).stderr(
        "error: `pki/csr-signer.pem`: is missing while its key `pki/csr-signer-key.pem` exists; kube-bundle does not certify that key again, since a new certificate for it would revoke nothing\n\
         hint: restore csr-signer.pem from backup (or from a bundle: rootfs/etc/kubernetes/cert/csr-signer.pem), or replace the signing CA with a new key: `kube-bundle build --replace-csr-signer`\n",
    ).check();
    assert_eq!(snapshot(project.dir.path()), before);

    // Replaced on request: a new key, and no old certificate to keep trusting.
    let out = project.build_with(&["--replace-csr-signer"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("the old certificate is gone, so nothing its key signed stays trusted"),
        "{}",
        stderr(&out)
    );
    assert_ne!(public_key_of(&pki.join("csr-signer-key.pem")), old_public);
    assert!(!pki.join("csr-signer-previous.pem").exists());
    assert_eq!(
        read(&project.path("dist/client-ca.pem")),
        read(&pki.join("ca.pem")) + &read(&pki.join("csr-signer.pem"))
    );

    // A damaged previous signing CA stops the build, and can still be dropped.
    std::fs::write(pki.join("csr-signer-previous.pem"), "damaged\n").unwrap();
    project
        .run_build(&[])
        .status(2)
        .stderr(
            "error: `pki/csr-signer-previous.pem`: holds no CERTIFICATE PEM block\n\
             hint: it holds the signing CA the current one replaced; restore it from backup, or build with `--drop-previous-csr-signer` to stop trusting it\n",
        )
        .check();
    let out = project.build_with(&["--drop-previous-csr-signer"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!pki.join("csr-signer-previous.pem").exists());
}

#[test]
fn signer_changes_without_a_signing_ca_are_refused() {
    let project = Project::new(&inventory(Some("ca")));
    for flag in ["--replace-csr-signer", "--drop-previous-csr-signer"] {
        project
            .run_build(&[flag])
            .status(2)
            .stderr(&format!(
                "error: {flag}: `cluster.toml` has no CSR signing CA (`pki.csr-signing = \"ca\"`)\n\
                 hint: a signing CA exists with `[pki] csr-signing = \"signer\"` (the default) and kube-controller-manager\n"
            ))
            .check();
        assert!(!project.path("pki/ca.pem").exists());
    }
}

#[test]
fn a_root_issued_signer_of_an_earlier_release_is_replaced_with_a_warning() {
    let project = Project::new(&plane_inventory());
    plant_fake_etcd(&project);
    project.build_ok();
    let pki = project.path("pki");
    let legacy = root_issued_signer(&project, &pki.join("csr-signer-key.pem"));
    std::fs::copy(&legacy, pki.join("csr-signer.pem")).unwrap();
    std::fs::copy(
        pki.join("csr-signer-key.pem"),
        project.path("legacy/old-key.pem"),
    )
    .unwrap();
    let old_public = public_key_of(&pki.join("csr-signer-key.pem"));

    let out = project.build_with(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The warning shows even with -q: the old key stays trusted by root-only trusters.
    assert!(
        stderr(&out).starts_with("warning: the CSR signing CA `pki/csr-signer.pem` is issued by `kubernetes-ca` (as earlier kube-bundle releases made it): it is replaced by a self-signed one with a new key. Until `kubernetes-ca` itself is replaced, the old key"),
        "{}",
        stderr(&out)
    );
    let signer = pki.join("csr-signer.pem");
    assert_ne!(public_key_of(&pki.join("csr-signer-key.pem")), old_public);
    assert!(verifies(&signer, None, &signer), "self-signed now");
    assert!(!verifies(&pki.join("ca.pem"), None, &signer));
    assert_eq!(read(&pki.join("csr-signer-previous.pem")), read(&legacy));
    assert_eq!(
        read(&project.path("dist/client-ca.pem")),
        read(&pki.join("ca.pem")) + &read(&signer) + &read(&legacy)
    );
    assert_verify_clean(&project, Some("kubernetes-csr-signer"));
    // Reused as it is from now on.
    let log = project.build_ok();
    assert!(
        log.contains("no bundle changed") && !log.contains("CSR signing CA"),
        "{log}"
    );

    // Dropping it ends its place in client-ca.pem, not the root's trust in it: what the
    // old key mints, presented with the old certificate, still chains to the root.
    let out = project.build_with(&["--drop-previous-csr-signer"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: dropped the previous CSR signing CA `pki/csr-signer-previous.pem`, but it was issued by `kubernetes-ca`"),
        "{}",
        stderr(&out)
    );
    let old_key = project.path("legacy/old-key.pem");
    let evil = mint_masters_client(&project.path("legacy"), "evil", &legacy, &old_key);
    let client_ca = project.path("dist/client-ca.pem");
    assert!(!verifies(&client_ca, None, &evil));
    assert!(verifies(&client_ca, Some(&legacy), &evil));
}

/// A self-signed CA made by openssl as `csr-signer-next{,-key}.pem`: what a build that
/// died while putting a new signing CA in place left.
fn plant_next_signer(pki: &Path) -> (String, String) {
    let (cert, key) = openssl_self_signed(pki, "csr-signer-next", "next-signer", "CA:TRUE");
    (read(&cert), public_key_of(&key))
}

#[test]
fn an_interrupted_replacement_is_finished_or_undone_by_the_next_build() {
    let project = Project::new(&inventory(None));
    project.build_ok();
    let pki = project.path("pki");
    let current = read(&pki.join("csr-signer.pem"));

    // Died after writing the new key and the previous certificate, before the new
    // certificate: undone, the signing CA is what it was.
    std::fs::copy(pki.join("csr-signer-key.pem"), project.path("key-before")).unwrap();
    std::fs::write(pki.join("csr-signer-previous.pem"), &current).unwrap();
    plant_next_signer(&pki);
    std::fs::remove_file(pki.join("csr-signer-next.pem")).unwrap();
    let log = project.build_ok();
    assert!(log.contains("no bundle changed"), "{log}");
    for gone in ["csr-signer-next-key.pem", "csr-signer-previous.pem"] {
        assert!(!pki.join(gone).exists(), "{gone}");
    }
    assert_eq!(read(&pki.join("csr-signer.pem")), current);

    // Died once the new certificate was written (before, then after moving its key):
    // finished, and the old certificate stays the previous one.
    for key_moved in [false, true] {
        let current = read(&pki.join("csr-signer.pem"));
        std::fs::write(pki.join("csr-signer-previous.pem"), &current).unwrap();
        let (next_cert, next_public) = plant_next_signer(&pki);
        if key_moved {
            std::fs::rename(
                pki.join("csr-signer-next-key.pem"),
                pki.join("csr-signer-key.pem"),
            )
            .unwrap();
        }
        let log = project.build_ok();
        assert!(
            log.contains("finished putting in place the new CSR signing CA `pki/csr-signer.pem` that an interrupted build made"),
            "{log}"
        );
        assert_eq!(read(&pki.join("csr-signer.pem")), next_cert);
        assert_eq!(public_key_of(&pki.join("csr-signer-key.pem")), next_public);
        assert_eq!(mode_of(&pki.join("csr-signer-key.pem")), 0o600);
        assert_eq!(read(&pki.join("csr-signer-previous.pem")), current);
        for gone in ["csr-signer-next.pem", "csr-signer-next-key.pem"] {
            assert!(!pki.join(gone).exists(), "{gone}");
        }
        std::fs::remove_file(pki.join("csr-signer-previous.pem")).unwrap();
    }
}

#[test]
fn a_client_ca_bundle_trusting_more_than_the_previous_signing_ca_is_found() {
    let project = Project::new(&plane_inventory());
    plant_fake_etcd(&project);
    project.build_ok();
    let m1 = project.tarball("m1");
    let extra = project.path("extra");
    std::fs::create_dir(&extra).unwrap();
    let (one, _) = openssl_self_signed(&extra, "one", "one", "CA:TRUE");
    let (two, _) = openssl_self_signed(&extra, "two", "two", "CA:TRUE");
    let (leaf, _) = openssl_self_signed(&extra, "leaf", "leaf", "CA:FALSE");
    let bundle = read(&project.path("dist/client-ca.pem"));
    for added in [vec![&one, &two], vec![&leaf]] {
        let text = added
            .iter()
            .fold(bundle.clone(), |all, cert| all + &read(cert));
        crate::verify::rewrite(&m1, |top| {
            std::fs::write(top.join("rootfs/etc/kubernetes/cert/client-ca.pem"), &text).unwrap();
        });
        let out = project.kube_bundle(&["verify", m1.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            crate::verify::findings(&out),
            "control-plane-m1.tar.gz: rootfs/etc/kubernetes/cert/client-ca.pem: must hold ca.pem, then csr-signer.pem, then at most the signing CA it replaced, and nothing else\n"
        );
    }
}
