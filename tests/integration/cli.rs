//! The command line itself: help that lists what the code reads, one meaning per flag
//! name, hints for the common slips, completions driven in real shells, man page
//! synopses and what `build --output json` says changed.

use crate::common::*;
use crate::registry::{assert_fails, Registry};

#[test]
fn a_plain_http_registry_without_plain_http_gets_a_hint() {
    let reg = Registry::start_with(false);
    let project = Project::new(INVENTORY);
    project.build_ok();
    let hint = "the registry answered in plain http: a registry on this machine takes --plain-http";
    let push = project.kube_bundle(&[
        "push",
        "--allow-plain-secrets",
        "-o",
        "dist",
        &reg.reference("v1"),
    ]);
    assert_fails(&push, 1, hint);
    assert!(!stderr(&push).contains("--ca-file"), "{}", stderr(&push));
    let pull = project.kube_bundle(&["pull", "-o", "pulled", &reg.reference("v1")]);
    assert_fails(&pull, 1, hint);

    // With the flag the same push goes through.
    let push = project.kube_bundle(&[
        "push",
        "--plain-http",
        "--allow-plain-secrets",
        "-o",
        "dist",
        &reg.reference("v1"),
    ]);
    assert!(push.status.success(), "{}", stderr(&push));
}

#[test]
fn a_folder_where_a_bundle_goes_and_a_bundle_where_a_folder_goes() {
    let project = Project::new(INVENTORY);
    project.build_ok();

    let out = project.kube_bundle(&["verify", "dist"]);
    assert_fails(&out, 2, "error: `dist`: is a folder, not a bundle");
    assert_fails(
        &out,
        2,
        "hint: verify takes the bundles themselves: `kube-bundle verify dist/control-plane-*.tar.gz` (3 here)",
    );

    let unpacked = project.unpack("m1");
    let out = project.kube_bundle(&["verify", unpacked.to_str().unwrap()]);
    assert_fails(&out, 2, "looks like an unpacked bundle");

    let out = project.kube_bundle(&["verify", "--trust", "dist", "dist/control-plane-m1.tar.gz"]);
    assert_fails(&out, 2, "error: --trust: `dist` is a folder");

    let out = project.kube_bundle(&[
        "push",
        "--plain-http",
        "-o",
        "dist/control-plane-m1.tar.gz",
        "127.0.0.1:1/k8s/control-plane:v1",
    ]);
    assert_fails(&out, 2, "is a file, not an output folder");
    assert_fails(&out, 2, "push takes the whole folder `build` wrote");
}

fn build_files(project: &Project) -> Vec<(String, String)> {
    let out = project.build_with(&["--output", "json", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap().to_string();
            let change = f["change"].as_str().unwrap().to_string();
            // A removed file has no sha256; every other one has the file's own.
            match change.as_str() {
                "removed" => assert!(f["sha256"].is_null(), "{f}"),
                _ => assert_eq!(
                    f["sha256"].as_str().unwrap(),
                    sha256_file(&project.path(&path)),
                    "{path}"
                ),
            }
            (path, change)
        })
        .collect()
}

#[test]
fn build_json_lists_each_output_file_and_its_change() {
    let project = Project::new(INVENTORY);
    let first = build_files(&project);
    let on_disk = file_names(&project.path("dist"), &[]);
    let listed: Vec<String> = first
        .iter()
        .map(|(p, _)| p.strip_prefix("dist/").unwrap().to_string())
        .collect();
    assert_eq!(listed, on_disk);
    assert!(first.iter().all(|(_, c)| c == "added"), "{first:?}");

    let again = build_files(&project);
    assert!(again.iter().all(|(_, c)| c == "unchanged"), "{again:?}");

    // m3 leaves: its bundle is removed, the others stay as they were, and the files that
    // name every master change.
    project.write(
        "cluster.toml",
        &INVENTORY.replace("[[nodes]]\nname = \"m3\"\nip = \"127.0.1.3\"\n", ""),
    );
    let shrunk: std::collections::BTreeMap<String, String> =
        build_files(&project).into_iter().collect();
    let change = |name: &str| shrunk[&format!("dist/{name}")].as_str();
    assert_eq!(change("control-plane-m3.tar.gz"), "removed");
    assert_eq!(change("control-plane-m1.tar.gz"), "unchanged");
    assert_eq!(change("control-plane-m2.tar.gz"), "unchanged");
    assert_eq!(change("rollout.sh"), "changed");
    assert_eq!(change("SHA256SUMS"), "changed");
    assert_eq!(change("ca.pem"), "unchanged");
}
