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

/// A stand-in for `program` (`kube-scheduler`, `etcd`, `etcdctl`, ...) of `version`
/// (`1.20.2`, `3.4.23`) that the build accepts: a small ELF x86-64 executable stamped as
/// the real ones are (see [`elf_binary`]). It is never run.
pub fn stand_in(program: &str, version: &str) -> Vec<u8> {
    stand_in_with(program, version, b"stand-in")
}

/// [`stand_in`] with `payload` as its code, for tests about a binary's bytes or size.
pub fn stand_in_with(program: &str, version: &str, payload: &[u8]) -> Vec<u8> {
    stand_in_on(EM_X86_64, program, version, payload)
}

/// [`stand_in_with`] for another ELF machine (`EM_AARCH64`).
pub fn stand_in_on(machine: u16, program: &str, version: &str, payload: &[u8]) -> Vec<u8> {
    match program {
        // etcd keeps its release in `.data`, beside MinClusterVersion and APIVersion.
        "etcd" | "etcdctl" => {
            let path = match program {
                "etcd" => "go.etcd.io/etcd".to_string(),
                _ => "go.etcd.io/etcd/etcdctl".to_string(),
            };
            elf_binary(
                machine,
                Some(&format!("path\t{path}\nbuild\tGOOS=linux\n")),
                &["unknown", "3.0.0", version],
                payload,
            )
        }
        // Kubernetes sets its release with -X, and Go records the linker flags.
        _ => elf_binary(
            machine,
            Some(&format!(
                "path\tk8s.io/kubernetes/cmd/{program}\nbuild\t-ldflags=\"-s -w -X 'k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion=v{version}'\"\nbuild\tGOOS=linux\n"
            )),
            &[],
            payload,
        ),
    }
}

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// A minimal 64-bit little-endian ELF executable for `machine`: `payload` as `.text`,
/// `strings` in `.rodata` with a Go string header each in `.data` (pointer, length, in
/// order), and with `build_lines` a Go 1.18 `.go.buildinfo` holding them as the module
/// text `go version -m` prints.
pub fn elf_binary(
    machine: u16,
    build_lines: Option<&str>,
    strings: &[&str],
    payload: &[u8],
) -> Vec<u8> {
    const BASE: u64 = 0x400000;
    let mut file = vec![0u8; 64];
    // (name, type, flags, offset, size)
    let mut sections: Vec<(&str, u32, u64, usize, usize)> = Vec::new();
    let align = |file: &mut Vec<u8>, to: usize| file.resize(file.len().div_ceil(to) * to, 0);
    let text = file.len();
    file.extend_from_slice(payload);
    sections.push((".text", 1, 6, text, payload.len()));
    align(&mut file, 32);
    let rodata = file.len();
    let mut at = Vec::new();
    for s in strings {
        at.push(file.len());
        file.extend_from_slice(s.as_bytes());
    }
    sections.push((".rodata", 1, 2, rodata, file.len() - rodata));
    align(&mut file, 32);
    let data = file.len();
    for (s, offset) in strings.iter().zip(&at) {
        file.extend_from_slice(&(BASE + *offset as u64).to_le_bytes());
        file.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    sections.push((".data", 1, 3, data, file.len() - data));
    if let Some(lines) = build_lines {
        let varint = |file: &mut Vec<u8>, mut n: usize| {
            while n >= 0x80 {
                file.push((n as u8) | 0x80);
                n >>= 7;
            }
            file.push(n as u8);
        };
        align(&mut file, 16);
        let info = file.len();
        file.extend_from_slice(b"\xff Go buildinf:\x08\x02");
        file.resize(info + 32, 0);
        varint(&mut file, 8);
        file.extend_from_slice(b"go1.19.8");
        let mut module = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        module.extend_from_slice(lines.as_bytes());
        module.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        varint(&mut file, module.len());
        file.extend_from_slice(&module);
        sections.push((".go.buildinfo", 1, 3, info, file.len() - info));
    }
    let names_at = file.len();
    let mut name_offsets = vec![0u32];
    file.push(0);
    for (name, ..) in &sections {
        name_offsets.push((file.len() - names_at) as u32);
        file.extend_from_slice(name.as_bytes());
        file.push(0);
    }
    name_offsets.push((file.len() - names_at) as u32);
    file.extend_from_slice(b".shstrtab\0");
    sections.push((".shstrtab", 3, 0, names_at, file.len() - names_at));
    align(&mut file, 8);
    let shoff = file.len();
    file.extend_from_slice(&[0u8; 64]);
    for (i, (_, kind, flags, offset, size)) in sections.iter().enumerate() {
        let addr = if *flags != 0 {
            BASE + *offset as u64
        } else {
            0
        };
        file.extend_from_slice(&name_offsets[i + 1].to_le_bytes());
        file.extend_from_slice(&kind.to_le_bytes());
        file.extend_from_slice(&flags.to_le_bytes());
        file.extend_from_slice(&addr.to_le_bytes());
        file.extend_from_slice(&(*offset as u64).to_le_bytes());
        file.extend_from_slice(&(*size as u64).to_le_bytes());
        file.extend_from_slice(&[0u8; 8]);
        file.extend_from_slice(&1u64.to_le_bytes());
        file.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    header.extend_from_slice(&2u16.to_le_bytes()); // an executable
    header.extend_from_slice(&machine.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&(BASE + text as u64).to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&(shoff as u64).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    for half in [
        64u16,
        56,
        0,
        64,
        sections.len() as u16 + 1,
        sections.len() as u16,
    ] {
        header.extend_from_slice(&half.to_le_bytes());
    }
    file[..64].copy_from_slice(&header);
    file
}

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

    /// The test inventory carrying a stand-in kube-controller-manager binary.
    pub fn with_fake_binary() -> Self {
        let project = Project::new(&format!(
            "{INVENTORY}\n[kube-controller-manager]\nbinary = \"fake-kcm\"\n"
        ));
        project.write_binary("fake-kcm", &stand_in("kube-controller-manager", "1.20.2"));
        project
    }

    /// Writes an executable file (mode 0755).
    pub fn write_binary(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Writes `script` as the stand-in tool `name` into the folder `fake-tools`, which it
    /// returns (to put first in PATH).
    pub fn fake_tool(&self, name: &str, script: &str) -> PathBuf {
        let dir = self.path("fake-tools");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        dir
    }

    pub fn kube_bundle<A: AsRef<std::ffi::OsStr>>(&self, args: &[A]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
            .args(args)
            .current_dir(self.dir.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            // The project's own member cache, gone with it, not the user's.
            .env("KUBE_BUNDLE_CACHE", self.path("member-cache"))
            .output()
            .unwrap()
    }

    /// A run of kube-bundle `args` here, expecting exit 0 and no output until told
    /// otherwise (see [`Run`]).
    pub fn run(&self, args: &[&str]) -> Run<'_> {
        Run {
            project: self,
            args: args.iter().map(std::string::ToString::to_string).collect(),
            status: 0,
            stdout: Expected::Exactly(String::new()),
            stderr: Expected::Exactly(String::new()),
        }
    }

    /// [`Project::run`] of `build -c cluster.toml -o dist` followed by `extra`.
    pub fn run_build(&self, extra: &[&str]) -> Run<'_> {
        let mut args = vec!["build", "-c", "cluster.toml", "-o", "dist"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `kube-bundle verify args` here (options and bundles).
    pub fn verify<A: AsRef<std::ffi::OsStr>>(&self, args: &[A]) -> Output {
        let mut all = vec![std::ffi::OsString::from("verify")];
        all.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self.kube_bundle(&all)
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
        self.unpack_into(&self.tarball(node), &format!("unpacked-{node}"), node)
    }

    /// Builds `config` into the output folder `out` and unpacks `node`'s bundle from it
    /// into `unpacked-<out>`; returns the bundle folder.
    pub fn build_unpacked(&self, config: &str, out: &str, node: &str) -> PathBuf {
        let built = self.kube_bundle(&["build", "-c", config, "-o", out]);
        assert!(built.status.success(), "{}", stderr(&built));
        let tarball = self.path(&format!("{out}/control-plane-{node}.tar.gz"));
        self.unpack_into(&tarball, &format!("unpacked-{out}"), node)
    }

    fn unpack_into(&self, tarball: &Path, into: &str, node: &str) -> PathBuf {
        let into = self.path(into);
        std::fs::create_dir_all(&into).unwrap();
        run_ok(
            Command::new(tool("tar"))
                .arg("-xzf")
                .arg(tarball)
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
        openssl_command(&[
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

/// `sha256sum -c SHA256SUMS` in `dir`, which must pass: the names it checked, sorted.
pub fn sha256sum_checked(dir: &Path) -> Vec<String> {
    let checked = run_ok(
        Command::new(tool("sha256sum"))
            .args(["-c", "SHA256SUMS"])
            .current_dir(dir),
    );
    let mut ok: Vec<String> = checked
        .lines()
        .map(|l| {
            l.strip_suffix(": OK")
                .unwrap_or_else(|| panic!("{l}"))
                .to_string()
        })
        .collect();
    ok.sort();
    ok
}

/// The names in `dir` but `except`, sorted.
pub fn file_names(dir: &Path, except: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !except.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// `snapshot` of a node root but its lock, which every run of install.sh stamps with its
/// pid.
pub fn untouched(root: &Path) -> Vec<(String, String, u32)> {
    let mut all = snapshot(root);
    all.retain(|(rel, _, _)| rel != "var/backups/kube-bundle/.lock");
    all
}

/// One run of kube-bundle in a project and everything it must give back: the exit status
/// and exactly this stdout and stderr, empty unless said (just's `Test` builder). Where a
/// stream is not the contract (a build's progress notes), `stderr_has` names the parts
/// that must be in it instead. The project's folder in either stream reads as
/// `$PROJECT`.
#[must_use]
pub struct Run<'p> {
    project: &'p Project,
    args: Vec<String>,
    status: i32,
    stdout: Expected,
    stderr: Expected,
}

enum Expected {
    Exactly(String),
    Holding(Vec<String>),
}

impl Expected {
    fn holding(self, part: &str) -> Self {
        match self {
            Expected::Exactly(_) => Expected::Holding(vec![part.to_string()]),
            Expected::Holding(mut parts) => {
                parts.push(part.to_string());
                Expected::Holding(parts)
            }
        }
    }

    /// What is wrong with `have`, if anything.
    fn mismatch(&self, name: &str, have: &str) -> Option<String> {
        match self {
            Expected::Exactly(want) if want != have => Some(format!(
                "{name} differs\n--- want\n{want}--- have\n{have}---\nhave as a literal: {have:?}"
            )),
            Expected::Holding(parts) => {
                let missing: Vec<&String> = parts.iter().filter(|p| !have.contains(*p)).collect();
                (!missing.is_empty()).then(|| format!("{name} lacks {missing:?}:\n{have}"))
            }
            Expected::Exactly(_) => None,
        }
    }
}

impl<'p> Run<'p> {
    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    pub fn stdout(mut self, exactly: &str) -> Self {
        self.stdout = Expected::Exactly(exactly.to_string());
        self
    }

    pub fn stderr(mut self, exactly: &str) -> Self {
        self.stderr = Expected::Exactly(exactly.to_string());
        self
    }

    pub fn stderr_has(mut self, part: &str) -> Self {
        self.stderr = self.stderr.holding(part);
        self
    }

    /// Runs kube-bundle and panics with every difference from what was expected; returns
    /// the output for further checks.
    #[track_caller]
    pub fn check(self) -> Output {
        let out = self.project.kube_bundle(&self.args);
        let folder = self.project.dir.path().display().to_string();
        let local = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&folder, "$PROJECT");
        let (out_text, err_text) = (local(&out.stdout), local(&out.stderr));
        let mut wrong = Vec::new();
        if out.status.code() != Some(self.status) {
            wrong.push(format!(
                "status {:?}, want {}\nstderr:\n{err_text}",
                out.status.code(),
                self.status
            ));
        }
        wrong.extend(self.stdout.mismatch("stdout", &out_text));
        wrong.extend(self.stderr.mismatch("stderr", &err_text));
        assert!(
            wrong.is_empty(),
            "kube-bundle {:?}:\n{}",
            self.args,
            wrong.join("\n")
        );
        out
    }
}

/// `openssl args` in `dir`, which must succeed: its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    run_ok(openssl_command(args).current_dir(dir))
}

/// `openssl args`, to add paths to (`.arg`) or to expect a failure from.
pub fn openssl_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(tool("openssl"));
    cmd.args(args);
    cmd
}

/// A certificate's serial as `openssl x509 -serial` prints it.
pub fn serial_of(cert: &Path) -> String {
    run_ok(openssl_command(&["x509", "-noout", "-serial", "-in"]).arg(cert))
}

/// The public half of a private key (or a certificate's key, with `x509`), as PEM.
pub fn public_key_of(key: &Path) -> String {
    run_ok(openssl_command(&["pkey", "-pubout", "-in"]).arg(key))
}

/// `bash install.sh args` of an unpacked bundle.
pub fn install<A: AsRef<std::ffi::OsStr>>(bundle: &Path, args: &[A]) -> Output {
    install_command(bundle, args).output().unwrap()
}

/// [`install`] as a command, for a test that sets its environment.
pub fn install_command<A: AsRef<std::ffi::OsStr>>(bundle: &Path, args: &[A]) -> Command {
    let mut cmd = Command::new(tool("bash"));
    cmd.arg(bundle.join("install.sh")).args(args);
    cmd
}
