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
            "used CLUSTER_CIDR, K8S_DIR, KUBE_APISERVER, NODE_IPS, NODE_NAMES, SERVICE_CIDR\n"
        ),
        "{err}"
    );
    assert!(err.contains("ignored BOOTSTRAP_TOKEN, CLUSTER_DNS_DOMAIN, ENCRYPTION_KEY, ETCD_ENDPOINTS, IFACE, PATH, TRAP\n"), "{err}");

    let text = std::fs::read_to_string(project.path("imported.toml")).unwrap();
    for want in [
        "name = \"k8s-master-01\"\nip = \"10.10.0.11\"",
        "name = \"k8s-master-03\"\nip = \"10.10.0.13\"",
        "apiserver = \"https://127.0.0.1:8443\"",
        "service-cidr = \"10.96.0.0/16\"",
        "cluster-cidr = \"10.244.0.0/16\"",
        "k8s-dir = \"/srv/k8s\"",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // The written inventory builds.
    std::fs::rename(project.path("imported.toml"), project.path("cluster.toml")).unwrap();
    project.build_ok();
}

#[test]
fn refuses_to_overwrite_and_rejects_mismatched_arrays() {
    let project = Project::new("existing");
    let out = project.kube_bundle(&["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`cluster.toml`: already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(project.path("cluster.toml")).unwrap(),
        "existing"
    );

    project.write("env.sh", "NODE_NAMES=(a b)\nNODE_IPS=(10.0.0.1)\n");
    let out = project.kube_bundle(&["init", "--from-env", "env.sh", "-o", "x.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`NODE_IPS`: has 1 entries but NODE_NAMES has 2"),
        "{}",
        stderr(&out)
    );
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
