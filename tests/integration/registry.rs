//! `push`, `pull` and `dist/fetch.sh` against a real registry: Debian's `docker-registry`
//! (distribution 2.8), started here on loopback with its own config, TLS from a CA made
//! with openssl and htpasswd (bcrypt) users. Never the package's own service.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

pub(crate) const USER: &str = "pusher";
pub(crate) const PASSWORD: &str = "s3cret pass";
pub(crate) const REPO: &str = "k8s/control-plane";
/// The dist files push takes beside the bundles, when the build wrote them.
const DIST_FILES: [&str; 6] = [
    "SHA256SUMS",
    "ca.pem",
    "client-ca.pem",
    "sa.pub",
    "rollout.sh",
    "fetch.sh",
];

/// A docker-registry process on a free loopback port, killed when dropped.
pub(crate) struct Registry {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    child: Option<Child>,
    tls: bool,
}

impl Registry {
    /// TLS with a CA of its own, htpasswd auth.
    pub(crate) fn start() -> Registry {
        Self::start_with(true)
    }

    pub(crate) fn start_with(tls: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        if tls {
            make_tls(dir.path());
            let hash = bcrypt::hash(PASSWORD, 5).unwrap();
            write_private(&dir.path().join("htpasswd"), &format!("{USER}:{hash}\n"));
        }
        let mut reg = Registry {
            dir,
            port,
            child: None,
            tls,
        };
        reg.write_config();
        reg.run();
        reg
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {d}/storage\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{}\n",
            self.port
        );
        if self.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {d}/server.pem\n    key: {d}/server-key.pem\nauth:\n  htpasswd:\n    realm: kube-bundle-test\n    path: {d}/htpasswd\n"
            ));
        }
        std::fs::write(self.dir.path().join("config.yml"), config).unwrap();
    }

    /// Starts the process and waits until it answers.
    pub(crate) fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not start:\n{}",
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub(crate) fn reference(&self, tag: &str) -> String {
        format!("127.0.0.1:{}/{REPO}:{tag}", self.port)
    }

    /// Every stored blob: (digest hex, size, path of its data file).
    pub(crate) fn blobs(&self) -> Vec<(String, u64, PathBuf)> {
        let root = self
            .dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256");
        let mut all = Vec::new();
        if !root.exists() {
            return all;
        }
        for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let entry = entry.unwrap();
            if entry.file_name() == "data" {
                let hex = entry
                    .path()
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                all.push((
                    hex,
                    entry.metadata().unwrap().len(),
                    entry.path().to_path_buf(),
                ));
            }
        }
        all
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A CA and a server certificate for 127.0.0.1 (and 127.0.0.2, "another host" to the
/// scripted servers of `registry_hostile`) signed by it, all by openssl.
pub(crate) fn make_tls(dir: &Path) {
    let (ca, ca_key) = openssl_self_signed(dir, "ca", "kube-bundle test registry CA", "CA:TRUE");
    std::fs::set_permissions(&ca_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let key = dir.join("server-key.pem");
    run_ok(
        openssl_command(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(dir.join("server.csr")),
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,IP:127.0.0.2\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    run_ok(
        openssl_command(&["x509", "-req", "-days", "30", "-set_serial", "2", "-in"])
            .arg(dir.join("server.csr"))
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(dir.join("server.ext"))
            .arg("-out")
            .arg(dir.join("server.pem")),
    );
}

/// Executable-like bytes that compress, reproducible; several deflate blocks.
pub(crate) fn binary_bytes(len: usize, noise_every: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if noise_every > 0 && i % noise_every != 0 {
                (i / 100) as u8
            } else {
                x as u8
            }
        })
        .collect()
}

pub(crate) fn project_with_binary(bytes: &[u8]) -> Project {
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-controller-manager]\nbinary = \"kcm\"\n"
    ));
    project.write_binary(
        "kcm",
        &stand_in_with("kube-controller-manager", "1.20.2", bytes),
    );
    project.build_ok();
    project
}

/// kube-bundle with `stdin` on standard input and HOME set to the project (so no real
/// ~/.docker/config.json is read).
pub(crate) fn kube_bundle_stdin(project: &Project, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(args)
        .current_dir(project.dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("HOME", project.dir.path())
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn push(project: &Project, reg: &Registry, tag: &str, password: &str) -> Output {
    push_with(project, reg, tag, password, &["--allow-plain-secrets"])
}

/// `push --output json` of the project's dist/ as the test user, with `extra` options.
pub(crate) fn push_with(
    project: &Project,
    reg: &Registry,
    tag: &str,
    password: &str,
    extra: &[&str],
) -> Output {
    let ca = reg.ca();
    let reference = reg.reference(tag);
    let mut args = vec![
        "push",
        "--out",
        "dist",
        "--ca-file",
        ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-stdin",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    args.push(&reference);
    kube_bundle_stdin(project, &args, &format!("{password}\n"))
}

pub(crate) fn push_ok(project: &Project, reg: &Registry, tag: &str) -> serde_json::Value {
    let out = push(project, reg, tag, PASSWORD);
    assert!(out.status.success(), "push failed:\n{}", stderr(&out));
    assert!(
        !stderr(&out).contains('\r') && !stderr(&out).contains('\x1b'),
        "no progress line when standard error is not a terminal: {:?}",
        stderr(&out)
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// A folder whose PATH offers only what a bare node has: bash, coreutils' few, sed,
/// grep, tar, gzip, curl, sha256sum, getent and flock. No kube-bundle, openssl or python.
pub(crate) fn bare_node_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bare-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for t in [
        "bash",
        "env",
        "curl",
        "sha256sum",
        "tar",
        "gzip",
        "cat",
        "mkdir",
        "mktemp",
        "rm",
        "mv",
        "wc",
        "cut",
        "tr",
        "sed",
        "grep",
        "head",
        "tail",
        "base64",
        "rmdir",
        "chmod",
        "truncate",
        "df",
        "stat",
        "sleep",
        "getent",
        "flock",
    ] {
        let link = bin.join(t);
        if !link.exists() {
            std::os::unix::fs::symlink(tool(t), link).unwrap();
        }
    }
    bin
}

/// dist/fetch.sh run on a "bare node" into `into`, with `args` before REF and NODE.
fn fetch_sh(project: &Project, args: &[&str], stdin: &str, into: &Path) -> Output {
    crate::fetch_sh::fetch(project, args, stdin, &[], into)
}

/// kube-bundle `sub` as the test user: the registry's CA, the user name, the password on
/// standard input, then `args`.
pub(crate) fn as_user(project: &Project, reg: &Registry, sub: &str, args: &[&str]) -> Output {
    let ca = reg.ca();
    let mut all = vec![
        sub,
        "--ca-file",
        ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-stdin",
    ];
    all.extend_from_slice(args);
    kube_bundle_stdin(project, &all, &format!("{PASSWORD}\n"))
}

/// fetch.sh as the test user, likewise.
fn fetch_as_user(project: &Project, reg: &Registry, args: &[&str], into: &Path) -> Output {
    let ca = reg.ca();
    let mut all = vec![
        "--ca-file",
        ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-stdin",
    ];
    all.extend_from_slice(args);
    fetch_sh(project, &all, &format!("{PASSWORD}\n"), into)
}

/// The command failed with `code` and said `want` on standard error.
pub(crate) fn assert_fails(out: &Output, code: i32, want: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    assert!(
        stderr(out).contains(want),
        "wanted {want:?} in:\n{}",
        stderr(out)
    );
}

pub(crate) fn layers(node: &serde_json::Value) -> Vec<String> {
    node["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn push_pull_and_fetch_sh_over_tls_with_htpasswd() {
    let project = project_with_binary(&binary_bytes((5 << 20) / 2 + 333, 4));
    let reg = Registry::start();
    let report = push_ok(&project, &reg, "v1.20.2-r3");

    // One manifest per node, the bundle split into its members, the binary's shared.
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let sums = std::fs::read_to_string(project.path("dist/SHA256SUMS")).unwrap();
    let mut per_node_bytes = 0u64;
    for (n, (name, _)) in nodes.iter().zip(NODES) {
        assert_eq!(n["node"], name);
        let bundle = project.tarball(name);
        assert_eq!(n["sha256"], sha256_file(&bundle));
        assert!(sums.contains(n["sha256"].as_str().unwrap()));
        assert_eq!(layers(n).len(), 3, "head, binary, tail: {n}");
        assert_eq!(
            layers(n)[1],
            layers(&nodes[0])[1],
            "the binary's member is shared"
        );
        assert!(n["reference"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}-{name}@sha256:", reg.reference("v1.20.2-r3"))));
    }
    assert_ne!(layers(&nodes[0])[0], layers(&nodes[1])[0]);

    // The registry's storage holds the binary's member once: everything stored is one
    // bundle plus the other nodes' own members, the dist files and the empty config.
    let stored = reg.blobs();
    let stored_bytes: u64 = stored.iter().map(|b| b.1).sum();
    let shared_hex = layers(&nodes[0])[1]
        .trim_start_matches("sha256:")
        .to_string();
    let shared_len = stored.iter().find(|b| b.0 == shared_hex).unwrap().1;
    assert!(shared_len > 1 << 20, "the binary's member is the big one");
    for n in nodes {
        let total: u64 = layers(n)
            .iter()
            .map(|l| {
                stored
                    .iter()
                    .find(|b| format!("sha256:{}", b.0) == *l)
                    .unwrap()
                    .1
            })
            .sum();
        assert_eq!(
            total,
            n["size"].as_u64().unwrap(),
            "members add up to the bundle"
        );
        per_node_bytes += total - shared_len;
    }
    let dist_bytes: u64 = DIST_FILES
        .iter()
        .filter(|f| project.path(&format!("dist/{f}")).exists())
        .map(|f| {
            std::fs::metadata(project.path(&format!("dist/{f}")))
                .unwrap()
                .len()
        })
        .sum();
    // distribution keeps manifests and the index as blobs too.
    let blobs_without_manifests: u64 = stored_bytes
        - stored
            .iter()
            .filter(|b| std::fs::read(&b.2).is_ok_and(|d| d.starts_with(b"{\"schemaVersion\"")))
            .map(|b| b.1)
            .sum::<u64>();
    // The last member (the tar's end) is the same in every bundle too, so it is stored
    // once as well: stored ≤ one binary member + every node's own members.
    assert!(
        blobs_without_manifests <= shared_len + per_node_bytes + dist_bytes + 2,
        "stored {blobs_without_manifests} > {shared_len} + {per_node_bytes} + {dist_bytes}"
    );
    assert_eq!(
        report["uploaded_bytes"].as_u64().unwrap(),
        blobs_without_manifests - 2,
        "uploaded bytes are what the registry stored (less the empty config)"
    );
    assert!(stored.iter().filter(|b| b.0 == shared_hex).count() == 1);

    // Pushing the same dist again uploads nothing and gives the same digests.
    let again = push_ok(&project, &reg, "v1.20.2-r3");
    assert_eq!(again["uploaded_bytes"], 0);
    assert_eq!(again["digest"], report["digest"]);
    assert_eq!(again["nodes"], report["nodes"]);

    // pull, with credentials from ~/.docker/config.json.
    let auth = base64_encode(&format!("{USER}:{PASSWORD}"));
    project.write(
        ".docker/config.json",
        &format!(
            "{{\"auths\": {{\"127.0.0.1:{}\": {{\"auth\": \"{auth}\"}}}}}}",
            reg.port
        ),
    );
    let ca = reg.ca();
    let out = kube_bundle_stdin(
        &project,
        &[
            "pull",
            "--ca-file",
            ca.to_str().unwrap(),
            "-o",
            "pulled",
            &reg.reference("v1.20.2-r3"),
        ],
        "",
    );
    assert!(out.status.success(), "pull failed:\n{}", stderr(&out));
    for (name, _) in NODES {
        let want = std::fs::read(project.tarball(name)).unwrap();
        let got = std::fs::read(
            project
                .path("pulled")
                .join(project.tarball(name).file_name().unwrap()),
        )
        .unwrap();
        assert!(got == want, "pulled bundle of {name} differs");
        assert_eq!(
            mode_of(
                &project
                    .path("pulled")
                    .join(project.tarball(name).file_name().unwrap())
            ),
            0o600
        );
    }
    let dist_files: Vec<&str> = DIST_FILES
        .into_iter()
        .filter(|f| project.path(&format!("dist/{f}")).exists())
        .collect();
    assert!(dist_files.len() >= 5, "{dist_files:?}");
    for f in &dist_files {
        assert_eq!(
            std::fs::read(project.path(&format!("pulled/{f}"))).unwrap(),
            std::fs::read(project.path(&format!("dist/{f}"))).unwrap(),
            "{f}"
        );
    }
    let mut listing: Vec<String> = std::fs::read_dir(project.path("pulled"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    listing.sort();
    assert_eq!(
        listing.len(),
        3 + dist_files.len(),
        "the bundles and the dist files, nothing else: {listing:?}"
    );

    // pull --node m2 by a node's own reference-less tag: only that bundle.
    let out = kube_bundle_stdin(
        &project,
        &[
            "pull",
            "--ca-file",
            ca.to_str().unwrap(),
            "--node",
            "m2",
            "-o",
            "only-m2",
            "--output",
            "json",
            &reg.reference("v1.20.2-r3"),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pulled: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(pulled["files"].as_array().unwrap().len(), 1, "{pulled}");
    assert_eq!(pulled["files"][0]["node"], "m2");
    assert_eq!(
        pulled["files"][0]["sha256"],
        sha256_file(&project.tarball("m2"))
    );

    // fetch.sh on a bare node, into a clean folder.
    let clean = project.path("node-m3");
    let out = fetch_as_user(
        &project,
        &reg,
        &[&reg.reference("v1.20.2-r3"), "m3"],
        &clean,
    );
    assert!(out.status.success(), "fetch.sh failed:\n{}", stderr(&out));
    let name = project.tarball("m3").file_name().unwrap().to_owned();
    assert_eq!(
        sha256_file(&clean.join(&name)),
        sha256_file(&project.tarball("m3"))
    );
    assert!(stdout(&out).contains(&sha256_file(&project.tarball("m3"))));
    let unpacked = project.unpack("m3");
    let top = unpacked.file_name().unwrap();
    // The same files; fetch.sh unpacks with umask 077, so nothing is open to others.
    let files = |root: &Path| -> Vec<(String, String)> {
        snapshot(root)
            .into_iter()
            .map(|(p, sha, _)| (p, sha))
            .collect()
    };
    assert_eq!(files(&clean.join(top)), files(&unpacked));
    assert!(snapshot(&clean.join(top))
        .iter()
        .all(|(_, _, mode)| mode & 0o077 == 0));
    assert!(
        !clean.join(".fetch-m3").exists(),
        "the layer cache is removed when done"
    );

    // fetch.sh with the node's pinned reference, credentials from config.json.
    let pinned = nodes[0]["reference"].as_str().unwrap();
    let out = fetch_sh(
        &project,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "--no-unpack",
            pinned,
            "m1",
        ],
        "",
        &project.path("node-m1"),
    );
    assert!(out.status.success(), "fetch.sh failed:\n{}", stderr(&out));
    assert_eq!(
        sha256_file(
            &project
                .path("node-m1")
                .join(project.tarball("m1").file_name().unwrap())
        ),
        sha256_file(&project.tarball("m1"))
    );
    // A rerun resumes: the first half of the tarball, as an interrupted fetch.sh leaves
    // it (with the bundle it belongs to), continues with a range request
    // (`tests/integration/fetch_sh.rs` checks the requests).
    let resumed = project.path("node-m2");
    let bundle = std::fs::read(project.tarball("m2")).unwrap();
    std::fs::create_dir_all(resumed.join(".fetch-m2")).unwrap();
    std::fs::write(
        resumed.join(".fetch-m2/bundle.for"),
        format!("{} {}\n", sha256_file(&project.tarball("m2")), bundle.len()),
    )
    .unwrap();
    std::fs::write(
        resumed.join(".fetch-m2/bundle.part"),
        &bundle[..bundle.len() / 2],
    )
    .unwrap();
    let out = fetch_sh(
        &project,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            reg.reference("v1.20.2-r3").as_str(),
            "m2",
        ],
        "",
        &resumed,
    );
    assert!(out.status.success(), "fetch.sh failed:\n{}", stderr(&out));
    assert_eq!(
        sha256_file(&resumed.join(project.tarball("m2").file_name().unwrap())),
        sha256_file(&project.tarball("m2"))
    );
}

fn base64_encode(s: &str) -> String {
    let out = run_ok(
        Command::new(tool("bash"))
            .args(["-c", "printf '%s' \"$1\" | base64 -w0", "-"])
            .arg(s),
    );
    out.trim().to_string()
}

#[test]
fn fetch_sh_passes_shellcheck() {
    let project = Project::new(INVENTORY);
    project.build_ok();
    let script = project.path("dist/fetch.sh");
    assert_eq!(mode_of(&script), 0o755);
    run_ok(
        Command::new(tool("shellcheck"))
            .args(["--severity=style", "--shell=bash"])
            .arg(&script),
    );
}

#[test]
fn wrong_password_wrong_ca_and_no_credentials_fail_with_the_registry_message() {
    let project = project_with_binary(b"#!/bin/sh\necho kcm\n");
    let reg = Registry::start();
    let reference = reg.reference("v1");

    let out = push(&project, &reg, "v1", "wrong");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("UNAUTHORIZED: authentication required"),
        "{err}"
    );
    assert!(
        err.contains("hint: check the user name and password"),
        "{err}"
    );
    assert!(reg.blobs().is_empty(), "nothing was stored");

    // A CA that did not sign the registry's certificate.
    let other = tempfile::tempdir().unwrap();
    let (wrong_ca, wrong_key) =
        openssl_self_signed(other.path(), "other", "some other CA", "CA:TRUE");
    std::fs::set_permissions(
        &wrong_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = kube_bundle_stdin(
        &project,
        &[
            "push",
            "--allow-plain-secrets",
            "--ca-file",
            wrong_ca.to_str().unwrap(),
            "--username",
            USER,
            "--password-stdin",
            &reference,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
    assert!(
        err.contains("hint: the registry's certificate is not trusted"),
        "{err}"
    );

    // No credentials at all.
    let ca = reg.ca();
    let out = kube_bundle_stdin(
        &project,
        &["pull", "--ca-file", ca.to_str().unwrap(), &reference],
        "",
    );
    assert_fails(&out, 1, "asks for credentials");

    // fetch.sh: the same three, each exit 1 with the reason.
    let out = fetch_sh(
        &project,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "--username",
            USER,
            "--password-stdin",
            &reference,
            "m1",
        ],
        "wrong\n",
        &project.path("f1"),
    );
    assert_fails(&out, 1, "UNAUTHORIZED: authentication required");
    let out = fetch_sh(
        &project,
        &[
            "--ca-file",
            wrong_ca.to_str().unwrap(),
            "--username",
            USER,
            "--password-stdin",
            &reference,
            "m1",
        ],
        &format!("{PASSWORD}\n"),
        &project.path("f2"),
    );
    assert_fails(&out, 1, "cannot reach");
    let out = fetch_sh(
        &project,
        &["--ca-file", ca.to_str().unwrap(), &reference, "m1"],
        "",
        &project.path("f3"),
    );
    assert_fails(&out, 1, "asks for credentials");
}

#[test]
fn a_tampered_blob_in_the_registry_is_refused_by_pull_and_fetch_sh() {
    let project = project_with_binary(&binary_bytes(3 << 20, 3));
    let reg = Registry::start();
    let report = push_ok(&project, &reg, "v1");
    let shared = layers(&report["nodes"][0])[1]
        .trim_start_matches("sha256:")
        .to_string();
    let (_, _, data) = reg.blobs().into_iter().find(|b| b.0 == shared).unwrap();
    // Same size, one byte changed in the middle of the binary's member.
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&data, bytes).unwrap();

    let out = as_user(
        &project,
        &reg,
        "pull",
        &["--node", "m1", "-o", "pulled", &reg.reference("v1")],
    );
    assert_fails(&out, 1, "damaged or was changed");
    assert!(
        !project
            .path("pulled")
            .join(project.tarball("m1").file_name().unwrap())
            .exists(),
        "no bundle is written from a damaged blob"
    );

    let into = project.path("node-m1");
    let out = fetch_as_user(&project, &reg, &[&reg.reference("v1"), "m1"], &into);
    assert_fails(&out, 1, "damaged or was changed; nothing was unpacked");
    let left: Vec<_> = std::fs::read_dir(&into)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != ".fetch-m1")
        .collect();
    assert!(left.is_empty(), "nothing unpacked or assembled: {left:?}");
}

/// A TCP relay to the registry that, once `limit` bytes went from client to registry,
/// stops relaying and reports it, so the registry can be killed mid-upload.
struct Relay {
    port: u16,
    sent: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
    stalled: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: u16, limit: u64) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            sent: Arc::new(AtomicU64::new(0)),
            limit: Arc::new(AtomicU64::new(limit)),
            stalled: Arc::new(AtomicBool::new(false)),
        };
        let (sent, lim, stalled) = (
            relay.sent.clone(),
            relay.limit.clone(),
            relay.stalled.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue; // dropping `client` closes it: connection refused, in effect
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (sent, lim, stalled) = (sent.clone(), lim.clone(), stalled.clone());
                std::thread::spawn(move || pipe(client, server, Some((sent, lim, stalled))));
                std::thread::spawn(move || pipe(s2, c2, None));
            }
        });
        relay
    }
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    count: Option<(Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicBool>)>,
) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((sent, limit, stalled)) = &count {
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total > limit.load(Ordering::SeqCst) {
                stalled.store(true, Ordering::SeqCst);
                // Hold the bytes until the registry is gone, then drop the connection.
                while TcpStream::connect(to.peer_addr().unwrap()).is_ok() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_push_cut_off_by_a_killed_registry_completes_when_run_again() {
    // Incompressible, so the binary's member is several MiB on the wire.
    let bytes: Vec<u8> = binary_bytes(6 << 20, 1);
    let project = project_with_binary(&bytes);
    let mut reg = Registry::start();
    let relay = Relay::start(reg.port, 2 << 20);
    let reference = format!("127.0.0.1:{}/{REPO}:v1", relay.port);
    let ca = reg.ca();
    let args = [
        "push",
        "--allow-plain-secrets",
        "--ca-file",
        ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-stdin",
        &reference,
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(args)
        .current_dir(project.dir.path())
        .env("HOME", project.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let start = Instant::now();
    while !relay.stalled.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the push never got 2 MiB out"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    reg.kill();
    let out = child.wait_with_output().unwrap();
    assert_fails(&out, 1, &format!("127.0.0.1:{}", relay.port));

    // The same registry (same storage, same port) comes back; the rerun completes.
    relay.limit.store(u64::MAX, Ordering::SeqCst);
    reg.run();
    let out = kube_bundle_stdin(
        &project,
        &[&args[..], &["--output", "json"]].concat(),
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "rerun failed:\n{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["nodes"].as_array().unwrap().len(), 3);

    let out = as_user(
        &project,
        &reg,
        "pull",
        &["-o", "pulled", &reg.reference("v1")],
    );
    assert!(out.status.success(), "pull failed:\n{}", stderr(&out));
    for (name, _) in NODES {
        assert_eq!(
            sha256_file(
                &project
                    .path("pulled")
                    .join(project.tarball(name).file_name().unwrap())
            ),
            sha256_file(&project.tarball(name)),
            "{name}"
        );
    }
}

#[test]
fn bad_input_exits_2_naming_the_field() {
    let project = project_with_binary(b"#!/bin/sh\n");
    let reg = Registry::start();
    let ca = reg.ca();
    let ca = ca.to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["push".into(), "not a reference".into()],
            "reference `not a reference`",
        ),
        (
            vec!["push".into(), "k8s/control-plane:v1".into()],
            "registry's host",
        ),
        (
            vec!["push".into(), format!("127.0.0.1:{}/{REPO}", reg.port)],
            "push needs a tag",
        ),
        (
            vec!["push".into(), format!("127.0.0.1:99999/{REPO}:v1")],
            "reference `127.0.0.1:99999/k8s/control-plane:v1`: the port must be a number from 1 to 65535",
        ),
        (
            vec!["pull".into(), format!("127.0.0.1:65536/{REPO}:v1")],
            "the port must be a number from 1 to 65535",
        ),
        (
            vec!["pull".into(), format!("127.0.0.1:abc/{REPO}:v1")],
            "the port must be a number from 1 to 65535",
        ),
        (
            vec![
                "push".into(),
                "--plain-http".into(),
                "registry.example:5000/k8s/cp:v1".into(),
            ],
            "--plain-http: `registry.example:5000` is not this machine",
        ),
        (
            vec![
                "push".into(),
                "--out".into(),
                "nowhere".into(),
                reg.reference("v1"),
            ],
            "`nowhere`: has no SHA256SUMS",
        ),
        (
            vec![
                "pull".into(),
                "--ca-file".into(),
                "missing.pem".into(),
                reg.reference("v1"),
            ],
            "--ca-file: `missing.pem` does not exist",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kube_bundle_stdin(&project, &args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }

    // A node that is not in the artifact.
    push_ok(&project, &reg, "v1");
    let out = kube_bundle_stdin(
        &project,
        &[
            "pull",
            "--ca-file",
            ca,
            "--username",
            USER,
            "--password-stdin",
            "--node",
            "m9",
            &reg.reference("v1"),
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--node: `m9` is not in")
            && stderr(&out).contains("`m1`, `m2`, `m3`"),
        "{}",
        stderr(&out)
    );

    // A node's own reference: pull takes that bundle, and refuses another node's name.
    let node_ref = reg.reference("v1-m2");
    let out = kube_bundle_stdin(
        &project,
        &[
            "pull",
            "--ca-file",
            ca,
            "--username",
            USER,
            "--password-stdin",
            "-o",
            "m2",
            &node_ref,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(stdout(&out).starts_with(&sha256_file(&project.tarball("m2"))));
    let out = kube_bundle_stdin(
        &project,
        &[
            "pull",
            "--ca-file",
            ca,
            "--username",
            USER,
            "--password-stdin",
            "--node",
            "m1",
            &node_ref,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_fails(&out, 2, "--node: `m1` is not in");

    // fetch.sh: the same kinds of mistakes.
    let r = reg.reference("v1");
    for (args, want) in [
        (vec!["k8s/control-plane:v1", "m1"], "registry's host"),
        (
            vec!["--plain-http", "registry.example/k8s/cp:v1", "m1"],
            "not this machine",
        ),
        (vec![r.as_str()], "give the reference and the node"),
        (vec![r.as_str(), "m/1"], "node `m/1`"),
        (
            vec!["--username", USER, r.as_str(), "m1"],
            "needs --password-stdin",
        ),
    ] {
        let out = fetch_sh(&project, &args, "", &project.path("f"));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let out = fetch_sh(
        &project,
        &[
            "--ca-file",
            ca,
            "--username",
            USER,
            "--password-stdin",
            &reg.reference("v1"),
            "m9",
        ],
        &format!("{PASSWORD}\n"),
        &project.path("f"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("node `m9` is not in") && stderr(&out).contains("m1 m2 m3"),
        "{}",
        stderr(&out)
    );
}

/// A token server for the registry's `auth: token`: answers `GET /token` with one JWT
/// (RS256, signed by openssl, the signing certificate in `x5c`) to requests carrying the
/// right Basic credentials, and records the scopes asked for.
struct TokenServer {
    port: u16,
    scopes: Arc<std::sync::Mutex<Vec<String>>>,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    fn start(dir: &Path, service: &str) -> TokenServer {
        use base64::Engine as _;
        let (cert, key) = openssl_self_signed(dir, "token-signer", "token signer", "CA:FALSE");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let der = run_ok_bytes(openssl_command(&["x509", "-outform", "DER", "-in"]).arg(&cert));
        let dir = dir.to_path_buf();
        let service = service.to_string();
        // A token grants exactly the scope asked for, as real token servers do: a token
        // without scope opens no repository.
        let sign = move |scope: Option<&str>| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let access: Vec<serde_json::Value> = scope
                .and_then(|s| s.strip_prefix("repository:"))
                .and_then(|s| s.rsplit_once(':'))
                .map(|(name, actions)| {
                    serde_json::json!({"type": "repository", "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>()})
                })
                .into_iter()
                .collect();
            let header = serde_json::json!({
                "typ": "JWT", "alg": "RS256",
                "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)],
            });
            let claims = serde_json::json!({
                "iss": "kube-bundle-test-issuer", "sub": USER, "aud": service,
                "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": now.to_string(),
                "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            std::fs::write(dir.join("jwt-input"), &signing_input).unwrap();
            let sig = run_ok_bytes(
                openssl_command(&["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .arg(dir.join("jwt-input")),
            );
            format!("{signing_input}.{}", b64url(&sig))
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scopes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = scopes.clone();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let line = text.lines().next().unwrap_or("").to_string();
                seen.lock().unwrap().push(line.clone());
                let scope = line
                    .split(['?', '&', ' '])
                    .find_map(|p| p.strip_prefix("scope="))
                    .map(percent_decode);
                let authorized = text.lines().any(|l| {
                    l.split_once(':').is_some_and(|(k, v)| {
                        k.eq_ignore_ascii_case("authorization") && v.trim() == basic
                    })
                });
                let (status, body) = if authorized {
                    let token = sign(scope.as_deref());
                    (
                        "200 OK",
                        format!("{{\"token\":\"{token}\",\"expires_in\":3600}}"),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        "{\"details\":\"bad credentials\"}".to_string(),
                    )
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { port, scopes }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn run_ok_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    out.stdout
}

#[test]
fn bearer_token_auth_for_push_pull_and_fetch_sh() {
    let project = project_with_binary(&binary_bytes(1 << 20, 4));
    // A plain-http loopback registry whose auth is a token from our token server.
    let mut reg = Registry::start_with(false);
    reg.kill();
    let tokens = TokenServer::start(reg.dir.path(), "kube-bundle-test");
    let d = reg.dir.path().display();
    let mut config = std::fs::read_to_string(reg.dir.path().join("config.yml")).unwrap();
    config.push_str(&format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: kube-bundle-test\n    issuer: kube-bundle-test-issuer\n    rootcertbundle: {d}/token-signer.pem\n",
        tokens.port
    ));
    std::fs::write(reg.dir.path().join("config.yml"), config).unwrap();
    reg.run();
    let reference = reg.reference("v1");

    let push = |password: &str| {
        kube_bundle_stdin(
            &project,
            &[
                "push",
                "--allow-plain-secrets",
                "--plain-http",
                "--username",
                USER,
                "--password-stdin",
                &reference,
            ],
            &format!("{password}\n"),
        )
    };
    let out = push("wrong");
    assert_fails(&out, 1, "token from http://127.0.0.1");
    let out = push(PASSWORD);
    assert!(out.status.success(), "push failed:\n{}", stderr(&out));
    let asked = tokens.scopes.lock().unwrap().join("\n");
    // The registry lists the actions of its challenge in no fixed order (distribution
    // walks a map), and the client asks for what the challenge names.
    assert!(
        asked.contains("scope=repository%3Ak8s%2Fcontrol-plane%3Apull%2Cpush")
            || asked.contains("scope=repository%3Ak8s%2Fcontrol-plane%3Apush%2Cpull"),
        "the token was asked for the repository's pull and push scope:\n{asked}"
    );

    let out = kube_bundle_stdin(
        &project,
        &[
            "pull",
            "--plain-http",
            "--username",
            USER,
            "--password-stdin",
            "--node",
            "m2",
            "-o",
            "pulled",
            &reference,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "pull failed:\n{}", stderr(&out));
    assert_eq!(
        sha256_file(
            &project
                .path("pulled")
                .join(project.tarball("m2").file_name().unwrap())
        ),
        sha256_file(&project.tarball("m2"))
    );

    let into = project.path("node-m2");
    let out = fetch_sh(
        &project,
        &[
            "--plain-http",
            "--username",
            USER,
            "--password-stdin",
            &reference,
            "m2",
        ],
        &format!("{PASSWORD}\n"),
        &into,
    );
    assert!(out.status.success(), "fetch.sh failed:\n{}", stderr(&out));
    assert_eq!(
        sha256_file(&into.join(project.tarball("m2").file_name().unwrap())),
        sha256_file(&project.tarball("m2"))
    );
    assert!(into
        .join(project.unpack("m2").file_name().unwrap())
        .join("install.sh")
        .is_file());
}
