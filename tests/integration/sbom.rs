//! sbom.spdx.json in every bundle: every file the tarball carries with its sha256 (as
//! sha256sum computes it), the binary with where the inventory took it from, the same
//! document wherever the build ran; and `verify` refusing one that does not match.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn sbom_of(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("sbom.spdx.json")).unwrap()).unwrap()
}

/// Every file of the unpacked bundle but the SBOM, SHA256SUMS and its signature, with
/// the sha256 sha256sum gives it.
fn sha256sum_all(bundle: &Path) -> Vec<(String, String)> {
    let files = crate::verify::sbom_subjects(bundle);
    let out = run_ok(
        Command::new(tool("sha256sum"))
            .args(&files)
            .current_dir(bundle),
    );
    out.lines()
        .map(|l| {
            let (sha, path) = l.split_once("  ").unwrap();
            (path.to_string(), sha.to_string())
        })
        .collect()
}

fn listed(sbom: &Value) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["checksums"][0]["algorithm"], "SHA256");
            (
                f["fileName"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("./")
                    .unwrap()
                    .to_string(),
                f["checksums"][0]["checksumValue"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_file_is_listed_with_its_sha256_and_the_binary_with_its_origin() {
    let project = Project::with_fake_binary();
    project.build_ok();
    let bundle = project.unpack("m1");
    let sbom = sbom_of(&bundle);
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    assert_eq!(sbom["dataLicense"], "CC0-1.0");
    assert_eq!(sbom["name"], "control-plane-m1");
    assert_eq!(sbom["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let mut want = sha256sum_all(&bundle);
    want.sort();
    assert!(want.iter().any(|(p, _)| p == "manifest.json"));
    assert!(want.iter().any(|(p, _)| p == "install.sh"));
    assert_eq!(listed(&sbom), want);
    // SHA256SUMS lists the SBOM, so a signature over SHA256SUMS covers it too.
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&format!(
        "{}  sbom.spdx.json\n",
        sha256_file(&bundle.join("sbom.spdx.json"))
    )));

    let binary = "rootfs/opt/k8s/bin/kube-controller-manager";
    let packages = sbom["packages"].as_array().unwrap();
    assert_eq!(
        packages.len(),
        2,
        "the bundle and its one binary: {packages:#?}"
    );
    let bin = &packages[1];
    assert_eq!(bin["name"], "kube-controller-manager");
    assert_eq!(bin["packageFileName"], "fake-kcm");
    assert_eq!(bin["versionInfo"], "1.20.2");
    assert_eq!(
        bin["sourceInfo"],
        "carried from `fake-kcm` (inventory key kube-controller-manager.binary)"
    );
    assert_eq!(
        bin["checksums"][0]["checksumValue"],
        sha256_file(&project.path("fake-kcm"))
    );
    let file_id = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == format!("./{binary}"))
        .unwrap()["SPDXID"]
        .clone();
    assert!(sbom["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["spdxElementId"] == bin["SPDXID"]
            && r["relationshipType"] == "CONTAINS"
            && r["relatedSpdxElement"] == file_id));

    // The inventory named by its absolute path, the build run from elsewhere: the same
    // document, so the bundle keeps its bytes.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(["build", "-c"])
        .arg(project.path("cluster.toml"))
        .arg("-o")
        .arg(project.path("dist-again"))
        .current_dir(elsewhere.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("KUBE_BUNDLE_CACHE", project.path("member-cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sha256_file(&project.path("dist-again/control-plane-m1.tar.gz")),
        sha256_file(&project.tarball("m1"))
    );
}

/// m1's bundle with its SBOM edited by `change` and packed again; with `fix_sums`,
/// SHA256SUMS is brought up to date for it, as a forger would.
fn tamper(project: &Project, fix_sums: bool, change: impl FnOnce(&mut Value)) {
    let bundle = project.unpack("m1");
    let mut sbom = sbom_of(&bundle);
    change(&mut sbom);
    let path = bundle.join("sbom.spdx.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&sbom).unwrap()).unwrap();
    if fix_sums {
        let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).unwrap();
        let sums: String = sums
            .lines()
            .map(|l| match l.split_once("  ") {
                Some((_, "sbom.spdx.json")) => {
                    format!("{}  sbom.spdx.json\n", sha256_file(&path))
                }
                _ => format!("{l}\n"),
            })
            .collect();
        std::fs::write(bundle.join("SHA256SUMS"), sums).unwrap();
    }
    run_ok(
        Command::new(tool("tar"))
            .arg("-czf")
            .arg(project.tarball("m1"))
            .arg("-C")
            .arg(bundle.parent().unwrap())
            .arg("control-plane-m1"),
    );
    std::fs::remove_dir_all(bundle.parent().unwrap()).unwrap();
}

fn verify_m1(project: &Project) -> (Option<i32>, String) {
    let out = project.kube_bundle(&["verify", project.tarball("m1").to_str().unwrap()]);
    (out.status.code(), stdout(&out))
}

#[test]
fn verify_refuses_an_sbom_that_does_not_match_the_bundle() {
    let project = Project::with_fake_binary();
    project.build_ok();
    let pristine = std::fs::read(project.tarball("m1")).unwrap();
    assert_eq!(verify_m1(&project).0, Some(0));

    // Edited alone: SHA256SUMS no longer matches it.
    tamper(&project, false, |s| s["name"] = "forged".into());
    assert_eq!(
        verify_m1(&project),
        (
            Some(1),
            "control-plane-m1.tar.gz: sbom.spdx.json: does not match its checksum in SHA256SUMS\n"
                .to_string()
        )
    );

    // SHA256SUMS made to agree: the SBOM's own check names each lie.
    std::fs::write(project.tarball("m1"), &pristine).unwrap();
    let unit = "rootfs/etc/systemd/system/kube-controller-manager.service";
    let binary = "rootfs/opt/k8s/bin/kube-controller-manager";
    tamper(&project, true, |s| {
        let files = s["files"].as_array_mut().unwrap();
        for f in files.iter_mut() {
            if f["fileName"] == "./install.sh" {
                f["checksums"][0]["checksumValue"] = "0".repeat(64).into();
            }
        }
        files.retain(|f| f["fileName"] != format!("./{unit}"));
        s["packages"].as_array_mut().unwrap().truncate(1);
    });
    let zeros = "0".repeat(64);
    let install_sha = {
        let bundle = project.unpack("m1");
        sha256_file(&bundle.join("install.sh"))
    };
    assert_eq!(
        verify_m1(&project),
        (
            Some(1),
            format!(
                "control-plane-m1.tar.gz: sbom.spdx.json: gives `install.sh` the sha256 {zeros}, \
                 but SHA256SUMS has {install_sha}\n\
                 control-plane-m1.tar.gz: sbom.spdx.json: does not list `{unit}`\n\
                 control-plane-m1.tar.gz: sbom.spdx.json: names no origin for the binary `{binary}`\n"
            )
        )
    );

    // A file the bundle does not carry, listed: named as such; a changed file is
    // SHA256SUMS's finding alone.
    std::fs::write(project.tarball("m1"), &pristine).unwrap();
    tamper(&project, true, |s| {
        let mut extra = s["files"][0].clone();
        extra["fileName"] = "./rootfs/etc/extra".into();
        extra["SPDXID"] = "SPDXRef-File-extra".into();
        s["files"].as_array_mut().unwrap().push(extra);
    });
    assert_eq!(
        verify_m1(&project),
        (
            Some(1),
            "control-plane-m1.tar.gz: sbom.spdx.json: lists `rootfs/etc/extra`, which SHA256SUMS does not\n"
                .to_string()
        )
    );

    // Not SPDX at all.
    std::fs::write(project.tarball("m1"), &pristine).unwrap();
    tamper(&project, true, |s| *s = serde_json::json!({"bom": 1}));
    let (code, text) = verify_m1(&project);
    assert_eq!(code, Some(1));
    assert!(
        text.starts_with(
            "control-plane-m1.tar.gz: sbom.spdx.json: is not an SPDX JSON document (missing field"
        ),
        "{text}"
    );
}
