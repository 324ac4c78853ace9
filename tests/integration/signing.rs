//! `[pki] csr-signing`: which key the controller-manager's CSR signers use. The default
//! signing CA keeps the root CA key on the build host; `ca` is the tutorial's way; `off`
//! leaves the signers out. Checked with openssl and through verify.

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

fn openssl(dir: &std::path::Path, args: &[&str]) -> String {
    run_ok(Command::new(tool("openssl")).args(args).current_dir(dir))
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
    // A CA that may sign leaves only, issued by the root.
    let text = openssl(
        &certs,
        &["x509", "-noout", "-text", "-in", "csr-signer.pem"],
    );
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
    assert!(text.contains("CN = kubernetes-csr-signer"), "{text}");
    openssl(&certs, &["verify", "-CAfile", "ca.pem", "csr-signer.pem"]);

    // kube-apiserver's --client-ca-file: the root, then the signing CA.
    let client_ca = std::fs::read_to_string(project.path("dist/client-ca.pem")).unwrap();
    let expected = std::fs::read_to_string(certs.join("ca.pem")).unwrap()
        + &std::fs::read_to_string(certs.join("csr-signer.pem")).unwrap();
    assert_eq!(client_ca, expected);

    // A kubelet client certificate as the signer issues it: the kubelet presents it
    // alone, so only a client CA file holding the signing CA accepts it.
    let dir = project.path("kubelet");
    std::fs::create_dir(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "kubelet-key.pem",
            "-out",
            "kubelet.csr",
            "-subj",
            "/O=system:nodes/CN=system:node:w1",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "extendedKeyUsage = clientAuth\n").unwrap();
    let signer = certs.join("csr-signer.pem");
    let signer_key = certs.join("csr-signer-key.pem");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "kubelet.csr",
            "-CA",
            signer.to_str().unwrap(),
            "-CAkey",
            signer_key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "kubelet.pem",
        ],
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
    let root_only = Command::new(tool("openssl"))
        .args([
            "verify",
            "-CAfile",
            project.path("dist/ca.pem").to_str().unwrap(),
            "kubelet.pem",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        !root_only.status.success(),
        "the root alone must not accept it"
    );

    // verify is clean and names no root key; certs lists the signing CA.
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
    assert!(!stderr(&out).contains("warning:"), "{}", stderr(&out));
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml"]);
    assert!(stdout(&out).contains("csr-signer"), "{}", stdout(&out));

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
    let out = project.build();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("`pki.csr-signing`")
            && err.contains("`pki.service-account-key = \"ca\"` puts it on every one"),
        "{err}"
    );
    assert!(!project.path("pki").exists());
    // Without csr-signing, tokens signed by the root keep the tutorial's signing too.
    let project =
        Project::new(&inventory(None).replace("[pki]\n", "[pki]\nservice-account-key = \"ca\"\n"));
    project.build_ok();
    assert!(!project.path("pki/csr-signer.pem").exists());
}

#[test]
fn a_tampered_signing_ca_is_found() {
    let project = Project::new(&inventory(None));
    project.build_ok();
    let m1 = project.tarball("m1");
    // The signing CA replaced by a self-signed one, with its key: consistent sums, wrong chain.
    crate::verify::rewrite(&m1, |top| {
        let cert = top.join("rootfs/etc/kubernetes/cert");
        openssl(
            &cert,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "csr-signer-key.pem",
                "-out",
                "csr-signer.pem",
                "-days",
                "30",
                "-subj",
                "/CN=rogue",
            ],
        );
    });
    let out = project.kube_bundle(&["verify", m1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let f = crate::verify::findings(&out);
    assert!(
        f.contains("rootfs/etc/kubernetes/cert/csr-signer.pem: does not chain to the bundled CA"),
        "{f}"
    );
}
