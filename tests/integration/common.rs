//! Shared helpers: a scratch project with an inventory, the built binary, and the real
//! tools the tests drive. A missing tool fails the test with what to install; it never
//! skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const INVENTORY: &str = r#"[cluster]
kubernetes-version = "1.20.2"
apiserver = "https://{{node.ip}}:6443"
service-cidr = "10.254.0.0/16"
cluster-cidr = "172.30.0.0/16"

[pki]
# The tutorial's signing, as most tests expect; `tests/integration/signing.rs` covers the
# default signing CA.
csr-signing = "ca"
C = "CN"
ST = "BeiJing"
L = "BeiJing"
OU = "opsnull"

[[nodes]]
name = "m1"
ip = "127.0.1.1"

[[nodes]]
name = "m2"
ip = "127.0.1.2"

[[nodes]]
name = "m3"
ip = "127.0.1.3"
"#;

pub const FAKE_BINARY: &str = "#!/bin/sh\necho fake\n";

pub const NODES: [(&str, &str); 3] = [
    ("m1", "127.0.1.1"),
    ("m2", "127.0.1.2"),
    ("m3", "127.0.1.3"),
];

/// A scratch folder holding `cluster.toml`; `dist/` and `pki/` go beside it.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(inventory: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster.toml"), inventory).unwrap();
        Project { dir }
    }

    /// The test inventory carrying a small executable as the kube-controller-manager binary.
    pub fn with_fake_binary() -> Self {
        let project = Project::new(&format!(
            "{INVENTORY}\n[kube-controller-manager]\nbinary = \"fake-kcm\"\n"
        ));
        project.write("fake-kcm", FAKE_BINARY);
        std::fs::set_permissions(
            project.path("fake-kcm"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        project
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn kube_bundle(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
            .args(args)
            .current_dir(self.dir.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap()
    }

    pub fn build(&self) -> Output {
        self.build_with(&[])
    }

    /// `build -c cluster.toml -o dist` followed by `extra`.
    pub fn build_with(&self, extra: &[&str]) -> Output {
        let mut args = vec!["build", "-c", "cluster.toml", "-o", "dist"];
        args.extend_from_slice(extra);
        self.kube_bundle(&args)
    }

    pub fn build_ok(&self) -> String {
        let out = self.build();
        assert!(out.status.success(), "build failed:\n{}", stderr(&out));
        stderr(&out)
    }

    pub fn tarball(&self, node: &str) -> PathBuf {
        self.path(&format!("dist/control-plane-{node}.tar.gz"))
    }

    /// Unpacks a node's tarball with GNU tar and returns the bundle folder.
    pub fn unpack(&self, node: &str) -> PathBuf {
        let into = self.path(&format!("unpacked-{node}"));
        std::fs::create_dir_all(&into).unwrap();
        run_ok(
            Command::new(tool("tar"))
                .arg("-xzf")
                .arg(self.tarball(node))
                .arg("-C")
                .arg(&into),
        );
        into.join(format!("control-plane-{node}"))
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The path of a real tool; panics with the package to install when it is missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed; run `make deps` (as root) to install the test tools");
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// An RSA certificate and key made by `openssl req -x509` in `dir`, self-signed with the
/// given basicConstraints (`CA:TRUE` or `CA:FALSE`); returns (cert, key).
pub fn openssl_self_signed(
    dir: &Path,
    name: &str,
    cn: &str,
    constraints: &str,
) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    run_ok(
        Command::new(tool("openssl"))
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                &format!("/CN={cn}"),
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-addext",
                &format!("basicConstraints=critical,{constraints}"),
            ]),
    );
    (cert, key)
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every entry under `root`, relative, with its sha256 (a symlink: its target; links are
/// never followed): a snapshot to prove a folder was left untouched.
pub fn snapshot(root: &Path) -> Vec<(String, String, u32)> {
    let mut all = Vec::new();
    if !root.exists() {
        return all;
    }
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        if entry.path_is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            all.push((rel, format!("-> {}", target.display()), 0));
            continue;
        }
        let sha = if entry.file_type().is_file() {
            sha256_file(entry.path())
        } else {
            String::new()
        };
        all.push((rel, sha, mode_of(entry.path())));
    }
    all
}

/// `snapshot` of a node root but its lock, which every run of install.sh stamps with its
/// pid.
pub fn untouched(root: &Path) -> Vec<(String, String, u32)> {
    let mut all = snapshot(root);
    all.retain(|(rel, _, _)| rel != "var/backups/kube-bundle/.lock");
    all
}
