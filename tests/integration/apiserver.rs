//! kube-apiserver from the inventory, on the build side: the files each bundle carries,
//! checked with openssl and kubectl; the secrets kept once in pki/; and the bad input
//! that must stop a build with one error, exit 2 and nothing written.

use std::path::Path;
use std::process::Command;

use crate::bad_input::refused;
use crate::common::*;

const APISERVER: &str = r#"
[kube-scheduler]

[kube-apiserver]
extra-sans = ["lb.example.com", "10.0.0.100", "LB.example.com"]
etcd-servers = ["http://127.0.0.1:2379", "http://127.0.0.2:2379/"]
"#;

fn with_apiserver() -> String {
    // `apiserver` left to its default: the node's own kube-apiserver; the default CSR
    // signing CA, so the root CA key stays home.
    INVENTORY
        .replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
        .replace("csr-signing = \"ca\"", "csr-signing = \"signer\"")
        + APISERVER
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_master_gets_its_apiserver_files_and_certificates_that_openssl_accepts() {
    let project = Project::new(&with_apiserver());
    let notes = project.build_ok();
    for want in [
        "generated the front-proxy CA",
        "generated the secrets encryption key",
        "m1: issued a kube-apiserver certificate",
        "m1: issued a kube-apiserver-kubelet-client certificate",
        "m1: issued a front-proxy-client certificate",
        "issued the admin certificate",
    ] {
        assert!(notes.contains(want), "{want} not in:\n{notes}");
    }
    let bundle = project.unpack("m1");
    let cert = bundle.join("rootfs/etc/kubernetes/cert");
    for (file, mode) in [
        ("kube-apiserver.pem", 0o644),
        ("kube-apiserver-key.pem", 0o600),
        ("kube-apiserver-kubelet-client.pem", 0o644),
        ("kube-apiserver-kubelet-client-key.pem", 0o600),
        ("front-proxy-client.pem", 0o644),
        ("front-proxy-client-key.pem", 0o600),
        ("front-proxy-ca.pem", 0o644),
        ("client-ca.pem", 0o644),
        ("sa.key", 0o600),
        ("sa.pub", 0o644),
    ] {
        assert_eq!(mode_of(&cert.join(file)), mode, "{file}");
    }
    assert_eq!(
        mode_of(&bundle.join("rootfs/etc/kubernetes/encryption-config.yaml")),
        0o600
    );
    assert!(!cert.join("front-proxy-ca-key.pem").exists());
    assert!(!cert.join("ca-key.pem").exists());
    assert!(!bundle
        .join("rootfs/etc/kubernetes/kube-apiserver.kubeconfig")
        .exists());

    // The serving certificate: chains to the CA, serves TLS, and names exactly the node,
    // the extra SANs once each, the service IP and the kubernetes service's names.
    let verified = openssl(
        &cert,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslserver",
            "kube-apiserver.pem",
        ],
    );
    assert_eq!(verified, "kube-apiserver.pem: OK\n");
    let sans = openssl(
        &cert,
        &[
            "x509",
            "-in",
            "kube-apiserver.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        sans.contains(
            "IP Address:127.0.0.1, IP Address:127.0.1.1, DNS:m1, DNS:lb.example.com, \
             IP Address:10.0.0.100, IP Address:10.254.0.1, DNS:kubernetes, \
             DNS:kubernetes.default, DNS:kubernetes.default.svc, \
             DNS:kubernetes.default.svc.cluster.local\n"
        ),
        "{sans}"
    );
    let subject = |file: &str| {
        openssl(
            &cert,
            &[
                "x509", "-in", file, "-noout", "-subject", "-nameopt", "RFC2253",
            ],
        )
    };
    assert!(subject("kube-apiserver.pem").contains("CN=kube-apiserver"));
    assert!(
        subject("kube-apiserver-kubelet-client.pem").contains("CN=kube-apiserver-kubelet-client")
    );
    // The kubelet client certificate is a client certificate of the root CA; the
    // front-proxy client one chains to the front-proxy CA only.
    let verify = |ca: &str, file: &str, purpose: &str| {
        openssl_command(&["verify", "-CAfile", ca, "-purpose", purpose, file])
            .current_dir(&cert)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify(
        "ca.pem",
        "kube-apiserver-kubelet-client.pem",
        "sslclient"
    ));
    assert!(!verify(
        "ca.pem",
        "kube-apiserver-kubelet-client.pem",
        "sslserver"
    ));
    assert!(verify(
        "front-proxy-ca.pem",
        "front-proxy-client.pem",
        "sslclient"
    ));
    assert!(!verify("ca.pem", "front-proxy-client.pem", "sslclient"));
    assert!(subject("front-proxy-client.pem").contains("CN=front-proxy-client"));
    // Kubelets' certificates come from the signing CA: the apiserver trusts both.
    assert_eq!(
        read(&cert.join("client-ca.pem")),
        read(&cert.join("ca.pem")) + &read(&cert.join("csr-signer.pem"))
    );

    // One encryption key, from pki/, in every master's configuration.
    let key = read(&project.path("pki/encryption-key"));
    assert_eq!(mode_of(&project.path("pki/encryption-key")), 0o600);
    let decoded = Command::new(tool("base64"))
        .arg("-d")
        .arg(project.path("pki/encryption-key"))
        .output()
        .unwrap();
    assert_eq!(decoded.stdout.len(), 32);
    let config = read(&bundle.join("rootfs/etc/kubernetes/encryption-config.yaml"));
    assert!(
        config.contains("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"),
        "{config}"
    );
    assert!(
        config.contains(&format!("              secret: {}", key.trim())),
        "{config}"
    );
    assert!(config.contains("      - identity: {}\n"), "{config}");
    for node in ["m2", "m3"] {
        let other = project.unpack(node);
        assert_eq!(
            read(&other.join("rootfs/etc/kubernetes/encryption-config.yaml")),
            config,
            "{node}"
        );
        assert_eq!(
            read(&other.join("rootfs/etc/kubernetes/cert/front-proxy-ca.pem")),
            read(&cert.join("front-proxy-ca.pem"))
        );
    }
    let audit = read(&bundle.join("rootfs/etc/kubernetes/audit-policy.yaml"));
    assert!(
        audit.contains("apiVersion: audit.k8s.io/v1\nkind: Policy\n"),
        "{audit}"
    );

    // The unit: node IP for bind and advertise, the bundle's files, audit log in the
    // work dir, and the issuer from the cluster domain.
    let unit = read(&bundle.join("rootfs/etc/systemd/system/kube-apiserver.service"));
    for want in [
        "ExecStart=/opt/k8s/bin/kube-apiserver \\\n  --advertise-address=127.0.1.1 \\\n",
        "  --bind-address=127.0.1.1 \\\n  --secure-port=6443 \\\n",
        "  --etcd-servers=http://127.0.0.1:2379,http://127.0.0.2:2379 \\\n",
        "  --encryption-provider-config=/etc/kubernetes/encryption-config.yaml \\\n",
        "  --audit-log-path=/data/k8s/k8s/kube-apiserver/audit.log \\\n",
        "  --client-ca-file=/etc/kubernetes/cert/client-ca.pem \\\n",
        "  --requestheader-allowed-names=front-proxy-client \\\n",
        "  --requestheader-client-ca-file=/etc/kubernetes/cert/front-proxy-ca.pem \\\n",
        "  --service-account-issuer=https://kubernetes.default.svc.cluster.local \\\n",
        "  --service-account-signing-key-file=/etc/kubernetes/cert/sa.key \\\n",
        "  --api-audiences=https://kubernetes.default.svc.cluster.local \\\n",
        "  --kubelet-client-certificate=/etc/kubernetes/cert/kube-apiserver-kubelet-client.pem \\\n",
        "  --service-node-port-range=30000-32767 \\\n",
        "Type=notify\nLimitNOFILE=65536\n",
    ] {
        assert!(unit.contains(want), "{want} not in:\n{unit}");
    }
    assert!(
        !unit.contains("insecure-port"),
        "the default from 1.20:\n{unit}"
    );

    // The other components trust the front-proxy CA and talk to their node's apiserver.
    let kcm = read(&bundle.join("rootfs/etc/systemd/system/kube-controller-manager.service"));
    assert!(kcm.contains("--requestheader-client-ca-file=/etc/kubernetes/cert/front-proxy-ca.pem"));
    assert!(kcm.contains("--requestheader-allowed-names=front-proxy-client"));
    let kubeconfig = bundle.join("rootfs/etc/kubernetes/kube-scheduler.kubeconfig");
    let server = run_ok(
        Command::new(tool("kubectl"))
            .args(["config", "view", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["-o", "jsonpath={.clusters[0].cluster.server}"]),
    );
    assert_eq!(server, "https://127.0.1.1:6443");

    // install.sh starts kube-apiserver first and lets it gate the rest.
    let install = read(&bundle.join("install.sh"));
    assert!(
        install.contains(
            "    \"kube-apiserver\"\n    \"kube-controller-manager\"\n    \"kube-scheduler\"\n"
        ),
        "start order"
    );
    assert!(install.contains("GATES_REST[\"kube-apiserver\"]=1\n"));
    run_ok(
        Command::new(tool("shellcheck"))
            .arg("--severity=style")
            .arg(bundle.join("install.sh")),
    );
}

#[test]
fn the_operator_gets_an_admin_kubeconfig_and_the_kubelet_binding_outside_the_bundles() {
    let project = Project::new(&with_apiserver());
    project.build_ok();
    let admin = project.path("dist/admin.kubeconfig");
    assert_eq!(mode_of(&admin), 0o600);
    let view = |jsonpath: &str| {
        run_ok(
            Command::new(tool("kubectl"))
                .args(["config", "view", "--raw", "--kubeconfig"])
                .arg(&admin)
                .args(["-o", &format!("jsonpath={jsonpath}")]),
        )
    };
    assert_eq!(
        view("{.clusters[0].cluster.server}"),
        "https://127.0.1.1:6443"
    );
    assert_eq!(view("{.current-context}"), "admin");
    let cert_b64 = view("{.users[0].user.client-certificate-data}");
    project.write("admin.b64", &cert_b64);
    let pem = Command::new(tool("base64"))
        .arg("-d")
        .arg(project.path("admin.b64"))
        .output()
        .unwrap()
        .stdout;
    project.write(
        "admin-from-kubeconfig.pem",
        &String::from_utf8(pem).unwrap(),
    );
    let subject = openssl(
        project.dir.path(),
        &[
            "x509",
            "-in",
            "admin-from-kubeconfig.pem",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
        ],
    );
    assert!(
        subject.contains("CN=admin,OU=opsnull,O=system:masters"),
        "{subject}"
    );
    assert_eq!(
        read(&project.path("admin-from-kubeconfig.pem")),
        read(&project.path("pki/admin.pem"))
    );
    // Never in a node's bundle.
    for (node, _) in NODES {
        let listing = run_ok(
            Command::new(tool("tar"))
                .arg("-tzf")
                .arg(project.tarball(node)),
        );
        assert!(!listing.contains("admin"), "{node}:\n{listing}");
    }
    let rbac = read(&project.path("dist/kube-apiserver-rbac.yaml"));
    for want in [
        "kind: ClusterRoleBinding\n",
        "  name: system:kubelet-api-admin\n",
        "  kind: User\n  name: kube-apiserver-kubelet-client\n",
    ] {
        assert!(rbac.contains(want), "{want} not in:\n{rbac}");
    }
    // An inventory naming one endpoint (a load balancer) puts it in the admin kubeconfig.
    let project = Project::new(&format!(
        "{}{APISERVER}",
        INVENTORY.replace("https://{{node.ip}}:6443", "https://lb.example.com:8443")
    ));
    project.build_ok();
    let server = run_ok(
        Command::new(tool("kubectl"))
            .args(["config", "view", "--kubeconfig"])
            .arg(project.path("dist/admin.kubeconfig"))
            .args(["-o", "jsonpath={.clusters[0].cluster.server}"]),
    );
    assert_eq!(server, "https://lb.example.com:8443");
    // The tutorial's kube-nginx on 127.0.0.1 of every master is no endpoint for the
    // operator: the first master's apiserver is.
    let project = Project::new(&format!(
        "{}{APISERVER}",
        INVENTORY.replace("https://{{node.ip}}:6443", "https://127.0.0.1:8443")
    ));
    project.build_ok();
    let server = run_ok(
        Command::new(tool("kubectl"))
            .args(["config", "view", "--kubeconfig"])
            .arg(project.path("dist/admin.kubeconfig"))
            .args(["-o", "jsonpath={.clusters[0].cluster.server}"]),
    );
    assert_eq!(server, "https://127.0.1.1:6443");
}

#[test]
fn apiserver_secrets_are_made_once_and_kept() {
    let project = Project::new(&with_apiserver());
    project.build_ok();
    let before = snapshot(&project.path("pki"));
    let notes = project.build_ok();
    assert!(!notes.contains("generated"), "{notes}");
    assert!(!notes.contains("issued"), "{notes}");
    assert_eq!(snapshot(&project.path("pki")), before);
    // Without [kube-apiserver] none of it is made or written.
    let plain = Project::new(INVENTORY);
    plain.build_ok();
    for gone in [
        "pki/front-proxy-ca.pem",
        "pki/encryption-key",
        "pki/admin.pem",
        "dist/admin.kubeconfig",
        "dist/kube-apiserver-rbac.yaml",
    ] {
        assert!(!plain.path(gone).exists(), "{gone}");
    }
}

/// The review's part 3, row 2: a lost encryption key is never replaced by a new one
/// while pki/ holds the cluster whose Secrets it encrypts; a new pki/ gets one.
#[test]
fn a_lost_encryption_key_stops_the_build_and_only_a_new_pki_makes_one() {
    let project = Project::new(&with_apiserver());
    let notes = project.build_ok();
    let key_path = project.path("pki/encryption-key");
    assert!(
        notes.contains("generated the secrets encryption key"),
        "{notes}"
    );
    assert_eq!(mode_of(&key_path), 0o600);
    let decoded = Command::new(tool("base64"))
        .arg("-d")
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(decoded.status.success());
    assert_eq!(decoded.stdout.len(), 32);

    std::fs::remove_file(&key_path).unwrap();
    let (pki, dist) = (
        snapshot(&project.path("pki")),
        snapshot(&project.path("dist")),
    );
    let err = "error: `pki/encryption-key`: is missing, but `pki` already holds the cluster (`pki/ca.pem`), whose Secrets are encrypted with it\n\
               hint: restore it from backup; only for a cluster that has no encrypted Secrets, create a new one: `(umask 077; head -c 32 /dev/urandom | base64 > pki/encryption-key)`\n";
    project.run_build(&[]).status(2).stderr(err).check();
    assert_eq!(snapshot(&project.path("pki")), pki, "{err}");
    assert_eq!(snapshot(&project.path("dist")), dist, "{err}");

    // Made on purpose, as the hint says, the new key is taken.
    run_ok(
        Command::new(tool("sh"))
            .arg("-c")
            .arg("(umask 077; head -c 32 /dev/urandom | base64 > pki/encryption-key)")
            .current_dir(project.dir.path()),
    );
    project.build_ok();
    let key = read(&key_path);
    let config = read(
        &project
            .unpack("m1")
            .join("rootfs/etc/kubernetes/encryption-config.yaml"),
    );
    assert!(config.contains(key.trim()), "{config}");

    // A pki/ made before kube-apiserver joined belongs to a cluster whose apiservers
    // encrypted Secrets with a key of their own: the same refusal.
    let earlier = Project::new(INVENTORY);
    earlier.build_ok();
    earlier.write("cluster.toml", &with_apiserver());
    earlier.run_build(&[]).status(2).stderr(err).check();
    assert!(!earlier.path("pki/encryption-key").exists());
}

/// A saved encryption key in a pki/ folder as builds leave it (0700).
fn write_key(project: &Project, text: &str) {
    project.write("pki/encryption-key", text);
    std::fs::set_permissions(
        project.path("pki"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
}

fn apiserver_with(find: &str, replace: &str) -> String {
    let text = with_apiserver();
    assert!(text.contains(find), "{find}");
    text.replacen(find, replace, 1)
}

#[test]
fn bad_apiserver_input_is_refused_with_one_error_and_nothing_written() {
    let none = |_: &Project| {};
    refused(
        &apiserver_with("\"lb.example.com\",", "\"https://lb.example.com:6443\","),
        none,
        "error: cluster.toml:30:15: `kube-apiserver.extra-sans[0]`: `https://lb.example.com:6443` is neither an IP address nor a DNS name\n\
         hint: list a load balancer's name (`lb.example.com`) or address (`10.0.0.100`), without scheme or port\n",
    );
    refused(
        &apiserver_with("\"lb.example.com\",", "\"lb.example.com.\","),
        none,
        "error: cluster.toml:30:15: `kube-apiserver.extra-sans[0]`: `lb.example.com.` ends with a dot\n\
         hint: certificates name hosts without the trailing dot: `lb.example.com`\n",
    );
    refused(
        &apiserver_with("10.254.0.0/16", "127.0.1.0/24"),
        none,
        "error: cluster.toml: `cluster.service-cidr`: the `kubernetes` service takes the range's first IP, 127.0.1.1, which is node `m1`'s address\n\
         hint: pick a service range that no master's address falls in, such as `10.254.0.0/16`\n",
    );
    refused(
        &apiserver_with(
            "etcd-servers = [\"http://127.0.0.1:2379\", \"http://127.0.0.2:2379/\"]\n",
            "",
        ),
        none,
        "error: cluster.toml: `kube-apiserver.etcd-servers`: is required: kube-apiserver keeps its state in etcd\n\
         hint: list the etcd client URLs, e.g. `etcd-servers = [\"https://10.0.0.11:2379\"]`\n",
    );
    refused(
        &apiserver_with("http://127.0.0.1:2379", "127.0.0.1:2379"),
        none,
        "error: cluster.toml:31:17: `kube-apiserver.etcd-servers[0]`: `127.0.0.1:2379` is not an http or https URL\n",
    );
    refused(
        &apiserver_with("http://127.0.0.1:2379", "https://127.0.0.1:2379"),
        none,
        "error: cluster.toml: `kube-apiserver.etcd-ca`: is required with https etcd servers\n\
         hint: set `etcd-ca`, `etcd-cert` and `etcd-key`: the etcd CA and the apiserver's client certificate and key for it\n",
    );
    refused(
        &apiserver_with("etcd-servers", "etcd-ca = \"missing.pem\"\netcd-servers"),
        none,
        "error: cluster.toml:31:11: `kube-apiserver.etcd-ca`: `missing.pem` is not a readable file\n\
         hint: point it at the PEM file of your etcd cluster, relative to the inventory\n",
    );
    refused(
        &(with_apiserver() + "[kube-apiserver.extra-args]\nno-such-flag = 1\n"),
        none,
        "error: cluster.toml:33:16: `kube-apiserver.extra-args.no-such-flag`: kube-apiserver has no flag `--no-such-flag`\n\
         hint: check the spelling against `kube-apiserver --help` of 1.20.2; names are written without leading dashes\n",
    );
    refused(
        &(with_apiserver() + "[kube-apiserver.extra-args]\netcd-servers = \"http://x:2379\"\n"),
        none,
        "error: cluster.toml:33:16: `kube-apiserver.extra-args.etcd-servers`: `--etcd-servers` is set by kube-bundle\n\
         hint: set `kube-apiserver.etcd-servers` instead\n",
    );
    refused(
        &apiserver_with("1.20.2", "1.24.0").replace(
            "[kube-apiserver]\n",
            "[kube-apiserver]\nextra-args = { insecure-port = 0 }\n",
        ),
        none,
        "error: cluster.toml:30:32: `kube-apiserver.extra-args.insecure-port`: `--insecure-port` does not exist in kube-apiserver 1.24.0; it was removed after 1.23\n\
         hint: remove it from `extra-args`\n",
    );
    refused(
        &apiserver_with(
            "service-cidr",
            "dns-domain = \"cluster.local.\"\nservice-cidr",
        ),
        none,
        "error: cluster.toml:3:14: `cluster.dns-domain`: `cluster.local.` ends with a dot\n\
         hint: write it without the trailing dot: `cluster.local`\n",
    );
    refused(
        &apiserver_with(
            "[kube-apiserver]\n",
            "[kube-apiserver]\nservice-node-port-range = \"32767-30000\"\n",
        ),
        none,
        "error: cluster.toml:30:27: `kube-apiserver.service-node-port-range`: `32767-30000` is not a port range like `30000-32767`\n",
    );
    // An encryption key of the wrong length stops the build before anything is made.
    refused(
        &with_apiserver(),
        |p: &Project| write_key(p, "MDEyMzQ1Njc4OWFiY2RlZg==\n"),
        "error: `pki/encryption-key`: decodes to 16 bytes; an aescbc key is 32\n\
         hint: restore the cluster's key from backup; a new key (`head -c 32 /dev/urandom | base64`) only suits a cluster without encrypted Secrets\n",
    );
    refused(
        &with_apiserver(),
        |p: &Project| write_key(p, "not base64!\n"),
        "error: `pki/encryption-key`: is not base64 (Invalid symbol 32, offset 3.)\n\
         hint: it holds one line: the base64 of 32 random bytes, as `head -c 32 /dev/urandom | base64` prints\n",
    );
}

#[test]
fn an_external_etcd_pair_is_carried_with_the_key_private() {
    let project = Project::new(&apiserver_with(
        "etcd-servers = [\"http://127.0.0.1:2379\", \"http://127.0.0.2:2379/\"]",
        "etcd-servers = [\"https://127.0.0.1:2379\"]\netcd-ca = \"etcd/ca.pem\"\netcd-cert = \"etcd/client.pem\"\netcd-key = \"etcd/client-key.pem\"",
    ));
    std::fs::create_dir_all(project.path("etcd")).unwrap();
    openssl_self_signed(&project.path("etcd"), "ca", "etcd-ca", "CA:TRUE");
    openssl_self_signed(
        &project.path("etcd"),
        "client",
        "kube-apiserver-etcd-client",
        "CA:FALSE",
    );
    project.build_ok();
    let bundle = project.unpack("m2");
    let cert = bundle.join("rootfs/etc/kubernetes/cert");
    assert_eq!(
        read(&cert.join("etcd-ca.pem")),
        read(&project.path("etcd/ca.pem"))
    );
    assert_eq!(
        read(&cert.join("apiserver-etcd-client-key.pem")),
        read(&project.path("etcd/client-key.pem"))
    );
    assert_eq!(mode_of(&cert.join("apiserver-etcd-client-key.pem")), 0o600);
    let unit = read(&bundle.join("rootfs/etc/systemd/system/kube-apiserver.service"));
    for want in [
        "--etcd-cafile=/etc/kubernetes/cert/etcd-ca.pem",
        "--etcd-certfile=/etc/kubernetes/cert/apiserver-etcd-client.pem",
        "--etcd-keyfile=/etc/kubernetes/cert/apiserver-etcd-client-key.pem",
        "--etcd-servers=https://127.0.0.1:2379",
    ] {
        assert!(unit.contains(want), "{want} not in:\n{unit}");
    }
}

#[test]
fn rollout_sh_applies_the_kubelet_binding_after_the_last_master() {
    let project = Project::new(&with_apiserver());
    project.build_ok();
    let remote = project.path("remote");
    std::fs::create_dir_all(&remote).unwrap();
    // ssh and scp act on this machine; kubectl records how it was called.
    let bin = project.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = project.path("kubectl.log");
    for (name, body) in [
        ("ssh", "#!/bin/sh\nshift\nexec sh -c \"$*\"\n".to_string()),
        ("scp", "#!/bin/sh\nexec cp \"$1\" \"${2#*:}\"\n".to_string()),
        (
            "kubectl",
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >>{}\necho 'clusterrolebinding.rbac.authorization.k8s.io/kube-apiserver:kubelet-apis created'\n",
                log.display()
            ),
        ),
    ] {
        std::fs::write(bin.join(name), body).unwrap();
        std::fs::set_permissions(
            bin.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let root = project.path("target-root");
    let rollout = |extra: &[&str]| {
        Command::new(tool("bash"))
            .arg(project.path("dist/rollout.sh"))
            .args(extra)
            .args(["--remote-dir", remote.to_str().unwrap(), "--", "--root"])
            .arg(&root)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let dist = project.path("dist").canonicalize().unwrap();
    let out = rollout(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "would apply {0}/kube-apiserver-rbac.yaml with {0}/admin.kubeconfig",
            dist.display()
        )),
        "{}",
        stdout(&out)
    );
    assert!(!log.exists(), "--dry-run runs no kubectl");
    let out = rollout(&[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let updated = text.find("all 3 masters updated").expect(&text);
    let applied = text
        .find("applied the kubelet API binding: clusterrolebinding")
        .expect(&text);
    assert!(updated < applied, "{text}");
    assert_eq!(
        read(&log),
        format!(
            "--kubeconfig {0}/admin.kubeconfig --request-timeout=30s apply -f {0}/kube-apiserver-rbac.yaml\n",
            dist.display()
        )
    );
    assert!(root
        .join("etc/systemd/system/kube-apiserver.service")
        .exists());
}
