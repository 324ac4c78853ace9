//! Every kind of bad input gets one clear error naming the file or field, exit status 2,
//! and nothing written to dist/.

use crate::common::*;

/// Builds `inventory` (after `setup`) and expects a refusal whose message holds `needles`.
pub fn refused(inventory: &str, setup: impl FnOnce(&Project), needles: &[&str]) -> Project {
    let project = Project::new(inventory);
    setup(&project);
    let out = project.build();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2 for {needles:?}, got:\n{err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "one error:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` not in:\n{err}");
    }
    assert!(
        !project.path("dist").exists(),
        "dist/ written despite:\n{err}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(project.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    project
}

pub fn no_setup(_: &Project) {}

fn with(find: &str, replace: &str) -> String {
    assert!(INVENTORY.contains(find), "{find}");
    INVENTORY.replacen(find, replace, 1)
}

#[test]
fn duplicate_node_names_and_ips() {
    refused(
        &with("name = \"m2\"", "name = \"m1\""),
        no_setup,
        &["cluster.toml:21:8: `nodes[1].name`", "listed twice"],
    );
    refused(
        &with("ip = \"127.0.1.2\"", "ip = \"127.0.1.1\""),
        no_setup,
        &["`nodes[1].ip`", "node IP `127.0.1.1` is listed twice"],
    );
}

#[test]
fn malformed_ips_and_cidrs() {
    refused(
        &with("127.0.1.3", "127.0.1.300"),
        no_setup,
        &[
            "cluster.toml:26:6: `nodes[2].ip`",
            "`127.0.1.300` is not an IP address",
        ],
    );
    refused(
        &with("10.254.0.0/16", "10.254.0.0/33"),
        no_setup,
        &["`cluster.service-cidr`", "is not a CIDR"],
    );
    refused(
        &with("172.30.0.0/16", "172.30.1.0/16"),
        no_setup,
        &[
            "`cluster.cluster-cidr`",
            "host bits",
            "hint: did you mean `172.30.0.0/16`?",
        ],
    );
}

#[test]
fn bad_versions() {
    refused(
        &with("1.20.2", "1.15.12"),
        no_setup,
        &[
            "cluster.toml:2:22: `cluster.kubernetes-version`",
            "older than 1.16",
        ],
    );
    refused(
        &with("1.20.2", "latest"),
        no_setup,
        &[
            "`cluster.kubernetes-version`",
            "`latest` is not a Kubernetes version",
        ],
    );
    refused(
        &with("kubernetes-version = \"1.20.2\"\n", ""),
        no_setup,
        &["`cluster.kubernetes-version`", "is required"],
    );
}

#[test]
fn unknown_key_algorithm() {
    refused(
        &with("[pki]\n", "[pki]\nkey-algorithm = \"dsa-1024\"\n"),
        no_setup,
        &[
            "`pki.key-algorithm`",
            "unknown key algorithm `dsa-1024`",
            "rsa-2048",
        ],
    );
}

#[test]
fn half_an_imported_ca() {
    refused(
        &with("[pki]\n", "[pki]\nca-cert = \"ca.pem\"\n"),
        no_setup,
        &["`pki.ca-cert`", "`pki.ca-key` is not"],
    );
    refused(
        &with("[pki]\n", "[pki]\nca-key = \"ca-key.pem\"\n"),
        no_setup,
        &["`pki.ca-key`", "`pki.ca-cert` is not"],
    );
}

/// `ca.pem` and `ca-key.pem` in the project, self-signed by openssl.
fn self_signed(p: &Project, cn: &str, constraints: &str) {
    openssl_self_signed(p.dir.path(), "ca", cn, constraints);
}

const IMPORT: &str = "[pki]\nca-cert = \"ca.pem\"\nca-key = \"ca-key.pem\"\n";

#[test]
fn ca_key_not_matching_the_ca_cert() {
    refused(
        &with("[pki]\n", IMPORT),
        |p| {
            self_signed(p, "ca", "CA:TRUE");
            openssl(p.dir.path(), &["genrsa", "-out", "ca-key.pem", "2048"]);
        },
        &["ca-key.pem`: does not match the CA certificate"],
    );
}

#[test]
fn ca_cert_that_is_not_a_ca() {
    refused(
        &with("[pki]\n", IMPORT),
        |p| {
            self_signed(p, "leaf", "CA:FALSE");
        },
        &["ca.pem`: is not a CA certificate"],
    );
}

#[test]
fn expired_ca() {
    refused(
        &with("[pki]\n", IMPORT),
        |p| {
            // openssl 3.0 cannot backdate notAfter, so rcgen signs the expired CA.
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            let cert = params.self_signed(&key).unwrap();
            p.write("ca.pem", &cert.pem());
            p.write("ca-key.pem", &key.serialize_pem());
        },
        &["ca.pem`: the CA expired on"],
    );
}

#[test]
fn node_names_that_are_not_host_names() {
    for bad in ["m/1", "..", "m 1", "../m1"] {
        refused(
            &with("name = \"m1\"", &format!("name = \"{bad}\"")),
            no_setup,
            &["`nodes[0].name`", "is not a plain host name"],
        );
    }
}

#[test]
fn no_nodes() {
    let inventory = INVENTORY.split("[[nodes]]").next().unwrap().to_string();
    refused(&inventory, no_setup, &["`nodes`", "no masters are listed"]);
}

#[test]
fn missing_or_non_executable_binary() {
    let inventory = format!("{INVENTORY}\n[kube-controller-manager]\nbinary = \"bin/kcm\"\n");
    refused(
        &inventory,
        no_setup,
        &[
            "`kube-controller-manager.binary`",
            "bin/kcm` does not exist",
        ],
    );
    refused(
        &inventory,
        |p| p.write("bin/kcm", "data"),
        &["`kube-controller-manager.binary`", "is not executable"],
    );
}

#[test]
fn unknown_keys_anywhere() {
    refused(
        &with("[cluster]\n", "[cluster]\nnmae = \"x\"\n"),
        no_setup,
        &["cluster.toml", "line 2", "unknown field `nmae`"],
    );
    refused(
        &with("ip = \"127.0.1.1\"", "ip = \"127.0.1.1\"\nipp = \"x\""),
        no_setup,
        &["unknown field `ipp`"],
    );
    refused(
        &format!("{INVENTORY}\n[extra]\nx = 1\n"),
        no_setup,
        &["unknown field `extra`"],
    );
    refused(
        &format!("{INVENTORY}\n[kube-controller-manager]\nport = 1\n"),
        no_setup,
        &["unknown field `port`"],
    );
    refused(
        &with("[pki]\n", "[pki]\nO = \"x\"\n"),
        no_setup,
        &["unknown field `O`"],
    );
}

#[test]
fn apiserver_that_is_not_https() {
    refused(
        &with("https://{{node.ip}}:6443", "http://{{node.ip}}:8080"),
        no_setup,
        &["`cluster.apiserver`", "is not an https URL"],
    );
}

#[test]
fn extra_args_the_version_does_not_have() {
    let inventory = format!(
        "{}\n[kube-controller-manager.extra-args]\npod-eviction-timeout = \"5m\"\n",
        with("1.20.2", "1.27.0")
    );
    refused(
        &inventory,
        no_setup,
        &[
            "`kube-controller-manager.extra-args.pod-eviction-timeout`",
            "does not exist in kube-controller-manager 1.27.0",
            "removed after 1.26",
        ],
    );
    let inventory =
        format!("{INVENTORY}\n[kube-controller-manager.extra-args]\nleader-elekt = true\n");
    refused(&inventory, no_setup, &["has no flag `--leader-elekt`"]);
}

#[test]
fn a_refused_build_leaves_an_existing_dist_untouched() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let before = snapshot(&project.path("dist"));
    project.write("cluster.toml", &with("127.0.1.3", "not-an-ip"));
    let out = project.build();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(snapshot(&project.path("dist")), before);
}

#[test]
fn a_foreign_output_folder_is_not_replaced() {
    let project = Project::new(INVENTORY);
    project.write("dist/notes.txt", "mine");
    let out = project.build();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("holds `notes.txt`, which kube-bundle did not write"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(project.path("dist/notes.txt")).unwrap(),
        "mine"
    );
    assert!(
        !project.path("pki").exists(),
        "nothing generated before the output folder is checked"
    );
}

#[test]
fn toml_syntax_errors_keep_line_and_column() {
    refused(
        &with(
            "service-cidr = \"10.254.0.0/16\"",
            "service-cidr = 10.254.0.0/16",
        ),
        no_setup,
        &["cluster.toml", "line 4, column"],
    );
}

/// The review's findings on inventories that passed validation and failed later (M4, L1,
/// L6, L7): each is now refused up front, with nothing written, not even pki/.
#[test]
fn what_used_to_fail_late_is_refused_up_front() {
    let nothing_written = |inventory: &str, needles: &[&str]| {
        refused(inventory, no_setup, needles);
        let project = Project::new(inventory);
        project.build();
        assert!(
            !project.path("pki").exists(),
            "pki/ written for {needles:?}"
        );
    };
    nothing_written(
        &with("[pki]\n", "[pki]\nca-validity = \"3000000d\"\n"),
        &[
            "`pki.ca-validity`",
            "longer than Go's longest duration, 2562047h",
        ],
    );
    nothing_written(
        &with("[pki]\n", "[pki]\ncert-validity = \"200000d\"\n"),
        &["`pki.cert-validity`", "longer than Go's longest duration"],
    );
    for url in [
        "https://:6443",
        "https://a:6443:6443",
        "https://?x",
        "https://[fd00::1",
        "https://{{node.ip}}:6443/{{node.name}}",
    ] {
        nothing_written(
            &with("https://{{node.ip}}:6443", url),
            &["`cluster.apiserver`"],
        );
    }
    let long =
        "n".repeat(63) + "." + &"n".repeat(63) + "." + &"n".repeat(63) + "." + &"n".repeat(40);
    nothing_written(
        &with("name = \"m3\"", &format!("name = \"{long}\"")),
        &[
            "`nodes[2].name`",
            "characters long",
            "at most 200 characters",
        ],
    );
    nothing_written(
        &with("name = \"m2\"", "name = \"M1\""),
        &["`nodes[1].name`", "listed twice (first as `m1`"],
    );
    nothing_written(
        &with("ip = \"127.0.1.2\"", "ip = \"::ffff:127.0.1.1\""),
        &["`nodes[1].ip`", "node IP `127.0.1.1` is listed twice"],
    );
    nothing_written(
        &format!("{INVENTORY}\n[kube-controller-manager.extra-args]\nbind-address = \"0.0.0.0\"\n"),
        &[
            "`kube-controller-manager.extra-args.bind-address`",
            "is set by kube-bundle",
        ],
    );
    nothing_written(
        &format!("{INVENTORY}\n[kube-controller-manager.extra-args]\nv = 4\n\"--v\" = 5\n"),
        &["`--v` is set twice"],
    );
}

/// Builds `inventory` expecting [`refused`]'s outcome, and that not even pki/ is made.
fn refused_up_front(inventory: &str, needles: &[&str]) {
    refused(inventory, no_setup, needles);
    let project = Project::new(inventory);
    project.build();
    assert!(
        !project.path("pki").exists(),
        "pki/ written for {needles:?}"
    );
}

/// The test inventory with kube-apiserver and etcd, `etcd` added to its `[etcd]`.
fn whole_plane(etcd: &str) -> String {
    format!("{INVENTORY}\n[kube-apiserver]\n[etcd]\nversion = \"3.4\"\n{etcd}")
        .replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
}

/// The review's part 3, row 6: service ranges kube-apiserver 1.20 refuses at start
/// (more than 20 host bits; fewer than 8 addresses) are refused by the build.
#[test]
fn service_ranges_kube_apiserver_refuses() {
    for (cidr, needle) in [
        (
            "10.0.0.0/8",
            "`10.0.0.0/8` is larger than kube-apiserver 1.20.2 takes: an IPv4 service range needs a prefix of /12 or longer",
        ),
        (
            "0.0.0.0/0",
            "`0.0.0.0/0` is larger than kube-apiserver 1.20.2 takes",
        ),
        (
            "10.254.0.0/32",
            "`10.254.0.0/32` holds 1 address(es); kube-apiserver needs at least 8 (an IPv4 prefix of /29 or shorter)",
        ),
        ("10.254.0.0/31", "`10.254.0.0/31` holds 2 address(es)"),
        (
            "fd00::/64",
            "`fd00::/64` is larger than kube-apiserver 1.20.2 takes: an IPv6 service range needs a prefix of /108 or longer",
        ),
    ] {
        refused_up_front(
            &with("10.254.0.0/16", cidr),
            &["cluster.toml:4:16: `cluster.service-cidr`", needle, "hint: pick a range such as"],
        );
    }
}

/// The review's part 3, rows 9 and 10: work and data folders inside install.sh's
/// releases, on the node's system folders or written with `.` are refused.
#[test]
fn work_and_data_dirs_on_system_or_kube_bundle_folders() {
    for (dir, needle) in [
        (
            "/var/backups/kube-bundle",
            "`/var/backups/kube-bundle` overlaps install.sh's releases `/var/backups/kube-bundle`",
        ),
        (
            "/var/backups/kube-bundle/k8s",
            "overlaps install.sh's releases",
        ),
        ("/", "`/` is a system folder"),
        ("/etc", "`/etc` is a system folder"),
        ("/usr/", "`/usr` is a system folder"),
        ("/var/lib", "`/var/lib` is a system folder"),
        ("/home", "`/home` is a system folder"),
        ("/lib64", "`/lib64` is a system folder"),
        ("/etc/kubernetes", "overlaps the configuration folder `/etc/kubernetes`"),
        ("/opt/k8s/bin", "overlaps the binaries' folder `/opt/k8s/bin`"),
        (
            "/./data",
            "`/./data` is not an absolute path written plainly (no `.`, `..`, doubled or trailing `/`)",
        ),
        ("/data//k8s", "`/data//k8s` is not an absolute path written plainly"),
    ] {
        refused_up_front(
            &with("[cluster]\n", &format!("[cluster]\nk8s-dir = \"{dir}\"\n")),
            &["cluster.toml:2:11: `cluster.k8s-dir`", needle],
        );
    }
    let etcd = |key: &str, dir: &str| whole_plane(&format!("{key} = \"{dir}\"\n"));
    for (key, dir, needle) in [
        (
            "data-dir",
            "/etc/systemd/system",
            "`/etc/systemd/system` overlaps the units' folder `/etc/systemd/system`",
        ),
        ("data-dir", "/usr", "`/usr` is a system folder"),
        ("data-dir", "/home", "`/home` is a system folder"),
        ("data-dir", "/boot/", "`/boot` is a system folder"),
        (
            "data-dir",
            "/var/backups/kube-bundle/etcd",
            "overlaps install.sh's releases `/var/backups/kube-bundle`",
        ),
        ("wal-dir", "/tmp", "`/tmp` is a system folder"),
        (
            "wal-dir",
            "/data//wal",
            "is not an absolute path written plainly",
        ),
    ] {
        refused_up_front(
            &etcd(key, dir),
            &[
                &format!("`etcd.{key}`"),
                needle,
                "hint: keep etcd's data in a folder of its own",
            ],
        );
    }
}

/// The review's part 3, row 11: what decides who may reach the API and etcd is
/// kube-bundle's, like the certificate flags.
#[test]
fn extra_args_cannot_override_what_guards_the_cluster() {
    let section = |name: &str, flag: &str, value: &str| {
        whole_plane(&format!("[{name}.extra-args]\n{flag} = {value}\n"))
    };
    for (name, flag, value) in [
        (
            "kube-apiserver",
            "client-ca-file",
            "\"/etc/kubernetes/cert/ca.pem\"",
        ),
        (
            "kube-apiserver",
            "requestheader-client-ca-file",
            "\"/etc/kubernetes/cert/ca.pem\"",
        ),
        ("kube-apiserver", "requestheader-allowed-names", "\"\""),
        ("kube-apiserver", "anonymous-auth", "true"),
        ("kube-apiserver", "authorization-mode", "\"AlwaysAllow\""),
        (
            "kube-apiserver",
            "encryption-provider-config",
            "\"/dev/null\"",
        ),
        ("etcd", "client-cert-auth", "false"),
        ("etcd", "peer-client-cert-auth", "false"),
        ("etcd", "trusted-ca-file", "\"/etc/kubernetes/cert/ca.pem\""),
        (
            "kube-controller-manager",
            "client-ca-file",
            "\"/tmp/ca.pem\"",
        ),
        (
            "kube-controller-manager",
            "requestheader-client-ca-file",
            "\"/tmp/ca.pem\"",
        ),
    ] {
        refused_up_front(
            &section(name, flag, value),
            &[
                &format!("`{name}.extra-args.{flag}`"),
                &format!("`--{flag}` is set by kube-bundle"),
                &format!("hint: kube-bundle writes `--{flag}` for {name}; it cannot be overridden"),
            ],
        );
    }
}
