//! Every kind of bad input gets one clear error naming the file or field, exit status 2,
//! and nothing written: no dist/, pki/ as it was.

use crate::common::*;

/// Builds `inventory` (after `setup`) and expects a refusal: exit 2, exactly `stderr`, no
/// stdout, nothing written (no dist/, pki/ as `setup` left it or still absent).
#[track_caller]
pub fn refused(inventory: &str, setup: impl FnOnce(&Project), stderr: &str) -> Project {
    let project = Project::new(inventory);
    setup(&project);
    let pki = pki_state(&project);
    project.run_build(&[]).status(2).stderr(stderr).check();
    nothing_written(&project, pki, stderr);
    project
}

/// [`refused`] of a CA the build reads after it has made pki/ to lock it: the folder may
/// stay, but empty.
#[track_caller]
fn refused_ca(inventory: &str, setup: impl FnOnce(&Project), stderr: &str) {
    let project = Project::new(inventory);
    setup(&project);
    project.run_build(&[]).status(2).stderr(stderr).check();
    let pki = project.path("pki");
    assert!(!pki.exists(), "pki/ made despite:\n{stderr}");
    no_dist_nor_staging(&project, stderr);
}

/// [`refused`] for a message only partly the contract: one error holding `needles`.
#[track_caller]
pub fn refused_holding(inventory: &str, setup: impl FnOnce(&Project), needles: &[&str]) -> Project {
    let project = Project::new(inventory);
    setup(&project);
    let pki = pki_state(&project);
    let mut run = project.run_build(&[]).status(2).stderr_has("error: ");
    for needle in needles {
        run = run.stderr_has(needle);
    }
    let err = stderr(&run.check());
    assert_eq!(err.matches("error:").count(), 1, "one error:\n{err}");
    nothing_written(&project, pki, &err);
    project
}

/// pki/ as it is, or `None` when there is none.
fn pki_state(project: &Project) -> Option<Vec<(String, String, u32)>> {
    let pki = project.path("pki");
    pki.exists().then(|| snapshot(&pki))
}

/// No dist/, no staging, and pki/ as it was before (`pki`, see [`pki_state`]).
#[track_caller]
fn nothing_written(project: &Project, pki: Option<Vec<(String, String, u32)>>, err: &str) {
    match pki {
        Some(before) => assert_eq!(snapshot(&project.path("pki")), before, "{err}"),
        None => assert!(
            !project.path("pki").exists(),
            "pki/ written despite:\n{err}"
        ),
    }
    no_dist_nor_staging(project, err);
}

#[track_caller]
fn no_dist_nor_staging(project: &Project, err: &str) {
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
        "error: cluster.toml:21:8: `nodes[1].name`: node name `m1` is listed twice (first as `m1`; host names ignore case)\n",
    );
    refused(
        &with("ip = \"127.0.1.2\"", "ip = \"127.0.1.1\""),
        no_setup,
        "error: cluster.toml:22:6: `nodes[1].ip`: node IP `127.0.1.1` is listed twice (first as `127.0.1.1`)\n",
    );
}

#[test]
fn malformed_ips_and_cidrs() {
    refused(
        &with("127.0.1.3", "127.0.1.300"),
        no_setup,
        "error: cluster.toml:26:6: `nodes[2].ip`: `127.0.1.300` is not an IP address\n",
    );
    refused(
        &with("10.254.0.0/16", "10.254.0.0/33"),
        no_setup,
        "error: cluster.toml:4:16: `cluster.service-cidr`: `10.254.0.0/33` is not a CIDR like `10.254.0.0/16`\n",
    );
    refused(
        &with("172.30.0.0/16", "172.30.1.0/16"),
        no_setup,
        "error: cluster.toml:5:16: `cluster.cluster-cidr`: `172.30.1.0/16` has host bits set\n\
         hint: did you mean `172.30.0.0/16`?\n",
    );
}

#[test]
fn bad_versions() {
    refused(
        &with("1.20.2", "1.15.12"),
        no_setup,
        "error: cluster.toml:2:22: `cluster.kubernetes-version`: Kubernetes `1.15.12` is older than 1.16, the oldest release with a checked flag profile\n",
    );
    refused(
        &with("1.20.2", "latest"),
        no_setup,
        "error: cluster.toml:2:22: `cluster.kubernetes-version`: `latest` is not a Kubernetes version like `1.20.2`\n",
    );
    refused(
        &with("kubernetes-version = \"1.20.2\"\n", ""),
        no_setup,
        "error: cluster.toml: `cluster.kubernetes-version`: is required\n\
         hint: add `kubernetes-version = \"1.20.2\"` (the Kubernetes release your control plane runs) under [cluster]\n",
    );
}

#[test]
fn unknown_key_algorithm() {
    refused(
        &with("[pki]\n", "[pki]\nkey-algorithm = \"dsa-1024\"\n"),
        no_setup,
        "error: cluster.toml:8:17: `pki.key-algorithm`: unknown key algorithm `dsa-1024`\n\
         hint: use one of `rsa-2048`, `rsa-3072`, `rsa-4096`, `ecdsa-p256`\n",
    );
}

#[test]
fn half_an_imported_ca() {
    refused(
        &with("[pki]\n", "[pki]\nca-cert = \"ca.pem\"\n"),
        no_setup,
        "error: cluster.toml:8:11: `pki.ca-cert`: is set but `pki.ca-key` is not\n\
         hint: an imported CA needs both its certificate and its key; remove both to let kube-bundle generate a CA\n",
    );
    refused(
        &with("[pki]\n", "[pki]\nca-key = \"ca-key.pem\"\n"),
        no_setup,
        "error: cluster.toml:8:10: `pki.ca-key`: is set but `pki.ca-cert` is not\n\
         hint: an imported CA needs both its certificate and its key; remove both to let kube-bundle generate a CA\n",
    );
}

/// `ca.pem` and `ca-key.pem` in the project, self-signed by openssl.
fn self_signed(p: &Project, cn: &str, constraints: &str) {
    openssl_self_signed(p.dir.path(), "ca", cn, constraints);
}

const IMPORT: &str = "[pki]\nca-cert = \"ca.pem\"\nca-key = \"ca-key.pem\"\n";

#[test]
fn ca_key_not_matching_the_ca_cert() {
    refused_ca(
        &with("[pki]\n", IMPORT),
        |p| {
            self_signed(p, "ca", "CA:TRUE");
            openssl(p.dir.path(), &["genrsa", "-out", "ca-key.pem", "2048"]);
        },
        "error: `ca-key.pem`: does not match the CA certificate `ca.pem`\n\
         hint: `pki.ca-key` must be the private key of `pki.ca-cert`\n",
    );
}

#[test]
fn ca_cert_that_is_not_a_ca() {
    refused_ca(
        &with("[pki]\n", IMPORT),
        |p| {
            self_signed(p, "leaf", "CA:FALSE");
        },
        "error: `ca.pem`: is not a CA certificate (no basicConstraints CA:TRUE)\n\
         hint: `pki.ca-cert` must be the cluster's root CA, as made by `cfssl gencert -initca`\n",
    );
}

#[test]
fn expired_ca() {
    refused_ca(
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
        "error: `ca.pem`: the CA expired on Jan  1 00:00:00 2021 +00:00\n\
         hint: renew the CA first; every certificate it signed must be reissued too\n",
    );
}

#[test]
fn node_names_that_are_not_host_names() {
    for bad in ["m/1", "..", "m 1", "../m1"] {
        refused(
            &with("name = \"m1\"", &format!("name = \"{bad}\"")),
            no_setup,
            &format!(
                "error: cluster.toml:17:8: `nodes[0].name`: `{bad}` is not a plain host name\n\
                     hint: use letters, digits, `-` and `.` only, as in `zhangjun-k8s-01`\n"
            ),
        );
    }
}

#[test]
fn no_nodes() {
    let inventory = INVENTORY.split("[[nodes]]").next().unwrap().to_string();
    refused(
        &inventory,
        no_setup,
        "error: cluster.toml: `nodes`: no masters are listed\n\
         hint: add one `[[nodes]]` table with `name` and `ip` per master\n",
    );
}

#[test]
fn missing_or_non_executable_binary() {
    let inventory = format!("{INVENTORY}\n[kube-controller-manager]\nbinary = \"bin/kcm\"\n");
    refused(
        &inventory,
        no_setup,
        "error: cluster.toml:29:10: `kube-controller-manager.binary`: `bin/kcm` does not exist\n\
         hint: point it at the kube-controller-manager executable to carry in the bundles, or remove the key\n",
    );
    refused(
        &inventory,
        |p| p.write("bin/kcm", "data"),
        "error: cluster.toml:29:10: `kube-controller-manager.binary`: `bin/kcm` is not executable\n\
         hint: point it at the kube-controller-manager executable to carry in the bundles, or remove the key\n",
    );
}

#[test]
fn unknown_keys_anywhere() {
    refused(
        &with("[cluster]\n", "[cluster]\nnmae = \"x\"\n"),
        no_setup,
        "error: `cluster.toml`: TOML parse error at line 2, column 1\n  |\n2 | nmae = \"x\"\n  | ^^^^\nunknown field `nmae`, expected one of `name`, `kubernetes-version`, `apiserver`, `worker-apiserver`, `arch`, `service-cidr`, `cluster-cidr`, `k8s-dir`, `dns-domain`\n\n",
    );
    refused(
        &with("ip = \"127.0.1.1\"", "ip = \"127.0.1.1\"\nipp = \"x\""),
        no_setup,
        "error: `cluster.toml`: TOML parse error at line 19, column 1\n   |\n19 | ipp = \"x\"\n   | ^^^\nunknown field `ipp`, expected one of `name`, `ip`, `etcd-state`\n\n",
    );
    refused(
        &format!("{INVENTORY}\n[extra]\nx = 1\n"),
        no_setup,
        "error: `cluster.toml`: TOML parse error at line 28, column 2\n   |\n28 | [extra]\n   |  ^^^^^\nunknown field `extra`, expected one of `cluster`, `pki`, `nodes`, `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`\n\n",
    );
    refused(
        &format!("{INVENTORY}\n[kube-controller-manager]\nport = 1\n"),
        no_setup,
        "error: `cluster.toml`: TOML parse error at line 29, column 1\n   |\n29 | port = 1\n   | ^^^^\nunknown field `port`, expected one of `binary`, `binary-check`, `secure-port`, `extra-args`\n\n",
    );
    refused(
        &with("[pki]\n", "[pki]\nO = \"x\"\n"),
        no_setup,
        "error: `cluster.toml`: TOML parse error at line 8, column 1\n  |\n8 | O = \"x\"\n  | ^\nunknown field `O`, expected one of `dir`, `ca-cert`, `ca-key`, `key-algorithm`, `cert-validity`, `ca-validity`, `service-account-key`, `csr-signing`, `etcd-ca`, `seal-secrets`, `C`, `ST`, `L`, `OU`\n\n",
    );
}

#[test]
fn apiserver_that_is_not_https() {
    refused(
        &with("https://{{node.ip}}:6443", "http://{{node.ip}}:8080"),
        no_setup,
        "error: cluster.toml:3:13: `cluster.apiserver`: `http://{{node.ip}}:8080` is not an https URL\n\
         hint: write it as `https://HOST:PORT`, with `{{node.ip}}` standing for each master's own IP\n",
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
        "error: cluster.toml:29:24: `kube-controller-manager.extra-args.pod-eviction-timeout`: `--pod-eviction-timeout` does not exist in kube-controller-manager 1.27.0; it was removed after 1.26\n\
         hint: remove it from `extra-args`\n",
    );
    let inventory =
        format!("{INVENTORY}\n[kube-controller-manager.extra-args]\nleader-elekt = true\n");
    refused(
        &inventory,
        no_setup,
        "error: cluster.toml:29:16: `kube-controller-manager.extra-args.leader-elekt`: kube-controller-manager has no flag `--leader-elekt`\n\
         hint: check the spelling against `kube-controller-manager --help` of 1.20.2; names are written without leading dashes\n",
    );
}

#[test]
fn a_refused_build_leaves_an_existing_dist_untouched() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let before = snapshot(&project.path("dist"));
    project.write("cluster.toml", &with("127.0.1.3", "not-an-ip"));
    project
        .run_build(&[])
        .status(2)
        .stderr("error: cluster.toml:26:6: `nodes[2].ip`: `not-an-ip` is not an IP address\n")
        .check();
    assert_eq!(snapshot(&project.path("dist")), before);
}

#[test]
fn a_foreign_output_folder_is_not_replaced() {
    let project = Project::new(INVENTORY);
    project.write("dist/notes.txt", "mine");
    project
        .run_build(&[])
        .status(2)
        .stderr(
            "error: `dist`: holds `notes.txt`, which kube-bundle did not write\n\
             hint: the output folder is replaced on every build: pass `-o` an empty or new folder\n",
        )
        .check();
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
        "error: `cluster.toml`: TOML parse error at line 4, column 22\n  |\n4 | service-cidr = 10.254.0.0/16\n  |                      ^^^^^^^\ninvalid float, expected nothing\n\n",
    );
}

/// The review's findings on inventories that passed validation and failed later (M4, L1,
/// L6, L7): each is now refused up front, with nothing written, not even pki/.
#[test]
fn what_used_to_fail_late_is_refused_up_front() {
    const URL_HINT: &str =
        "hint: write it as `https://HOST:PORT`, with `{{node.ip}}` standing for each master's own IP\n";
    const DURATION_HINT: &str = "hint: write durations like `8760h` (hours), `365d` or `90d12h`\n";
    refused_up_front(
        &with("[pki]\n", "[pki]\nca-validity = \"3000000d\"\n"),
        &format!("error: cluster.toml:8:15: `pki.ca-validity`: `3000000d` is longer than Go's longest duration, 2562047h, which Kubernetes flags cannot exceed\n{DURATION_HINT}"),
    );
    refused_up_front(
        &with("[pki]\n", "[pki]\ncert-validity = \"200000d\"\n"),
        &format!("error: cluster.toml:8:17: `pki.cert-validity`: `200000d` is longer than Go's longest duration, 2562047h, which Kubernetes flags cannot exceed\n{DURATION_HINT}"),
    );
    for (url, why) in [
        ("https://:6443", " has no valid host"),
        ("https://a:6443:6443", " has a bad port `6443:6443`"),
        (
            "https://?x",
            " has a query, fragment or user part; kubeconfigs take `https://HOST:PORT`",
        ),
        ("https://[fd00::1", " has an unclosed `[`"),
        (
            "https://{{node.ip}}:6443/{{node.name}}",
            ": `{{node.ip}}` may stand only for the host",
        ),
    ] {
        refused_up_front(
            &with("https://{{node.ip}}:6443", url),
            &format!("error: cluster.toml:3:13: `cluster.apiserver`: `{url}`{why}\n{URL_HINT}"),
        );
    }
    let long =
        "n".repeat(63) + "." + &"n".repeat(63) + "." + &"n".repeat(63) + "." + &"n".repeat(40);
    refused_up_front(
        &with("name = \"m3\"", &format!("name = \"{long}\"")),
        "error: cluster.toml:25:8: `nodes[2].name`: is 232 characters long; the bundle's file name would not fit\n\
         hint: use a name of at most 200 characters, such as the host's short name\n",
    );
    refused_up_front(
        &with("name = \"m2\"", "name = \"M1\""),
        "error: cluster.toml:21:8: `nodes[1].name`: node name `M1` is listed twice (first as `m1`; host names ignore case)\n",
    );
    refused_up_front(
        &with("ip = \"127.0.1.2\"", "ip = \"::ffff:127.0.1.1\""),
        "error: cluster.toml:22:6: `nodes[1].ip`: node IP `127.0.1.1` is listed twice (first as `127.0.1.1`)\n",
    );
    refused_up_front(
        &format!("{INVENTORY}\n[kube-controller-manager.extra-args]\nbind-address = \"0.0.0.0\"\n"),
        "error: cluster.toml:29:16: `kube-controller-manager.extra-args.bind-address`: `--bind-address` is set by kube-bundle\n\
         hint: kube-bundle writes `--bind-address` for kube-controller-manager; it cannot be overridden\n",
    );
    refused_up_front(
        &format!("{INVENTORY}\n[kube-controller-manager.extra-args]\nv = 4\n\"--v\" = 5\n"),
        "error: cluster.toml:29:5: `kube-controller-manager.extra-args.v`: `--v` is set twice\n\
         hint: keep one spelling: names are written without leading dashes\n",
    );
}

/// [`refused`] with nothing set up: these inputs once failed late, after pki/ was made.
#[track_caller]
fn refused_up_front(inventory: &str, stderr: &str) {
    refused(inventory, no_setup, stderr);
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
    const TOO_LARGE_V4: &str = "is larger than kube-apiserver 1.20.2 takes: an IPv4 service range needs a prefix of /12 or longer";
    const TOO_SMALL_V4: &str = "kube-apiserver needs at least 8 (an IPv4 prefix of /29 or shorter)";
    for (cidr, why, example) in [
        ("10.0.0.0/8", TOO_LARGE_V4, "10.254.0.0/16"),
        ("0.0.0.0/0", TOO_LARGE_V4, "10.254.0.0/16"),
        (
            "10.254.0.0/32",
            &format!("holds 1 address(es); {TOO_SMALL_V4}"),
            "10.254.0.0/16",
        ),
        (
            "10.254.0.0/31",
            &format!("holds 2 address(es); {TOO_SMALL_V4}"),
            "10.254.0.0/16",
        ),
        (
            "fd00::/64",
            "is larger than kube-apiserver 1.20.2 takes: an IPv6 service range needs a prefix of /108 or longer",
            "fd00:10:96::/112",
        ),
    ] {
        refused_up_front(
            &with("10.254.0.0/16", cidr),
            &format!("error: cluster.toml:4:16: `cluster.service-cidr`: `{cidr}` {why}\n\
                     hint: pick a range such as `{example}`\n"),
        );
    }
}

/// The review's part 3, rows 9 and 10: work and data folders inside install.sh's
/// releases, on the node's system folders or written with `.` are refused.
#[test]
fn work_and_data_dirs_on_system_or_kube_bundle_folders() {
    const RELEASES: &str = "overlaps install.sh's releases `/var/backups/kube-bundle`";
    const SYSTEM: &str = "is a system folder: removing or filling it would break the node";
    const PLAIN: &str =
        "is not an absolute path written plainly (no `.`, `..`, doubled or trailing `/`)";
    for (dir, shown, why) in [
        (
            "/var/backups/kube-bundle",
            "/var/backups/kube-bundle",
            RELEASES,
        ),
        (
            "/var/backups/kube-bundle/k8s",
            "/var/backups/kube-bundle/k8s",
            RELEASES,
        ),
        ("/", "/", SYSTEM),
        ("/etc", "/etc", SYSTEM),
        ("/usr/", "/usr", SYSTEM),
        ("/var/lib", "/var/lib", SYSTEM),
        ("/home", "/home", SYSTEM),
        ("/lib64", "/lib64", SYSTEM),
        (
            "/etc/kubernetes",
            "/etc/kubernetes",
            "overlaps the configuration folder `/etc/kubernetes`",
        ),
        (
            "/opt/k8s/bin",
            "/opt/k8s/bin",
            "overlaps the binaries' folder `/opt/k8s/bin`",
        ),
        ("/./data", "/./data", PLAIN),
        ("/data//k8s", "/data//k8s", PLAIN),
    ] {
        refused_up_front(
            &with("[cluster]\n", &format!("[cluster]\nk8s-dir = \"{dir}\"\n")),
            &format!(
                "error: cluster.toml:2:11: `cluster.k8s-dir`: `{shown}` {why}\n\
                     hint: give the work dirs a folder of their own, such as /data/k8s/k8s\n"
            ),
        );
    }
    let etcd = |key: &str, dir: &str| whole_plane(&format!("{key} = \"{dir}\"\n"));
    for (key, dir, shown, why) in [
        (
            "data-dir",
            "/etc/systemd/system",
            "/etc/systemd/system",
            "overlaps the units' folder `/etc/systemd/system`",
        ),
        ("data-dir", "/usr", "/usr", SYSTEM),
        ("data-dir", "/home", "/home", SYSTEM),
        ("data-dir", "/boot/", "/boot", SYSTEM),
        (
            "data-dir",
            "/var/backups/kube-bundle/etcd",
            "/var/backups/kube-bundle/etcd",
            RELEASES,
        ),
        ("wal-dir", "/tmp", "/tmp", SYSTEM),
        ("wal-dir", "/data//wal", "/data//wal", PLAIN),
    ] {
        // The value, quote and all, starts after `key = `.
        let column = key.len() + 4;
        refused_up_front(
            &etcd(key, dir),
            &format!(
                "error: cluster.toml:30:{column}: `etcd.{key}`: `{shown}` {why}\n\
                     hint: keep etcd's data in a folder of its own, such as /data/k8s/etcd/data\n"
            ),
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
        // The value, quote and all, starts after `flag = `.
        let column = flag.len() + 4;
        refused_up_front(
            &section(name, flag, value),
            &format!("error: cluster.toml:31:{column}: `{name}.extra-args.{flag}`: `--{flag}` is set by kube-bundle\n\
                     hint: kube-bundle writes `--{flag}` for {name}; it cannot be overridden\n"),
        );
    }
}
