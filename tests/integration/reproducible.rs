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
        "5d546eaa1eff514ccf08320bc635e44a48232af96268286fabf981acf1feff25",
        "43fdbe4b6c59077d874b9c848c532298e4f56cb4fab6f265f7ba9311e04b62d3",
        "d688523a22f7ba3a17fd5c5dd8c75acab3bbf947802e9eabd12a8ecc186db8de",
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
