//! `kube-bundle init`, from nothing and from the tutorial's environment.sh.

use std::path::Path;

use crate::common::*;

fn reference_env() -> &'static Path {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/environment.sh");
    Box::leak(p.into_boxed_path())
}

#[test]
fn imports_environment_sh_without_running_it() {
    let project = Project::new("");
    // A command substitution that would leave a trace if the file were executed.
    let env = std::fs::read_to_string(reference_env()).unwrap()
        + &format!(
            "export TRAP=$(touch {})\n",
            project.path("executed").display()
        );
    project.write("environment.sh", &env);
    let out = project.kube_bundle(&[
        "init",
        "--from-env",
        "environment.sh",
        "-o",
        "imported.toml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !project.path("executed").exists(),
        "environment.sh was executed"
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "used CLUSTER_CIDR, CLUSTER_DNS_DOMAIN, ETCD_ENDPOINTS, K8S_DIR, KUBE_APISERVER, NODE_IPS, NODE_NAMES, SERVICE_CIDR\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("ignored BOOTSTRAP_TOKEN, ENCRYPTION_KEY, IFACE, PATH, TRAP\n"),
        "{err}"
    );

    let text = std::fs::read_to_string(project.path("imported.toml")).unwrap();
    for want in [
        "name = \"k8s-master-01\"\nip = \"10.10.0.11\"",
        "name = \"k8s-master-03\"\nip = \"10.10.0.13\"",
        "\nworker-apiserver = \"https://127.0.0.1:8443\"\n",
        "service-cidr = \"10.96.0.0/16\"",
        "cluster-cidr = \"10.244.0.0/16\"",
        "k8s-dir = \"/srv/k8s\"",
        "dns-domain = \"cluster.local\"",
        "[kube-apiserver]\n",
        "[etcd]\nversion = \"3.4\"",
        "client-port = 2379\npeer-port = 2380\n",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // ENCRYPTION_KEY runs a command: a new key on every `source`, the tutorial's trap.
    assert!(
        err.contains("ENCRYPTION_KEY runs a command, which would make a new key each time environment.sh is sourced; not taken"),
        "{err}"
    );
    assert!(!project.path("pki/encryption-key").exists());
    // KUBE_APISERVER is the tutorial's kube-nginx proxy for workers: kept for them, and
    // not what the controller-manager and scheduler talk to.
    assert!(
        err.contains("KUBE_APISERVER `https://127.0.0.1:8443` (the tutorial's kube-nginx proxy, for kubelets and kube-proxy) kept as `worker-apiserver`; the masters' components talk to their own master's API server\n"),
        "{err}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("apiserver")),
        "cluster.apiserver is set:\n{text}"
    );
    let inv = kube_bundle::load::config::load(&project.path("imported.toml")).unwrap();
    assert!(!inv.cluster.apiserver_set);
    assert_eq!(
        inv.cluster.worker_apiserver.as_deref(),
        Some("https://127.0.0.1:8443")
    );
    // The written inventory builds, each master's controller-manager and scheduler
    // pointed at its own apiserver.
    std::fs::rename(project.path("imported.toml"), project.path("cluster.toml")).unwrap();
    project.build_ok();
    let bundle = project.unpack("k8s-master-02");
    for kubeconfig in ["kube-controller-manager", "kube-scheduler"] {
        let text = std::fs::read_to_string(
            bundle.join(format!("rootfs/etc/kubernetes/{kubeconfig}.kubeconfig")),
        )
        .unwrap();
        assert!(
            text.contains("server: https://10.10.0.12:6443\n"),
            "{kubeconfig}: {text}"
        );
    }
}

#[test]
fn refuses_to_overwrite_and_rejects_mismatched_arrays() {
    let project = Project::new("existing");
    project
        .run(&["init"])
        .status(2)
        .stderr(
            "error: `cluster.toml`: already exists\n\
             hint: pass --force to overwrite it, or -o another file\n",
        )
        .check();
    assert_eq!(
        std::fs::read_to_string(project.path("cluster.toml")).unwrap(),
        "existing"
    );

    project.write("env.sh", "NODE_NAMES=(a b)\nNODE_IPS=(10.0.0.1)\n");
    project
        .run(&["init", "--from-env", "env.sh", "-o", "x.toml"])
        .status(2)
        .stderr("error: `env.sh`: `NODE_IPS`: has 1 entries but NODE_NAMES has 2\n")
        .check();
    assert!(!project.path("x.toml").exists());
}

#[test]
fn a_fresh_inventory_builds() {
    let project = Project::new("");
    std::fs::remove_file(project.path("cluster.toml")).unwrap();
    let out = project.kube_bundle(&["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    project.build_ok();
    assert!(project.tarball("master-1").exists());
}

/// The tutorial's apiserver variables: the node port range, the cluster domain, a literal
/// encryption key kept in pki/, and the kubernetes service IP checked against the range.
const APISERVER_ENV: &str = "NODE_NAMES=(m1 m2)\nNODE_IPS=(127.0.1.1 127.0.1.2)\n\
    SERVICE_CIDR=\"10.254.0.0/16\"\nexport CLUSTER_KUBERNETES_SVC_IP=\"10.254.0.1\"\n\
    export NODE_PORT_RANGE=\"31000-32000\"\nexport CLUSTER_DNS_DOMAIN=\"k8s.example\"\n\
    export ETCD_ENDPOINTS=\"https://127.0.1.1:2379,https://127.0.1.2:2379\"\n\
    export ETCD_NODES=\"m1=https://127.0.1.1:2390,m2=https://127.0.1.2:2390\"\n\
    export ETCD_DATA_DIR=\"/srv/etcd/data\"\nexport ETCD_WAL_DIR=\"/ssd/etcd/wal\"\n\
    export ENCRYPTION_KEY=\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n";

#[test]
fn apiserver_settings_come_from_environment_sh() {
    let project = Project::new("");
    std::fs::remove_file(project.path("cluster.toml")).unwrap();
    project.write("environment.sh", APISERVER_ENV);
    let out = project.kube_bundle(&["init", "--from-env", "environment.sh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("used CLUSTER_DNS_DOMAIN, CLUSTER_KUBERNETES_SVC_IP, ENCRYPTION_KEY, ETCD_DATA_DIR, ETCD_ENDPOINTS, ETCD_NODES, ETCD_WAL_DIR, NODE_IPS, NODE_NAMES, NODE_PORT_RANGE, SERVICE_CIDR\n"), "{err}");
    assert!(err.contains("wrote ENCRYPTION_KEY into `"), "{err}");
    let key = project.path("pki/encryption-key");
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
    );
    assert_eq!(mode_of(&key), 0o600);
    let text = std::fs::read_to_string(project.path("cluster.toml")).unwrap();
    for want in [
        "dns-domain = \"k8s.example\"",
        "service-node-port-range = \"31000-32000\"",
        "peer-port = 2390\n",
        "data-dir = \"/srv/etcd/data\"\nwal-dir = \"/ssd/etcd/wal\"",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // With the section switched on, the bundles carry that key, range and domain.
    let on = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with("[kube-apiserver")
                    || rest.starts_with("service-node-port-range")
                    || rest.starts_with("etcd-servers") =>
            {
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    project.write("cluster.toml", &on);
    project.build_ok();
    let bundle = project.unpack("m1");
    let config =
        std::fs::read_to_string(bundle.join("rootfs/etc/kubernetes/encryption-config.yaml"))
            .unwrap();
    assert!(
        config.contains("secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"),
        "{config}"
    );
    let etcd =
        std::fs::read_to_string(bundle.join("rootfs/etc/systemd/system/etcd.service")).unwrap();
    assert!(
        etcd.contains("--data-dir=/srv/etcd/data \\\n  --wal-dir=/ssd/etcd/wal \\\n"),
        "{etcd}"
    );
    assert!(
        etcd.contains("--initial-cluster=m1=https://127.0.1.1:2390,m2=https://127.0.1.2:2390 "),
        "{etcd}"
    );
    let unit =
        std::fs::read_to_string(bundle.join("rootfs/etc/systemd/system/kube-apiserver.service"))
            .unwrap();
    assert!(
        unit.contains("--service-node-port-range=31000-32000"),
        "{unit}"
    );
    assert!(
        unit.contains("--service-account-issuer=https://kubernetes.default.svc.k8s.example"),
        "{unit}"
    );
    // Run again, the same key is fine; another one is refused and nothing changes.
    let again = project.kube_bundle(&["init", "--from-env", "environment.sh", "-o", "again.toml"]);
    assert!(again.status.success(), "{}", stderr(&again));
    project.write("other.sh", &APISERVER_ENV.replace("MDEy", "QUJD"));
    project
        .run(&["init", "--from-env", "other.sh", "-o", "other.toml"])
        .status(2)
        .stderr(
            "error: `pki/encryption-key`: holds another encryption key than ENCRYPTION_KEY\n\
             hint: keep the key Secrets are encrypted with: remove ENCRYPTION_KEY from environment.sh, or restore that key into the file\n",
        )
        .check();
    assert!(!project.path("other.toml").exists());
}

#[test]
fn environment_sh_mistakes_are_refused_naming_the_variable() {
    let project = Project::new("");
    for (find, replace, stderr) in [
        (
            "CLUSTER_KUBERNETES_SVC_IP=\"10.254.0.1\"",
            "CLUSTER_KUBERNETES_SVC_IP=\"10.254.0.2\"",
            "error: `env.sh`: `CLUSTER_KUBERNETES_SVC_IP`: `10.254.0.2` is not the first IP of SERVICE_CIDR `10.254.0.0/16`, 10.254.0.1, which the cluster gives the `kubernetes` service\n\
             hint: set CLUSTER_KUBERNETES_SVC_IP=\"10.254.0.1\", or change SERVICE_CIDR\n",
        ),
        (
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "MDEyMzQ1Njc4OWFiY2RlZg==",
            "error: `env.sh`: `ENCRYPTION_KEY`: decodes to 16 bytes; an aescbc key is 32\n\
             hint: give the cluster's key, the base64 of 32 bytes (`head -c 32 /dev/urandom | base64`)\n",
        ),
        (
            "NODE_PORT_RANGE=\"31000-32000\"",
            "NODE_PORT_RANGE=\"32000-31000\"",
            "error: `env.sh`: `NODE_PORT_RANGE`: `32000-31000` is not a port range like `30000-32767`\n",
        ),
        (
            "CLUSTER_DNS_DOMAIN=\"k8s.example\"",
            "CLUSTER_DNS_DOMAIN=\"k8s.example.\"",
            "error: `env.sh`: `CLUSTER_DNS_DOMAIN`: `k8s.example.` ends with a dot\n\
             hint: write it without the trailing dot, as the tutorial asks: `k8s.example`\n",
        ),
        (
            "m2=https://127.0.1.2:2390",
            "m3=https://127.0.1.2:2390",
            "error: `env.sh`: `ETCD_NODES`: names the members m1=127.0.1.1 m3=127.0.1.2 but NODE_NAMES and NODE_IPS are m1=127.0.1.1 m2=127.0.1.2\n\
             hint: etcd runs on every master: one member per node, with its name and IP, in the same order\n",
        ),
        (
            "https://127.0.1.2:2379",
            "https://127.0.1.9:2379",
            "error: `env.sh`: `ETCD_ENDPOINTS`: names the IPs 127.0.1.1 127.0.1.9 but NODE_IPS is (127.0.1.1 127.0.1.2)\n\
             hint: etcd runs on every master: list one endpoint per NODE_IPS entry, in the same order\n",
        ),
    ] {
        assert!(APISERVER_ENV.contains(find), "{find}");
        project.write("env.sh", &APISERVER_ENV.replace(find, replace));
        project
            .run(&["init", "--from-env", "env.sh", "-o", "x.toml"])
            .status(2)
            .stderr(stderr)
            .check();
        assert!(!project.path("x.toml").exists());
        assert!(!project.path("pki").exists());
    }
}
