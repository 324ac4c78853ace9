//! Certificates, checked by openssl the way an operator would: chain, subject, SANs, key
//! usages; and imported CAs made by cfssl (PKCS#1 RSA key) and by openssl (EC key).

use std::process::Command;

use crate::common::*;

fn text_of(cert: &std::path::Path) -> String {
    openssl(
        cert.parent().unwrap(),
        &["x509", "-noout", "-text", "-in", name_of(cert)],
    )
}

fn name_of(path: &std::path::Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

fn assert_leaf(project: &Project, ca: &std::path::Path, node: &str, ip: &str) {
    let leaf = project.path(&format!("pki/{node}/kube-controller-manager.pem"));
    let dir = leaf.parent().unwrap();
    for purpose in ["sslserver", "sslclient"] {
        let verified = openssl(
            dir,
            &[
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                ca.to_str().unwrap(),
                name_of(&leaf),
            ],
        );
        assert_eq!(verified, "kube-controller-manager.pem: OK\n", "{purpose}");
    }
    let text = text_of(&leaf);
    let subject = openssl(
        dir,
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            name_of(&leaf),
        ],
    );
    assert_eq!(
        subject.trim(),
        "subject=CN=system:kube-controller-manager,OU=opsnull,O=system:kube-controller-manager,L=BeiJing,ST=BeiJing,C=CN"
    );
    let sans = text
        .lines()
        .skip_while(|l| !l.contains("Subject Alternative Name"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let mut got: Vec<&str> = sans.split(", ").collect();
    got.sort();
    let mut want = [
        "IP Address:127.0.0.1".to_string(),
        format!("IP Address:{ip}"),
        format!("DNS:{node}"),
    ];
    want.sort();
    assert_eq!(
        got,
        want.iter().map(String::as_str).collect::<Vec<_>>(),
        "{node} SANs"
    );
    assert!(
        text.contains("Digital Signature, Key Encipherment"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
}

#[test]
fn generated_ca_and_leaves_pass_openssl() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let ca = project.path("pki/ca.pem");
    let text = text_of(&ca);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    // notBefore is backdated for clock skew.
    let start = openssl(
        project.dir.path(),
        &["x509", "-noout", "-startdate", "-in", "pki/ca.pem"],
    );
    let epoch = run_ok(Command::new(tool("date")).args([
        "-u",
        "+%s",
        "-d",
        start.trim().trim_start_matches("notBefore="),
    ]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let backdated = now - epoch.trim().parse::<u64>().unwrap();
    assert!(
        (240..3600).contains(&backdated),
        "CA notBefore is {backdated}s in the past"
    );
    for (node, ip) in NODES {
        assert_leaf(&project, &ca, node, ip);
    }
    // Private keys never readable by others, on disk.
    assert_eq!(mode_of(&project.path("pki")), 0o700);
    for key in [
        "pki/ca-key.pem",
        "pki/sa.key",
        "pki/m1/kube-controller-manager-key.pem",
    ] {
        assert_eq!(mode_of(&project.path(key)), 0o600, "{key}");
    }
}

#[test]
fn cfssl_ca_with_pkcs1_key_is_imported() {
    let project = Project::new(&INVENTORY.replace(
        "[pki]\n",
        "[pki]\nca-cert = \"ca/ca.pem\"\nca-key = \"ca/ca-key.pem\"\n",
    ));
    let ca_dir = project.path("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::write(
        ca_dir.join("ca-csr.json"),
        r#"{"CN":"kubernetes-ca","key":{"algo":"rsa","size":2048},"names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"k8s","OU":"opsnull"}],"ca":{"expiry":"876000h"}}"#,
    )
    .unwrap();
    let json = run_ok(
        Command::new(tool("cfssl"))
            .args(["gencert", "-initca", "ca-csr.json"])
            .current_dir(&ca_dir),
    );
    let mut child = Command::new(tool("cfssljson"))
        .args(["-bare", "ca"])
        .current_dir(&ca_dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), json.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let key = std::fs::read_to_string(ca_dir.join("ca-key.pem")).unwrap();
    assert!(
        key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "cfssl writes PKCS#1: {key:.40}"
    );

    project.build_ok();
    assert!(
        !project.path("pki/ca.pem").exists(),
        "an imported CA is not copied into pki/"
    );
    for (node, ip) in NODES {
        assert_leaf(&project, &ca_dir.join("ca.pem"), node, ip);
    }
    let bundle = project.unpack("m1");
    assert_eq!(
        std::fs::read(bundle.join("rootfs/etc/kubernetes/cert/ca.pem")).unwrap(),
        std::fs::read(ca_dir.join("ca.pem")).unwrap()
    );
    // The leaf's AKI is the cfssl CA's own SKI.
    let ski = openssl(
        project.dir.path(),
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
            "-in",
            "ca/ca.pem",
        ],
    );
    let aki = openssl(
        project.dir.path(),
        &[
            "x509",
            "-noout",
            "-ext",
            "authorityKeyIdentifier",
            "-in",
            "pki/m1/kube-controller-manager.pem",
        ],
    );
    let ski_value = ski.lines().nth(1).unwrap().trim();
    assert!(aki.contains(ski_value), "AKI {aki} vs SKI {ski_value}");
}

#[test]
fn ec_ca_made_by_openssl_is_imported() {
    let project = Project::new(&INVENTORY.replace(
        "[pki]\n",
        "[pki]\nca-cert = \"ec-ca.pem\"\nca-key = \"ec-ca-key.pem\"\nkey-algorithm = \"ecdsa-p256\"\n",
    ));
    openssl(
        project.dir.path(),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec-ca-key.pem",
        ],
    );
    openssl(
        project.dir.path(),
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ec-ca-key.pem",
            "-subj",
            "/CN=ec-ca",
            "-days",
            "3650",
            "-out",
            "ec-ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    assert!(std::fs::read_to_string(project.path("ec-ca-key.pem"))
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    project.build_ok();
    for (node, ip) in NODES {
        assert_leaf(&project, &project.path("ec-ca.pem"), node, ip);
    }
    let text = text_of(&project.path("pki/m1/kube-controller-manager.pem"));
    assert!(
        text.contains("id-ecPublicKey") && text.contains("ecdsa-with-SHA256"),
        "{text}"
    );
}

#[test]
fn state_is_reused_and_changed_leaves_are_reissued() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let before: Vec<String> = NODES
        .iter()
        .map(|(n, _)| sha256_file(&project.tarball(n)))
        .collect();
    let ca_before = sha256_file(&project.path("pki/ca.pem"));

    let log = project.build_ok();
    assert!(
        !log.contains("issued") && !log.contains("generated"),
        "a rebuild changes nothing: {log}"
    );
    let again: Vec<String> = NODES
        .iter()
        .map(|(n, _)| sha256_file(&project.tarball(n)))
        .collect();
    assert_eq!(before, again);

    // m2 moves to a new IP and a fourth master joins: m2 is reissued and says why, m4 is
    // issued, and m1's and m3's bundles stay byte for byte the same.
    project.write(
        "cluster.toml",
        &(INVENTORY.replace("127.0.1.2", "127.0.1.22")
            + "\n[[nodes]]\nname = \"m4\"\nip = \"127.0.1.4\"\n"),
    );
    let log = project.build_ok();
    assert!(
        log.contains("m2: reissued the kube-controller-manager certificate: its SANs changed"),
        "{log}"
    );
    assert!(log.contains("m4: issued"), "{log}");
    assert!(!log.contains("m1:") && !log.contains("m3:"), "{log}");
    assert_eq!(sha256_file(&project.tarball("m1")), before[0]);
    assert_eq!(sha256_file(&project.tarball("m3")), before[2]);
    assert_ne!(sha256_file(&project.tarball("m2")), before[1]);
    assert_eq!(
        sha256_file(&project.path("pki/ca.pem")),
        ca_before,
        "the CA is kept"
    );
}

#[test]
fn a_lost_ca_key_is_never_replaced_silently() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    std::fs::remove_file(project.path("pki/ca-key.pem")).unwrap();
    project
        .run_build(&[])
        .status(2)
        .stderr(
            "error: `pki/ca.pem`: exists but its key `pki/ca-key.pem` does not\n\
             hint: restore the CA key from backup; kube-bundle never replaces a CA on its own\n",
        )
        .check();
    assert!(!project.path("pki/ca-key.pem").exists());
}

#[test]
fn service_account_key_modes() {
    // Default: one dedicated pair shared by every master, public half in dist/.
    let project = Project::new(INVENTORY);
    project.build_ok();
    let sa_pub = std::fs::read(project.path("dist/sa.pub")).unwrap();
    assert!(String::from_utf8_lossy(&sa_pub).starts_with("-----BEGIN PUBLIC KEY-----"));
    let derived = public_key_of(&project.path("pki/sa.key"));
    assert_eq!(
        derived.as_bytes(),
        &sa_pub[..],
        "sa.pub is the public half of sa.key"
    );
    for (node, _) in NODES {
        let b = project.unpack(node);
        assert_eq!(
            std::fs::read(b.join("rootfs/etc/kubernetes/cert/sa.key")).unwrap(),
            std::fs::read(project.path("pki/sa.key")).unwrap()
        );
        let unit = std::fs::read_to_string(
            b.join("rootfs/etc/systemd/system/kube-controller-manager.service"),
        )
        .unwrap();
        assert!(
            unit.contains("--service-account-private-key-file=/etc/kubernetes/cert/sa.key"),
            "{unit}"
        );
    }

    // `ca`: the tutorial's way; no separate key anywhere.
    let project =
        Project::new(&INVENTORY.replace("[pki]\n", "[pki]\nservice-account-key = \"ca\"\n"));
    project.build_ok();
    assert!(!project.path("dist/sa.pub").exists() && !project.path("pki/sa.key").exists());
    let b = project.unpack("m1");
    assert!(!b.join("rootfs/etc/kubernetes/cert/sa.key").exists());
    let unit = std::fs::read_to_string(
        b.join("rootfs/etc/systemd/system/kube-controller-manager.service"),
    )
    .unwrap();
    assert!(
        unit.contains("--service-account-private-key-file=/etc/kubernetes/cert/ca-key.pem"),
        "{unit}"
    );
}

#[test]
fn a_swapped_key_or_a_new_algorithm_reissues_with_a_new_key() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    std::fs::copy(
        project.path("pki/m2/kube-controller-manager-key.pem"),
        project.path("pki/m1/kube-controller-manager-key.pem"),
    )
    .unwrap();
    let log = project.build_ok();
    assert!(
        log.contains("m1: reissued the kube-controller-manager certificate (new key): the saved key does not match the certificate"),
        "{log}"
    );
    assert!(!log.contains("m2:") && !log.contains("m3:"), "{log}");
    let modulus = |p: &str| public_key_of(&project.path(p));
    assert_ne!(
        modulus("pki/m1/kube-controller-manager-key.pem"),
        modulus("pki/m2/kube-controller-manager-key.pem")
    );
    let cert_key = openssl(
        project.dir.path(),
        &[
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            "pki/m1/kube-controller-manager.pem",
        ],
    );
    assert_eq!(
        cert_key,
        modulus("pki/m1/kube-controller-manager-key.pem"),
        "the new cert carries the new key"
    );

    project.write(
        "cluster.toml",
        &INVENTORY.replace("[pki]\n", "[pki]\nkey-algorithm = \"ecdsa-p256\"\n"),
    );
    let log = project.build_ok();
    for (node, _) in NODES {
        assert!(log.contains(&format!("{node}: reissued the kube-controller-manager certificate (new key): the key algorithm changed to ecdsa-p256")), "{log}");
    }
    let text = text_of(&project.path("pki/m3/kube-controller-manager.pem"));
    assert!(text.contains("id-ecPublicKey"), "{text}");
}
