//! Byte-for-byte reproducible bundles: the same inventory, pki/ and binary give the same
//! tarballs, and fixture keys give pinned hashes.

use std::path::Path;

use crate::common::*;

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

pub(crate) fn fixture_project() -> Project {
    let project = Project::new("");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden"),
        project.dir.path(),
    );
    project
}

pub(crate) fn hashes(project: &Project) -> Vec<String> {
    NODES
        .iter()
        .map(|(n, _)| sha256_file(&project.tarball(n)))
        .collect()
}

#[test]
fn two_builds_from_the_same_state_are_identical() {
    let a = Project::new(INVENTORY);
    a.build_ok();
    // A second project with a copy of the first one's pki/, built separately.
    let b = Project::new(INVENTORY);
    copy_tree(&a.path("pki"), &b.path("pki"));
    b.build_ok();
    assert_eq!(hashes(&a), hashes(&b));
    // And again in place.
    let first = hashes(&a);
    std::fs::remove_dir_all(a.path("dist")).unwrap();
    a.build_ok();
    assert_eq!(hashes(&a), first);
}

#[test]
fn fixture_keys_give_the_pinned_hashes() {
    let project = fixture_project();
    let log = project.build_ok();
    assert!(
        !log.contains("issued") && !log.contains("generated"),
        "the fixture pki/ is reused as is: {log}"
    );
    // These change whenever a template, a default flag or the archive format changes:
    // review the difference, then pin the values `scripts/repin.sh` prints.
    let pinned = [
        "f906015143ed8114b3759a2997435f5bdfee2576e5c1faba19ccbc47750b9dad",
        "b12492dde01174d268767d2017d0f7984610e847d10083306e2fddaae1b3c4f4",
        "484c83b70b489ed4bdc730ac8402719bb7a14a777ec5660f0457a66c09d66073",
    ];
    assert_eq!(
        hashes(&project),
        pinned,
        "bundle hashes moved; new values: {:#?}",
        hashes(&project)
    );
}

#[test]
fn source_date_epoch_sets_every_mtime() {
    let project = fixture_project();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(["build", "-c", "cluster.toml", "-o", "dist"])
        .current_dir(project.dir.path())
        .env("SOURCE_DATE_EPOCH", "1234567890")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = run_ok(
        std::process::Command::new(tool("tar"))
            .args(["--full-time", "-tvzf"])
            .arg(project.tarball("m1"))
            .env("TZ", "UTC"),
    );
    assert!(
        listing.lines().all(|l| l.contains("2009-02-13 23:31:30")),
        "{listing}"
    );
}
