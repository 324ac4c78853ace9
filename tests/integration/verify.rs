//! `kube-bundle verify`, `certs`, `build --renew` and signed bundles. Broken bundles are
//! made with the real tools (openssl for certificates, GNU tar and sha256sum for the
//! archive) and kept internally consistent, so each test sees only the fault it plants.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

fn tarballs(project: &Project) -> Vec<String> {
    NODES
        .iter()
        .map(|(n, _)| project.tarball(n).display().to_string())
        .collect()
}

/// Unpacks `tarball`, lets `change` edit the bundle folder, then brings SHA256SUMS and
/// manifest.json up to date (files added under `rootfs/` listed, files removed dropped)
/// and packs it again in place: a consistent repack, as a forger would make it.
pub fn rewrite(tarball: &Path, change: impl FnOnce(&Path)) {
    let work = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(tool("tar"))
            .arg("-xzf")
            .arg(tarball)
            .arg("-C")
            .arg(work.path()),
    );
    let top = std::fs::read_dir(work.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    change(&top);
    let manifest_path = top.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let files = manifest["files"].as_array_mut().unwrap();
    files.retain(|f| top.join(f["path"].as_str().unwrap()).exists());
    let rootfs: Vec<String> = walkdir::WalkDir::new(top.join("rootfs"))
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&top).unwrap().display().to_string())
        .collect();
    for path in &rootfs {
        if !files.iter().any(|f| f["path"] == path.as_str()) {
            files.push(serde_json::json!({"path": path, "mode": "", "size": 0, "sha256": ""}));
        }
    }
    for f in files.iter_mut() {
        let path = top.join(f["path"].as_str().unwrap());
        f["sha256"] = serde_json::Value::String(sha256_file(&path));
        f["size"] = std::fs::metadata(&path).unwrap().len().into();
        if f["mode"] == "" {
            f["mode"] = format!("{:04o}", mode_of(&path)).into();
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    update_sbom(&top);
    let mut listed: Vec<String> = std::fs::read_to_string(top.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|l| l.split_once("  ").unwrap().1.to_string())
        .filter(|p| top.join(p).exists())
        .collect();
    for path in rootfs {
        if !listed.contains(&path) {
            listed.push(path);
        }
    }
    let sums = run_ok(
        Command::new(tool("sha256sum"))
            .args(&listed)
            .current_dir(&top),
    );
    std::fs::write(top.join("SHA256SUMS"), sums).unwrap();
    run_ok(
        Command::new(tool("tar"))
            .arg("-czf")
            .arg(tarball)
            .arg("-C")
            .arg(work.path())
            .arg(top.file_name().unwrap()),
    );
}

/// The files of the unpacked bundle at `top` that its SBOM lists: all but the SBOM,
/// SHA256SUMS and its signature.
pub fn sbom_subjects(top: &Path) -> Vec<String> {
    walkdir::WalkDir::new(top)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(top).unwrap().display().to_string())
        .filter(|p| !["SHA256SUMS", "SHA256SUMS.sig", "sbom.spdx.json"].contains(&p.as_str()))
        .collect()
}

/// sbom.spdx.json brought up to date with the files of the unpacked bundle at `top`: files
/// gone dropped, files added listed, every sha256 (and each binary package's) recomputed.
pub fn update_sbom(top: &Path) {
    let path = top.join("sbom.spdx.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let present = sbom_subjects(top);
    let files = doc["files"].as_array_mut().unwrap();
    files.retain(|f| present.iter().any(|p| format!("./{p}") == f["fileName"]));
    for (i, p) in present.iter().enumerate() {
        if !files.iter().any(|f| f["fileName"] == format!("./{p}")) {
            files.push(serde_json::json!({
                "fileName": format!("./{p}"),
                "SPDXID": format!("SPDXRef-File-added-{i}"),
                "checksums": [{"algorithm": "SHA256", "checksumValue": ""}],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }));
        }
    }
    let mut by_id = std::collections::BTreeMap::new();
    for f in files.iter_mut() {
        let name = f["fileName"].as_str().unwrap().trim_start_matches("./");
        let sha = sha256_file(&top.join(name));
        f["checksums"][0]["checksumValue"] = sha.clone().into();
        by_id.insert(f["SPDXID"].as_str().unwrap().to_string(), sha);
    }
    let contains: Vec<(String, String)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relationshipType"] == "CONTAINS")
        .map(|r| {
            (
                r["spdxElementId"].as_str().unwrap().to_string(),
                r["relatedSpdxElement"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for p in doc["packages"].as_array_mut().unwrap() {
        let id = p["SPDXID"].as_str().unwrap().to_string();
        if let Some(sha) = contains
            .iter()
            .find(|(from, _)| *from == id)
            .and_then(|(_, file)| by_id.get(file))
        {
            if p.get("checksums").is_some() {
                p["checksums"][0]["checksumValue"] = sha.clone().into();
            }
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

const LEAF: &str = "rootfs/etc/kubernetes/cert/kube-controller-manager.pem";
const LEAF_KEY: &str = "rootfs/etc/kubernetes/cert/kube-controller-manager-key.pem";

/// A controller-manager certificate for m1 signed by `ca` with openssl, valid from
/// `start` to `end` (openssl `YYYYMMDDHHMMSSZ`), with `sans`; writes cert and key.
fn openssl_leaf(
    dir: &Path,
    ca: &Path,
    ca_key: &Path,
    start: &str,
    end: &str,
    sans: &str,
) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = kb\n[kb]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\n\
             policy = any\nunique_subject = no\n[any]\ncommonName = supplied\norganizationName = optional\n\
             [leaf]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = {sans}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf-key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/O=system:kube-controller-manager/CN=system:kube-controller-manager",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            ca.to_str().unwrap(),
            "-keyfile",
            ca_key.to_str().unwrap(),
            "-in",
            "leaf.csr",
            "-out",
            "leaf.pem",
            "-startdate",
            start,
            "-enddate",
            end,
            "-extensions",
            "leaf",
            "-notext",
        ],
    );
    (dir.join("leaf.pem"), dir.join("leaf-key.pem"))
}

/// Puts an openssl-made leaf (and its key) into m1's bundle.
fn plant_leaf(project: &Project, start: &str, end: &str, sans: &str, other_ca: bool) {
    let dir = project.path("openssl");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, ca_key) = if other_ca {
        openssl_self_signed(&dir, "other-ca", "other-ca", "CA:TRUE")
    } else {
        (project.path("pki/ca.pem"), project.path("pki/ca-key.pem"))
    };
    let (cert, key) = openssl_leaf(&dir, &ca, &ca_key, start, end, sans);
    rewrite(&project.tarball("m1"), |top| {
        std::fs::copy(&cert, top.join(LEAF)).unwrap();
        std::fs::copy(&key, top.join(LEAF_KEY)).unwrap();
        // Keep the kubeconfig consistent with the planted pair.
        let kc = top.join("rootfs/etc/kubernetes/kube-controller-manager.kubeconfig");
        let b64 = |p: &Path| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap())
        };
        let text = std::fs::read_to_string(&kc).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.trim_start() {
                t if t.starts_with("client-certificate-data:") => {
                    format!("    client-certificate-data: {}", b64(&cert))
                }
                t if t.starts_with("client-key-data:") => {
                    format!("    client-key-data: {}", b64(&key))
                }
                _ => l.to_string(),
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(&kc, text).unwrap();
    });
}

pub fn findings(out: &Output) -> String {
    stdout(out)
}

const SANS_OK: &str = "IP:127.0.0.1,IP:127.0.1.1,DNS:m1";

#[test]
fn clean_bundles_verify_and_the_openssl_fixture_path_is_sound() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let out = project.verify(
        &tarballs(&project)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("3 bundle(s) checked (0 signed), 0 finding(s)"));
    // A valid openssl-made leaf from the same CA passes: the fixtures below differ from it
    // in one respect each.
    plant_leaf(
        &project,
        "20200101000000Z",
        "20991231000000Z",
        SANS_OK,
        false,
    );
    let out = project.verify(&[&tarballs(&project)[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", findings(&out));
}

#[test]
fn a_tampered_file_is_found() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let tarball = project.tarball("m2");
    let work = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(tool("tar"))
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(work.path()),
    );
    let unit = work
        .path()
        .join("control-plane-m2/rootfs/etc/systemd/system/kube-controller-manager.service");
    let text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("--v=2", "--v=9");
    std::fs::write(&unit, text).unwrap();
    run_ok(
        Command::new(tool("tar"))
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(work.path())
            .arg("control-plane-m2"),
    );
    let out = project.verify(&[tarball.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    assert!(f.contains("control-plane-m2.tar.gz: rootfs/etc/systemd/system/kube-controller-manager.service: does not match its checksum in SHA256SUMS"), "{f}");
}

#[test]
fn a_truncated_tarball_is_unusable_input() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let tarball = project.tarball("m1");
    let bytes = std::fs::read(&tarball).unwrap();
    std::fs::write(&tarball, &bytes[..bytes.len() / 2]).unwrap();
    project
        .run(&["verify", tarball.to_str().unwrap()])
        .status(2)
        .stderr(
            "error: `$PROJECT/dist/control-plane-m1.tar.gz`: is not a readable .tar.gz (incomplete deflate stream)\n\
             hint: the file is truncated or damaged: copy it again from the build host\n",
        )
        .check();
}

#[test]
fn a_cert_from_another_ca_is_found() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    plant_leaf(
        &project,
        "20200101000000Z",
        "20991231000000Z",
        SANS_OK,
        true,
    );
    let out = project.verify(&[&tarballs(&project)[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        findings(&out),
        format!("control-plane-m1.tar.gz: {LEAF}: does not chain to the bundled CA\n")
    );
}

#[test]
fn a_key_for_another_cert_is_found() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    rewrite(&project.tarball("m1"), |top| {
        std::fs::copy(
            project.path("pki/m2/kube-controller-manager-key.pem"),
            top.join(LEAF_KEY),
        )
        .unwrap();
    });
    let out = project.verify(&[&tarballs(&project)[0]]);
    let f = findings(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        f.contains(&format!(
            "{LEAF_KEY}: does not match kube-controller-manager.pem"
        )),
        "{f}"
    );
    assert!(
        f.contains("client-key-data is not the bundled kube-controller-manager-key.pem"),
        "{f}"
    );
}

#[test]
fn expired_and_not_yet_valid_certs_are_found() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    plant_leaf(
        &project,
        "20200101000000Z",
        "20210101000000Z",
        SANS_OK,
        false,
    );
    let f = findings(&project.verify(&[&tarballs(&project)[0]]));
    assert_eq!(
        f,
        format!("control-plane-m1.tar.gz: {LEAF}: expired on 2021-01-01T00:00:00Z\n")
    );

    plant_leaf(
        &project,
        "20990101000000Z",
        "20991231000000Z",
        SANS_OK,
        false,
    );
    let f = findings(&project.verify(&[&tarballs(&project)[0]]));
    assert_eq!(
        f,
        format!("control-plane-m1.tar.gz: {LEAF}: is not valid until 2099-01-01T00:00:00Z\n")
    );
}

#[test]
fn certificates_expiring_soon_are_found() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    // Leaves last a year: a 400-day window catches them, the default 30 days does not.
    let out = project.verify(&["--warn-within", "400d", &tarballs(&project)[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        findings(&out).contains(&format!("{LEAF}: expires on"))
            && findings(&out).contains("within 400d"),
        "{}",
        findings(&out)
    );
}

#[test]
fn a_san_missing_the_node_ip_is_found() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    plant_leaf(
        &project,
        "20200101000000Z",
        "20991231000000Z",
        "IP:127.0.0.1,DNS:m1",
        false,
    );
    let f = findings(&project.verify(&[&tarballs(&project)[0]]));
    assert_eq!(
        f,
        format!(
            "control-plane-m1.tar.gz: {LEAF}: SANs lack IP:127.0.1.1 (has DNS:m1,IP:127.0.0.1)\n"
        )
    );
}

#[test]
fn bundles_with_different_cas_are_found() {
    let a = Project::new(INVENTORY);
    a.build_ok();
    let b = Project::new(INVENTORY);
    b.build_ok();
    let out = a.verify(&[&tarballs(&a)[0], &tarballs(&b)[1]]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    assert!(f.contains("control-plane-m2.tar.gz: rootfs/etc/kubernetes/cert/ca.pem: the CA differs from control-plane-m1.tar.gz's: every master must share it"), "{f}");
    assert!(f.contains("sa.key: the service-account key differs"), "{f}");
}

#[test]
fn json_output_lists_bundles_and_findings() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let out = project.verify(&[
        "--output",
        "json",
        "--warn-within",
        "400d",
        &tarballs(&project)[0],
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bundles"][0]["node"], "m1");
    assert_eq!(report["findings"][0]["bundle"], "control-plane-m1.tar.gz");
    assert_eq!(
        report["findings"][0]["file"],
        "rootfs/etc/kubernetes/cert/kube-controller-manager.pem"
    );
}

/// An Ed25519 key made by ssh-keygen, and an allowed-signers line for it.
fn ssh_key(dir: &Path, name: &str, principal: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    run_ok(
        Command::new(tool("ssh-keygen"))
            .args(["-q", "-t", "ed25519", "-N", "", "-C", principal, "-f"])
            .arg(&key),
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = dir.join(format!("{name}.allowed"));
    let words: Vec<&str> = public.split_whitespace().collect();
    std::fs::write(
        &allowed,
        format!(
            "{principal} namespaces=\"kube-bundle\" {} {}\n",
            words[0], words[1]
        ),
    )
    .unwrap();
    (key, allowed)
}

fn build_signed(project: &Project, key: &Path, pin: Option<&Path>) {
    let mut args = vec![
        "build",
        "-c",
        "cluster.toml",
        "-o",
        "dist",
        "--sign",
        key.to_str().unwrap(),
    ];
    if let Some(pin) = pin {
        args.extend(["--pin-signers", pin.to_str().unwrap()]);
    }
    let out = project.kube_bundle(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn signatures_are_checked_by_verify() {
    let project = Project::new(INVENTORY);
    let (key, allowed) = ssh_key(project.dir.path(), "signer", "ops@site");
    let (_, stranger) = ssh_key(project.dir.path(), "stranger", "eve@elsewhere");
    build_signed(&project, &key, None);
    let all = tarballs(&project);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();

    let out = project.verify(&[&["--trust", allowed.to_str().unwrap()], &all[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", findings(&out));
    assert!(stderr(&out).contains("(3 signed)"));
    // ssh-keygen itself accepts the signature kube-bundle made.
    let bundle = project.unpack("m1");
    let mut child = Command::new(tool("ssh-keygen"))
        .args([
            "-Y",
            "verify",
            "-f",
            allowed.to_str().unwrap(),
            "-I",
            "ops@site",
            "-n",
            "kube-bundle",
            "-s",
        ])
        .arg(bundle.join("SHA256SUMS.sig"))
        .stdin(std::fs::File::open(bundle.join("SHA256SUMS")).unwrap())
        .output()
        .unwrap();
    assert!(child.status.success(), "{}", stderr(&child));
    child.stdout.clear();

    let out = project.verify(&["--trust", stranger.to_str().unwrap(), all[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        findings(&out).contains("SHA256SUMS.sig: is signed by SHA256:")
            && findings(&out).contains("which is not an allowed signer"),
        "{}",
        findings(&out)
    );

    // SHA256SUMS rewritten consistently after signing: only the signature can tell.
    rewrite(&project.tarball("m1"), |top| {
        let unit = top.join("rootfs/etc/systemd/system/kube-controller-manager.service");
        let text = std::fs::read_to_string(&unit)
            .unwrap()
            .replace("--v=2", "--v=9");
        std::fs::write(unit, text).unwrap();
    });
    let out = project.verify(&["--trust", allowed.to_str().unwrap(), all[0]]);
    assert_eq!(
        findings(&out),
        "control-plane-m1.tar.gz: SHA256SUMS.sig: does not verify: SHA256SUMS was altered or the signature is damaged (key of `ops@site`)\n"
    );
}

/// [`install`] into `root`.
fn install_into(bundle: &Path, root: &Path, args: &[&str]) -> Output {
    install_command(bundle, &[Path::new("--root"), root])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn install_sh_checks_signatures_with_ssh_keygen() {
    let project = Project::new(INVENTORY);
    let (key, allowed) = ssh_key(project.dir.path(), "signer", "ops@site");
    let (_, stranger) = ssh_key(project.dir.path(), "stranger", "eve@elsewhere");
    build_signed(&project, &key, None);
    let bundle = project.unpack("m1");
    let root = project.path("root");

    let out = install_into(&bundle, &root, &["--trust", allowed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("SHA256SUMS is signed by ops@site"),
        "{}",
        stdout(&out)
    );

    let out = install_into(
        &bundle,
        &project.path("root2"),
        &["--trust", stranger.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SHA256SUMS.sig is not signed by a key in"),
        "{}",
        stderr(&out)
    );
    assert!(!project.path("root2").exists());

    // An altered SHA256SUMS (made consistent with an altered file) fails the signature.
    let unit = bundle.join("rootfs/etc/systemd/system/kube-controller-manager.service");
    std::fs::write(&unit, "[Service]\nExecStart=/bin/sh -c 'evil'\n").unwrap();
    let sums = run_ok(
        Command::new(tool("sha256sum"))
            .args(["rootfs/etc/systemd/system/kube-controller-manager.service"])
            .current_dir(&bundle),
    );
    let all = std::fs::read_to_string(bundle.join("SHA256SUMS")).unwrap();
    let all: String = all
        .lines()
        .map(|l| {
            if l.ends_with("kube-controller-manager.service") {
                sums.clone()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(bundle.join("SHA256SUMS"), all).unwrap();
    let out = install_into(
        &bundle,
        &project.path("root3"),
        &["--trust", allowed.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SHA256SUMS.sig does not verify for ops@site"),
        "{}",
        stderr(&out)
    );
    assert!(!project.path("root3").exists());
}

#[test]
fn unsigned_bundles_install_unless_a_signature_is_required() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let bundle = project.unpack("m1");
    let (_, allowed) = ssh_key(project.dir.path(), "signer", "ops@site");
    assert!(install_into(&bundle, &project.path("root"), &[])
        .status
        .success());
    let out = install_into(&bundle, &project.path("root2"), &["--require-signature"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--require-signature needs --trust FILE"),
        "{}",
        stderr(&out)
    );
    let out = install_into(
        &bundle,
        &project.path("root3"),
        &["--trust", allowed.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("the bundle is not signed (no SHA256SUMS.sig) but a signature is required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pinned_signers_make_the_signature_mandatory() {
    let project = Project::new(INVENTORY);
    let (key, allowed) = ssh_key(project.dir.path(), "signer", "ops@site");
    build_signed(&project, &key, Some(&allowed));
    let bundle = project.unpack("m1");
    let out = install_into(&bundle, &project.path("root"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("SHA256SUMS is signed by ops@site"),
        "{}",
        stdout(&out)
    );
    // Without its signature the same bundle is refused.
    std::fs::remove_file(bundle.join("SHA256SUMS.sig")).unwrap();
    let out = install_into(&bundle, &project.path("root2"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a signature is required"),
        "{}",
        stderr(&out)
    );
    // verify uses the pinned signers when no --trust is given.
    let out = project.verify(&[&tarballs(&project)[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", findings(&out));
}

#[test]
fn certs_lists_expiry_and_fails_within_the_window() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("CERTIFICATE") && lines[0].contains("RESIDUAL TIME"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("ca ") && lines[1].contains("3649d") && lines[1].contains("rsa-2048"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("service-account key") && lines[2].contains("rsa-2048"),
        "{table}"
    );
    for (i, (node, _)) in NODES.iter().enumerate() {
        let l = lines[3 + i];
        assert!(
            l.starts_with("kube-controller-manager")
                && l.contains(node)
                && l.contains("364d")
                && l.contains("kubernetes-ca"),
            "{table}"
        );
    }
    let out = project.kube_bundle(&[
        "certs",
        "-c",
        "cluster.toml",
        "--warn-within",
        "400d",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flagged: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["attention"] == true)
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, ["m1", "m2", "m3"]);
}

#[test]
fn renew_reissues_under_the_same_ca_and_reports_changed_bundles() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let leaf = |n: &str| project.path(&format!("pki/{n}/kube-controller-manager.pem"));
    let key = |n: &str| project.path(&format!("pki/{n}/kube-controller-manager-key.pem"));
    let (serial1, key1, ca) = (
        serial_of(&leaf("m1")),
        public_key_of(&key("m1")),
        sha256_file(&project.path("pki/ca.pem")),
    );
    let serial2 = serial_of(&leaf("m2"));

    let out = project.kube_bundle(&["build", "-c", "cluster.toml", "-o", "dist", "--renew", "m1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.contains("m1: reissued the kube-controller-manager certificate: renewal was asked for"),
        "{log}"
    );
    assert!(
        log.contains("changed: control-plane-m1.tar.gz")
            && !log.contains("changed: control-plane-m2"),
        "{log}"
    );
    assert_ne!(serial_of(&leaf("m1")), serial1);
    assert_eq!(public_key_of(&key("m1")), key1, "the key is kept");
    assert_eq!(serial_of(&leaf("m2")), serial2);
    assert_eq!(
        sha256_file(&project.path("pki/ca.pem")),
        ca,
        "the CA is never renewed"
    );
    run_ok(
        openssl_command(&["verify", "-CAfile"])
            .arg(project.path("pki/ca.pem"))
            .arg(leaf("m1")),
    );

    let out = project.kube_bundle(&[
        "build",
        "-c",
        "cluster.toml",
        "-o",
        "dist",
        "--renew",
        "--rotate-keys",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "m3: reissued the kube-controller-manager certificate (new key): renewal was asked for"
        ),
        "{}",
        stderr(&out)
    );
    assert_ne!(
        public_key_of(&key("m1")),
        key1,
        "--rotate-keys makes new keys"
    );

    // Renewal keeps names: a changed IP is refused, not slipped in.
    project.write(
        "cluster.toml",
        &INVENTORY.replace("127.0.1.2", "127.0.1.22"),
    );
    project
        .run_build(&["--renew", "m2"])
        .status(2)
        .stderr(
            "error: `pki/m2/kube-controller-manager.pem`: renewing the kube-controller-manager certificate of `m2` would change its SANs from DNS:m2,IP:127.0.0.1,IP:127.0.1.2 to DNS:m2,IP:127.0.0.1,IP:127.0.1.22\n\
             hint: renewal keeps a certificate's names; build without --renew to reissue it with the inventory's names\n",
        )
        .check();
    project
        .run_build(&["--renew", "m9"])
        .status(2)
        .stderr("error: --renew m9: `m9` is not a node of `cluster.toml`\n")
        .check();
}

#[test]
fn multi_member_gzip_is_read_whole() {
    let project = Project::with_fake_binary();
    project.build_ok();
    // Re-compress m1's tarball as two gzip members split mid-archive, as gzip -c a b does.
    let tarball = project.tarball("m1");
    let tar = run_ok_bytes(Command::new(tool("gzip")).args(["-dc"]).arg(&tarball));
    let half = tar.len() / 2;
    let mut joined = Vec::new();
    for part in [&tar[..half], &tar[half..]] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part");
        std::fs::write(&p, part).unwrap();
        joined.extend(run_ok_bytes(
            Command::new(tool("gzip")).args(["-nc"]).arg(&p),
        ));
    }
    std::fs::write(&tarball, joined).unwrap();
    let out = project.verify(&[tarball.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        findings(&out),
        stderr(&out)
    );
    let report = project.verify(&["--output", "json", tarball.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        report["bundles"][0]["files"], 13,
        "every file of both members"
    );
}

fn run_ok_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    out.stdout
}
