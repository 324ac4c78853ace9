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
