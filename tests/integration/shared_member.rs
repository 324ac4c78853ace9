//! Bundles carrying a binary: the binary is compressed once and spliced into every tarball
//! as its own gzip member. Each tarball must still unpack to the same files with GNU tar,
//! busybox tar and Python's tarfile, build to the same bytes twice, and be summarised by
//! `--output json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Larger than two deflate blocks and not a multiple of 512, so the member holds several
/// blocks and the entry's tar padding.
const BINARY_LEN: usize = (5 << 20) / 2 + 333;

/// Executable-like bytes: structured runs and noise, reproducible.
fn binary_bytes() -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..BINARY_LEN)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 5 < 3 {
                (i / 100) as u8
            } else {
                x as u8
            }
        })
        .collect()
}

fn project_with_binary() -> Project {
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-controller-manager]\nbinary = \"kcm\"\n"
    ));
    project.write_binary(
        "kcm",
        &stand_in_with("kube-controller-manager", "1.20.2", &binary_bytes()),
    );
    project
}

/// Every entry under `root`: relative path, mode, sha256 (files) or "dir".
fn tree(root: &Path) -> Vec<(String, String, u32)> {
    snapshot(root)
        .into_iter()
        .map(|(p, sha, mode)| (p, if sha.is_empty() { "dir".into() } else { sha }, mode))
        .collect()
}

/// Python's tarfile as a pipeline would use it; the `tar` filter where this Python has it.
const PYTHON_UNPACK: &str = "import sys, tarfile
kw = {'filter': 'tar'} if hasattr(tarfile, 'tar_filter') else {}
with tarfile.open(sys.argv[1], 'r:gz') as t:
    t.extractall(sys.argv[2], **kw)
";

fn unpack_with(project: &Project, node: &str, how: &str) -> PathBuf {
    let into = project.path(&format!("{how}-{node}"));
    std::fs::create_dir_all(&into).unwrap();
    let tarball = project.tarball(node);
    match how {
        "gnu-tar" => run_ok(
            Command::new(tool("tar"))
                .arg("-xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&into),
        ),
        "busybox" => run_ok(
            Command::new(tool("busybox"))
                .args(["tar", "-xzf"])
                .arg(&tarball)
                .arg("-C")
                .arg(&into),
        ),
        "python" => run_ok(
            Command::new(tool("python3"))
                .arg("-c")
                .arg(PYTHON_UNPACK)
                .arg(&tarball)
                .arg(&into),
        ),
        _ => unreachable!(),
    };
    into
}

#[test]
fn gnu_tar_busybox_and_python_unpack_the_same_files() {
    let project = project_with_binary();
    project.build_ok();
    for (node, _) in NODES {
        let gnu = tree(&unpack_with(&project, node, "gnu-tar"));
        assert!(gnu.len() > 10, "{gnu:?}");
        let bin = format!("control-plane-{node}/rootfs/opt/k8s/bin/kube-controller-manager");
        let want_sha = sha256_file(&project.path("kcm"));
        assert!(
            gnu.contains(&(bin.clone(), want_sha, 0o755)),
            "{node}: the binary comes out whole and executable"
        );
        for how in ["busybox", "python"] {
            assert_eq!(
                tree(&unpack_with(&project, node, how)),
                gnu,
                "{node}: {how} unpacks other files than GNU tar"
            );
        }
        // And the bundle's own checksums hold.
        run_ok(
            Command::new(tool("sha256sum"))
                .args(["-c", "--quiet", "SHA256SUMS"])
                .current_dir(project.path(&format!("gnu-tar-{node}/control-plane-{node}"))),
        );
        run_ok(
            Command::new(tool("gzip"))
                .arg("-t")
                .arg(project.tarball(node)),
        );
    }
}

#[test]
fn builds_with_a_binary_are_reproducible() {
    let a = project_with_binary();
    a.build_ok();
    let first: Vec<String> = NODES
        .iter()
        .map(|(n, _)| sha256_file(&a.tarball(n)))
        .collect();
    std::fs::remove_dir_all(a.path("dist")).unwrap();
    a.build_ok();
    let second: Vec<String> = NODES
        .iter()
        .map(|(n, _)| sha256_file(&a.tarball(n)))
        .collect();
    assert_eq!(first, second);
    assert_ne!(first[0], first[1], "each node has its own bundle");
}

#[test]
fn json_output_lists_every_bundle_with_size_and_sha256() {
    let project = project_with_binary();
    let out = project.build_with(&["--output", "json", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "--quiet prints nothing but warnings");
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let bundles = summary["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), NODES.len());
    for (b, (node, _)) in bundles.iter().zip(NODES) {
        let path = project.path(b["path"].as_str().unwrap());
        assert_eq!(path, project.tarball(node));
        assert_eq!(b["node"], node);
        assert_eq!(b["sha256"], sha256_file(&path));
        assert_eq!(b["size"], std::fs::metadata(&path).unwrap().len());
    }
    assert_eq!(summary["sha256sums"], "dist/SHA256SUMS");
    assert!(summary["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("generated a new CA")));
}

#[test]
fn no_progress_line_when_standard_error_is_not_a_terminal() {
    let project = project_with_binary();
    let log = project.build_ok();
    assert!(!log.contains('\r') && !log.contains("compressing"), "{log}");
}

/// The gzip members of a `.tar.gz`, each as its own bytes, in order.
fn gzip_members(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut members = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
        let left = decoder.into_inner();
        let used = rest.len() - left.len();
        assert!(used > 0, "no progress splitting members");
        members.push(rest[..used].to_vec());
        rest = left;
    }
    members
}

#[test]
fn two_binaries_are_each_compressed_once_and_shared_by_every_bundle() {
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-controller-manager]\nbinary = \"kcm\"\n[kube-scheduler]\nbinary = \"ks\"\n"
    ));
    let code = binary_bytes();
    let kcm = stand_in_with("kube-controller-manager", "1.20.2", &code);
    let reversed: Vec<u8> = code.iter().rev().copied().collect();
    let ks = stand_in_with("kube-scheduler", "1.20.2", &reversed);
    for (name, bytes) in [("kcm", &kcm), ("ks", &ks)] {
        project.write_binary(name, bytes);
    }
    project.build_ok();
    let mut shared: Option<Vec<Vec<u8>>> = None;
    for (node, _) in NODES {
        let tarball = std::fs::read(project.tarball(node)).unwrap();
        let members = gzip_members(&tarball);
        // Entries before the first binary, its member, entries between, the second
        // binary's member, the rest.
        assert_eq!(members.len(), 5, "{node}: {} members", members.len());
        let large: Vec<Vec<u8>> = members.into_iter().filter(|m| m.len() > 1 << 20).collect();
        assert_eq!(large.len(), 2, "{node}: one member per binary");
        match &shared {
            None => shared = Some(large),
            Some(first) => assert!(first == &large, "{node}: binary members differ"),
        }
        // And the tarball unpacks both binaries intact.
        let into = unpack_with(&project, node, "gnu-tar");
        let bin = into.join(format!("control-plane-{node}/rootfs/opt/k8s/bin"));
        assert!(std::fs::read(bin.join("kube-controller-manager")).unwrap() == kcm);
        assert!(std::fs::read(bin.join("kube-scheduler")).unwrap() == ks);
    }
}

/// The whole control plane: etcd, etcdctl, kube-apiserver, kube-controller-manager and
/// kube-scheduler are each deflated once per build, so each one's gzip member is the same
/// bytes in every node's bundle, and every bundle unpacks all five intact.
#[test]
fn the_whole_control_planes_binaries_are_each_compressed_once_and_shared() {
    // Five different executables of about 1.3 MiB: the same generator, each one varied.
    let base: Vec<u8> = binary_bytes()[..(1 << 20) + (1 << 18) + 77].to_vec();
    let variant = |k: u8| -> Vec<u8> {
        let mut v = base.clone();
        v.rotate_left(k as usize * 4099);
        v.iter().map(|b| b ^ k.wrapping_mul(37)).collect()
    };
    let binaries: Vec<(&str, &str, Vec<u8>)> = [
        ("etcd", "fake-etcd", "3.4.23"),
        ("etcdctl", "fake-etcdctl", "3.4.23"),
        ("kube-apiserver", "fake-kas", "1.20.2"),
        ("kube-controller-manager", "fake-kcm", "1.20.2"),
        ("kube-scheduler", "fake-ks", "1.20.2"),
    ]
    .into_iter()
    .zip(1..)
    .map(|((program, file, version), k)| {
        (program, file, stand_in_with(program, version, &variant(k)))
    })
    .collect();
    let project = Project::new(&format!(
        "{}\n[etcd]\nversion = \"3.4\"\nbinary = \"fake-etcd\"\netcdctl = \"fake-etcdctl\"\n\
         [kube-apiserver]\nbinary = \"fake-kas\"\n[kube-controller-manager]\nbinary = \"fake-kcm\"\n\
         [kube-scheduler]\nbinary = \"fake-ks\"\n",
        INVENTORY.replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
    ));
    for (_, file, bytes) in &binaries {
        project.write_binary(file, bytes);
    }
    project.build_ok();
    let mut shared: Option<Vec<Vec<u8>>> = None;
    for (node, _) in NODES {
        let members = gzip_members(&std::fs::read(project.tarball(node)).unwrap());
        // Each binary's member sits between members of the node's own entries.
        assert_eq!(members.len(), 11, "{node}: {} members", members.len());
        // A binary's member is over 256 KiB compressed; the node's own are far smaller.
        let large: Vec<Vec<u8>> = members
            .into_iter()
            .filter(|m| m.len() > 256 << 10)
            .collect();
        assert_eq!(large.len(), 5, "{node}: one member per binary");
        match &shared {
            None => shared = Some(large),
            Some(first) => {
                for (i, (a, b)) in first.iter().zip(&large).enumerate() {
                    assert!(a == b, "{node}: member of {} differs", binaries[i].0);
                }
            }
        }
        let into = unpack_with(&project, node, "gnu-tar");
        let bin = into.join(format!("control-plane-{node}/rootfs/opt/k8s/bin"));
        for (name, _, bytes) in &binaries {
            assert!(
                std::fs::read(bin.join(name)).unwrap() == *bytes,
                "{node}: {name} does not unpack intact"
            );
        }
    }
    // The five members are five different binaries, in the bundles' order.
    let shared = shared.unwrap();
    for (member, (name, _, bytes)) in shared.iter().zip(&binaries) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut out)
            .unwrap();
        // The member holds the binary's bytes (after its tar header when the member
        // carries it, and before the entry's padding).
        assert!(
            out.starts_with(bytes) || out.get(512..).is_some_and(|o| o.starts_with(bytes)),
            "{name}: the member is not this binary"
        );
    }
}
