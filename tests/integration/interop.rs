//! What the ecosystem's own tools make of a pushed dist: `cosign verify --key` (offline, no
//! transparency log) accepts the signatures `push --cosign-key` writes and refuses them
//! with another key, and `oras manifest fetch`/`oras pull` read the artifacts back byte for
//! byte. cosign and oras are Debian's, from the `stable` suite of the machine's own Debian
//! archive, put in $KUBE_BUNDLE_CACHE/tools by scripts/deps.sh; the registry is Debian's
//! docker-registry on loopback, plain http.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;
use crate::registry::{
    assert_fails, binary_bytes, kube_bundle_stdin, project_with_binary, Registry, REPO,
};

/// cosign or oras as scripts/deps.sh leaves them; a missing one fails the test.
fn interop_tool(name: &str) -> PathBuf {
    let cache = std::env::var("KUBE_BUNDLE_CACHE").unwrap_or("/var/cache/kube-bundle".into());
    let path = Path::new(&cache).join("tools").join(name);
    assert!(
        path.is_file(),
        "`{}` is missing; run `scripts/deps.sh` (as root): it fetches cosign and oras from \
         the stable suite of this machine's Debian archive",
        path.display()
    );
    path
}

/// A tool run with HOME in `home`, so no user's cosign or oras state is read or written.
fn run_tool(name: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(interop_tool(name))
        .args(args)
        .env("HOME", home)
        .env("TUF_ROOT", home.join("tuf"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env_remove("COSIGN_EXPERIMENTAL")
        .output()
        .unwrap()
}

/// An EC P-256 key made by openssl, private to its owner.
fn ec_key(path: &Path) {
    run_ok(&mut openssl_command(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path.to_str().unwrap(),
    ]));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

struct Pushed {
    project: Project,
    reg: Registry,
    report: Value,
    stderr: String,
}

/// The project's dist pushed with `--plain-http` at `v1`, signed with `key` when given.
fn push(key: Option<&str>) -> Pushed {
    let project = project_with_binary(&binary_bytes((3 << 20) / 2, 3));
    let reg = Registry::start_with(false);
    let reference = reg.reference("v1");
    let mut args = vec![
        "push",
        "--allow-plain-secrets",
        "--plain-http",
        "--output",
        "json",
    ];
    if let Some(k) = key {
        ec_key(&project.path(k));
        args.extend(["--cosign-key", k]);
    }
    args.push(&reference);
    let out = kube_bundle_stdin(&project, &args, "");
    assert!(out.status.success(), "push failed:\n{}", stderr(&out));
    Pushed {
        report: serde_json::from_str(&stdout(&out)).unwrap(),
        stderr: stderr(&out),
        project,
        reg,
    }
}

impl Pushed {
    /// `127.0.0.1:port/k8s/control-plane@sha256:…`
    fn at(&self, digest: &str) -> String {
        format!("127.0.0.1:{}/{REPO}@{digest}", self.reg.port)
    }

    fn cosign_verify(&self, public_key: &Path, target: &str) -> Output {
        run_tool(
            "cosign",
            self.project.dir.path(),
            &[
                "verify",
                "--key",
                public_key.to_str().unwrap(),
                "--insecure-ignore-tlog=true",
                "--allow-insecure-registry",
                "--allow-http-registry",
                "--output",
                "json",
                target,
            ],
        )
    }
}

#[test]
fn cosign_verify_accepts_the_index_and_node_signatures_and_refuses_another_key() {
    let p = push(Some("cosign-key.pem"));
    let public_key = p.project.path("cosign-key.pem.pub");
    assert_eq!(mode_of(&public_key), 0o644);
    assert!(
        p.stderr
            .contains("cosign verify --key cosign-key.pem.pub --insecure-ignore-tlog=true"),
        "push says how to verify:\n{}",
        p.stderr
    );
    // The public half openssl reads from the private key is the one push wrote.
    let want = public_key_of(&p.project.path("cosign-key.pem"));
    assert_eq!(std::fs::read_to_string(&public_key).unwrap(), want);

    let signed: Vec<(String, String)> = p.report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["signs"].as_str().unwrap().to_string(),
                s["signed"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let nodes = p.report["nodes"].as_array().unwrap();
    assert_eq!(
        signed.len(),
        nodes.len() + 2,
        "index, nodes, dist: {signed:?}"
    );
    assert_eq!(
        signed[0],
        ("index".into(), p.report["digest"].as_str().unwrap().into())
    );
    for (n, s) in nodes.iter().zip(&signed[1..]) {
        assert_eq!(s.0, n["node"].as_str().unwrap());
        assert_eq!(s.1, n["digest"].as_str().unwrap());
    }

    let index = p.report["digest"].as_str().unwrap();
    let node = nodes[0]["digest"].as_str().unwrap();
    for digest in [index, node] {
        let out = p.cosign_verify(&public_key, &p.at(digest));
        assert!(
            out.status.success(),
            "cosign verify {digest}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        // cosign prints the payloads it checked: this digest, this repository.
        let payloads: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let payload = &payloads[0]["critical"];
        assert_eq!(payload["image"]["docker-manifest-digest"], digest);
        assert_eq!(
            payload["identity"]["docker-reference"],
            format!("127.0.0.1:{}/{REPO}", p.reg.port)
        );
        assert_eq!(payload["type"], "cosign container image signature");
        assert!(
            stderr(&out).contains("The signatures were verified against the specified public key"),
            "{}",
            stderr(&out)
        );
    }
    // By tag too: cosign resolves it to the index's digest.
    let out = p.cosign_verify(&public_key, &p.reg.reference("v1"));
    assert!(out.status.success(), "{}", stderr(&out));

    // Another key's public half verifies nothing.
    ec_key(&p.project.path("other.pem"));
    let other = p.project.path("other.pem.pub");
    let pem = public_key_of(&p.project.path("other.pem"));
    std::fs::write(&other, pem).unwrap();
    for digest in [index, node] {
        let out = p.cosign_verify(&other, &p.at(digest));
        assert!(!out.status.success(), "another key verified {digest}");
        assert!(
            stderr(&out).contains("no matching signatures"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn cosign_key_that_others_can_read_or_is_not_ec_is_refused_before_any_request() {
    let project = project_with_binary(&binary_bytes(1 << 16, 3));
    // Nothing listens on port 9: a request would fail otherwise.
    let reference = format!("127.0.0.1:9/{REPO}:v1");
    ec_key(&project.path("k.pem"));
    std::fs::set_permissions(
        project.path("k.pem"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let args = |key: &'static str| {
        [
            "push",
            "--allow-plain-secrets",
            "--plain-http",
            "--cosign-key",
            key,
            reference.as_str(),
        ]
        .map(str::to_string)
    };
    let run = |key: &'static str| {
        let a = args(key);
        kube_bundle_stdin(
            &project,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            "",
        )
    };
    let out = run("k.pem");
    assert_fails(
        &out,
        2,
        "--cosign-key `k.pem`: is readable by others (mode 640)",
    );
    assert_fails(&out, 2, "hint: run `chmod 600 k.pem`");
    assert!(!project.path("k.pem.pub").exists());

    project.write("rsa.pem", "");
    run_ok(&mut openssl_command(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        project.path("rsa.pem").to_str().unwrap(),
    ]));
    std::fs::set_permissions(
        project.path("rsa.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = run("rsa.pem");
    assert_fails(
        &out,
        2,
        "--cosign-key `rsa.pem`: is not a PEM EC P-256 private key",
    );
}

#[test]
fn oras_fetches_the_manifests_and_pulls_the_files_byte_for_byte() {
    let p = push(None);
    let home = p.project.dir.path();
    let index = p.report["digest"].as_str().unwrap();

    // The index as oras reads it lists every node's manifest and the dist's.
    let out = run_tool(
        "oras",
        home,
        &["manifest", "fetch", "--plain-http", &p.reg.reference("v1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(oci_digest(&out.stdout), index);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["artifactType"], "application/vnd.kube-bundle.set.v1");
    let listed: Vec<&str> = doc["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    let nodes = p.report["nodes"].as_array().unwrap();
    for n in nodes {
        assert!(listed.contains(&n["digest"].as_str().unwrap()));
    }
    assert!(listed.contains(&p.report["dist"]["digest"].as_str().unwrap()));

    // Each node's manifest, pulled by its node tag: the parts, in order, are the bundle.
    for n in nodes {
        let name = n["node"].as_str().unwrap();
        let out = run_tool(
            "oras",
            home,
            &[
                "manifest",
                "fetch",
                "--plain-http",
                &p.reg.reference(&format!("v1-{name}")),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(oci_digest(&out.stdout), n["digest"].as_str().unwrap());

        let into = p.project.path(&format!("oras-{name}"));
        let out = run_tool(
            "oras",
            home,
            &[
                "pull",
                "--plain-http",
                "-o",
                into.to_str().unwrap(),
                &p.reg.reference(&format!("v1-{name}")),
            ],
        );
        assert!(out.status.success(), "oras pull {name}:\n{}", stderr(&out));
        let parts = file_names(&into, &[]);
        assert_eq!(
            parts.len(),
            n["layers"].as_array().unwrap().len(),
            "{parts:?}"
        );
        let mut joined = Vec::new();
        for part in &parts {
            joined.extend(std::fs::read(into.join(part)).unwrap());
        }
        let bundle = std::fs::read(p.project.tarball(name)).unwrap();
        assert!(
            joined == bundle,
            "oras's parts of {name} are not its bundle"
        );
    }

    // The dist's files, pulled by digest, are the dist's own.
    let into = p.project.path("oras-dist");
    let dist = p.at(p.report["dist"]["digest"].as_str().unwrap());
    let out = run_tool(
        "oras",
        home,
        &["pull", "--plain-http", "-o", into.to_str().unwrap(), &dist],
    );
    assert!(out.status.success(), "oras pull dist:\n{}", stderr(&out));
    let files = file_names(&into, &[]);
    let pushed: Vec<String> = p.report["dist"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let mut want = pushed.clone();
    want.sort();
    assert_eq!(files, want);
    for f in &files {
        assert_eq!(
            std::fs::read(into.join(f)).unwrap(),
            std::fs::read(p.project.path(&format!("dist/{f}"))).unwrap(),
            "{f}"
        );
    }
}

fn oci_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
