//! install.sh under faults, with `--root`: the review's node-side reproductions (a run
//! killed half-way, failing copies, signals, a second run at once, symlinks inside the
//! root, umask 000, repeated uninstalls, masks and drop-ins, certificates out of their
//! validity, no awk). Each test fails on the install.sh before the node-safety work.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Two bundles for m1, A and B (B adds `--v=4` to the unit), both unpacked.
struct Versions {
    project: Project,
    a: PathBuf,
    b: PathBuf,
    root: PathBuf,
}

const UNIT: &str = "etc/systemd/system/kube-controller-manager.service";
const BACKUPS: &str = "var/backups/kube-bundle";

fn versions() -> Versions {
    let project = Project::with_fake_binary();
    project.build_ok();
    let a = project.unpack("m1");
    let inventory = std::fs::read_to_string(project.path("cluster.toml")).unwrap();
    project.write(
        "b.toml",
        &format!("{inventory}\n[kube-controller-manager.extra-args]\nv = 4\n"),
    );
    let b = project.build_unpacked("b.toml", "dist-b", "m1");
    let root = project.path("root");
    Versions {
        project,
        a,
        b,
        root,
    }
}

fn run(bundle: &Path, args: &[&str], path_first: Option<&Path>) -> Output {
    command(bundle, args, path_first).output().unwrap()
}

fn command(bundle: &Path, args: &[&str], path_first: Option<&Path>) -> Command {
    let mut cmd = install_command(bundle, args);
    if let Some(dir) = path_first {
        cmd.env(
            "PATH",
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
        );
    }
    cmd
}

impl Versions {
    fn root_arg(&self) -> &str {
        self.root.to_str().unwrap()
    }

    fn install_ok(&self, bundle: &Path) {
        let out = run(bundle, &["--root", self.root_arg()], None);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }

    fn unit(&self) -> Vec<u8> {
        std::fs::read(self.root.join(UNIT)).unwrap()
    }

    fn bundle_unit(bundle: &Path) -> Vec<u8> {
        std::fs::read(bundle.join("rootfs").join(UNIT)).unwrap()
    }

    /// Complete releases, oldest first.
    fn releases(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.root.join(BACKUPS))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    }

    /// A folder of stand-in tools, put first in PATH.
    fn fake(&self, name: &str, script: &str) -> PathBuf {
        self.project.fake_tool(name, script)
    }

    fn pid_in_lock(&self) -> String {
        format!("{}/{BACKUPS}/.lock", self.root.display())
    }
}

/// The review's H1: install.sh killed (SIGKILL) while it replaces files; `--rollback`
/// then restores exactly the release that install replaced (A), not the one before it.
#[test]
fn rollback_after_a_killed_install_restores_exactly_what_it_replaced() {
    let v = versions();
    v.install_ok(&v.a);
    let counter = v.project.path("mv-count");
    let fakes = v.fake(
        "mv",
        &format!(
            "#!/bin/bash\nn=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n >{c}\n\
             if [ $n = 2 ]; then read -r pid _ <{lock}; kill -9 \"$pid\"; exit 1; fi\n\
             exec {mv} \"$@\"\n",
            c = counter.display(),
            lock = v.pid_in_lock(),
            mv = tool("mv").display()
        ),
    );
    let out = run(&v.b, &["--root", v.root_arg()], Some(&fakes));
    assert_eq!(out.status.code(), None, "killed: {}", stderr(&out));
    assert!(v.root.join(BACKUPS).join(".pending").exists());

    let out = run(&v.b, &["--root", v.root_arg(), "--rollback"], None);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("rolled back to the release the interrupted install replaced"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("left by an earlier run that was killed"),
        "the killed run's temporary file is removed: {}",
        stdout(&out)
    );
    assert_eq!(v.unit(), Versions::bundle_unit(&v.a), "A is back");
    for (rel, _) in crate::install::INSTALLED {
        assert!(v.root.join(rel).is_file(), "{rel} kept");
    }
    let leftovers: Vec<String> = walkdir::WalkDir::new(v.root.join("etc"))
        .into_iter()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!v.root.join(BACKUPS).join(".pending").exists());
    // The release before A (the empty node) is still there to go back to.
    assert_eq!(v.releases().len(), 1);
}

/// The review's H2 and D9: a copy into the release fails (full disk), or a write of a node
/// file fails mid-install. install.sh stops, names the file, and the node keeps A whole.
#[test]
fn a_failing_copy_stops_the_install_and_keeps_the_node_whole() {
    let v = versions();
    v.install_ok(&v.a);
    let before = snapshot(&v.root.join("etc"));
    let fakes = v.fake(
        "cp",
        &format!(
            "#!/bin/bash\nfor a; do :; done\n\
             [[ $a == */var/backups/*/kube-controller-manager.service ]] && {{ echo \"cp: error writing '$a': No space left on device\" >&2; exit 1; }}\n\
             exec {} \"$@\"\n",
            tool("cp").display()
        ),
    );
    let out = run(&v.b, &["--root", v.root_arg()], Some(&fakes));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("install.sh: error: keeping a copy of /etc/systemd/system/kube-controller-manager.service in")
            && err.contains("No space left on device")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(snapshot(&v.root.join("etc")), before);
    assert_eq!(v.releases().len(), 1, "no incomplete release is left");

    // Now the write of the binary fails after the unit is in: back to A.
    let fakes = v.fake(
        "cp",
        &format!(
            "#!/bin/bash\nfor a; do :; done\n\
             [[ $a == */etc/systemd/system/.kube-controller-manager.service.* ]] && {{ echo \"cp: error writing '$a': Input/output error\" >&2; exit 1; }}\n\
             exec {} \"$@\"\n",
            tool("cp").display()
        ),
    );
    std::fs::write(v.root.join("etc/kubernetes/cert/sa.pub"), "drifted\n").unwrap();
    let drifted = snapshot(&v.root.join("etc"));
    let out = run(&v.b, &["--root", v.root_arg()], Some(&fakes));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("install.sh: error: writing ")
            && err.contains(
                "etc/systemd/system/kube-controller-manager.service failed: cp: error writing"
            )
            && err.contains("the previous release is back in place"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("installed /etc/kubernetes/cert/sa.pub"),
        "a file was already replaced: {}",
        stdout(&out)
    );
    assert_eq!(snapshot(&v.root.join("etc")), drifted, "every file back");
    assert_eq!(
        v.releases().len(),
        1,
        "the failed install's release does not stay"
    );
}

/// The review's D7: failed installs do not push real releases out of the history, so
/// `--rollback` still reaches every older release.
#[test]
fn failed_installs_keep_the_rollback_history() {
    let v = versions();
    v.install_ok(&v.a);
    v.install_ok(&v.b);
    let fakes = v.fake(
        "chmod",
        &format!(
            "#!/bin/bash\nfor a; do :; done\n[[ $a == */.kube-controller-manager.service.* ]] && exit 1\nexec {} \"$@\"\n",
            tool("chmod").display()
        ),
    );
    for _ in 0..6 {
        std::fs::write(v.root.join(UNIT), "edited\n").unwrap();
        let out = run(&v.a, &["--root", v.root_arg()], Some(&fakes));
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    }
    assert_eq!(v.releases().len(), 2, "{:?}", v.releases());
    let out = run(&v.a, &["--root", v.root_arg(), "--rollback"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(v.unit(), Versions::bundle_unit(&v.a), "back to A");
    let out = run(&v.a, &["--root", v.root_arg(), "--rollback"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!v.root.join(UNIT).exists(), "back to the empty node");
}

/// The review's D8 with `--root`: SIGTERM while install.sh replaces files puts the
/// previous release back before it exits.
#[test]
fn sigterm_during_an_install_restores_the_previous_release() {
    let v = versions();
    v.install_ok(&v.a);
    let before = snapshot(&v.root.join("etc"));
    let started = v.project.path("mv-started");
    let fakes = v.fake(
        "mv",
        &format!(
            "#!/bin/bash\n[[ $* == *kube-controller-manager.service* ]] && {{ touch {s}; sleep 2; }}\nexec {mv} \"$@\"\n",
            s = started.display(),
            mv = tool("mv").display()
        ),
    );
    let child = command(&v.b, &["--root", v.root_arg()], Some(&fakes))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "never reached the unit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run_ok(Command::new(tool("kill")).args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("interrupted by SIGTERM; the previous release is back in place"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&v.root.join("etc")), before);
    assert!(!v.root.join(BACKUPS).join(".pending").exists());
    assert_eq!(v.releases().len(), 1);
}

/// The review's D4: a second run while one holds the node lock waits, then fails with a
/// message naming the holder, and changes nothing; a lock kept by a leftover child of a
/// dead install.sh is reported as stale, with the process that holds it.
#[test]
fn a_second_run_at_once_is_refused_and_a_stale_lock_is_named() {
    let v = versions();
    v.install_ok(&v.a);
    let lock = v.pid_in_lock();
    let before = snapshot(&v.root.join("etc"));
    // A live holder: this shell, as if it were an install.sh.
    let mut holder = Command::new(tool("bash"))
        .arg("-c")
        .arg(format!(
            "exec 9>>{lock}; flock 9; echo \"$$ install control-plane-m1\" >{lock}; echo locked; exec sleep 60"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let out = run(&v.b, &["--root", v.root_arg()], None);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "another run is working on this node: install.sh (pid {}, install of control-plane-m1) holds",
            holder.id()
        )) && stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&v.root.join("etc")), before);

    // A dead install.sh whose background child still holds the lock.
    let out = Command::new(tool("bash"))
        .arg("-c")
        .arg(format!(
            "exec 9>>{lock}; flock 9; echo \"$$ install x\" >{lock}; setsid sleep 60 >/dev/null 2>&1 & echo $!"
        ))
        .output()
        .unwrap();
    let child = stdout(&out).trim().to_string();
    let out = run(&v.b, &["--root", v.root_arg()], None);
    run_ok(Command::new(tool("kill")).arg(&child));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("has ended, but the lock is stale: processes it started still hold it:")
            && stderr(&out).contains(&format!(" {child} (sleep)")),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&v.root.join("etc")), before);
}

/// The review's M5 and L4: absolute symlinks inside the root are resolved inside it, and a
/// relative `--root` is the caller's.
#[test]
fn root_symlinks_resolve_inside_the_root_and_relative_root_is_the_callers() {
    let v = versions();
    let victim = v.project.path("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::create_dir_all(v.root.join("etc")).unwrap();
    std::fs::create_dir_all(v.root.join("srv/kube")).unwrap();
    // Absolute, as in an image: meaningful only inside the root.
    std::os::unix::fs::symlink(&victim, v.root.join("etc/kubernetes")).unwrap();
    std::os::unix::fs::symlink("/srv/kube", v.root.join("opt")).unwrap();
    let out = command(&v.a, &["--root", "root"], None)
        .current_dir(v.project.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        snapshot(&victim).len(),
        1,
        "nothing written outside the root"
    );
    let inside = v
        .root
        .join(victim.strip_prefix("/").unwrap())
        .join("cert/ca-key.pem");
    assert!(inside.is_file(), "{} missing", inside.display());
    assert!(v
        .root
        .join("srv/kube/k8s/bin/kube-controller-manager")
        .is_file());
    assert!(
        !v.a.join("root").exists(),
        "a relative --root is not the bundle's folder"
    );
}

/// The review's M6: with umask 000, no folder install.sh creates is wider than 0755, and
/// the folders holding keys are 0700.
#[test]
fn folders_are_never_world_writable_whatever_the_umask() {
    let v = versions();
    let out = Command::new(tool("bash"))
        .arg("-c")
        .arg("umask 000; exec bash \"$0\" --root \"$1\"")
        .arg(v.a.join("install.sh"))
        .arg(&v.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for entry in walkdir::WalkDir::new(&v.root) {
        let entry = entry.unwrap();
        if entry.file_type().is_dir() {
            let mode = mode_of(entry.path());
            assert_eq!(mode & 0o022, 0, "{} is {mode:o}", entry.path().display());
        }
    }
    assert_eq!(mode_of(&v.root.join("etc/kubernetes/cert")), 0o700);
    assert_eq!(mode_of(&v.root.join(BACKUPS)), 0o700);
    assert_eq!(mode_of(&v.root.join("etc/kubernetes")), 0o755);
}

/// The review's L8 and L3: a second uninstall records no empty release, uninstalls never
/// keep more than five releases, and incomplete releases of killed runs are removed.
#[test]
fn repeated_uninstalls_keep_the_history_useful() {
    let v = versions();
    v.install_ok(&v.a);
    let out = run(&v.a, &["--root", v.root_arg(), "--uninstall"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let after_first = v.releases();
    let out = run(&v.a, &["--root", v.root_arg(), "--uninstall"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing to uninstall"),
        "{}",
        stdout(&out)
    );
    assert_eq!(v.releases(), after_first, "no empty release recorded");
    // --rollback restores the uninstalled files.
    let out = run(&v.a, &["--root", v.root_arg(), "--rollback"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(v.unit(), Versions::bundle_unit(&v.a));

    for _ in 0..8 {
        v.install_ok(&v.a);
        let out = run(&v.a, &["--root", v.root_arg(), "--uninstall"], None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(v.releases().len(), 5, "{:?}", v.releases());
    // A release a killed run never finished is removed by the next run.
    let incomplete = v.root.join(BACKUPS).join("20000101T000000Z-1");
    std::fs::create_dir_all(incomplete.join("etc")).unwrap();
    v.install_ok(&v.a);
    assert!(!incomplete.exists());
}

/// The review's D10 and D11 with `--root`: a masked unit is refused naming the mask, and
/// a drop-in override is drift for `--check`.
#[test]
fn a_mask_is_refused_and_a_drop_in_is_drift() {
    let v = versions();
    std::fs::create_dir_all(v.root.join("etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink("/dev/null", v.root.join(UNIT)).unwrap();
    let out = run(&v.a, &["--root", v.root_arg()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("kube-controller-manager.service is masked (/etc/systemd/system/kube-controller-manager.service -> /dev/null)")
            && stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert!(v.root.join(UNIT).is_symlink(), "the mask stays");
    assert!(!v.root.join("etc/kubernetes").exists());

    std::fs::remove_file(v.root.join(UNIT)).unwrap();
    v.install_ok(&v.a);
    let dropin = v
        .root
        .join("etc/systemd/system/kube-controller-manager.service.d/override.conf");
    std::fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    std::fs::write(&dropin, "[Service]\nExecStart=\nExecStart=/bin/false\n").unwrap();
    let out = run(&v.a, &["--root", v.root_arg(), "--check"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("drift: the drop-in /etc/systemd/system/kube-controller-manager.service.d/override.conf changes kube-controller-manager.service"),
        "{}",
        stdout(&out)
    );
}

/// Rewrites the certificate dates rendered into a bundle's install.sh, with SHA256SUMS
/// made to match (an unsigned bundle's checksums are only against damage).
fn with_certificate_dates(bundle: &Path, not_before: &str, not_after: &str) {
    let script = bundle.join("install.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    let start = text.find("readonly CERTIFICATES=(").unwrap();
    let end = start + text[start..].find("\n)\n").unwrap();
    let lines: Vec<String> = text[start..end]
        .lines()
        .skip(1)
        .map(|l| {
            let path = l.split_whitespace().nth(2).unwrap();
            format!("    \"{not_before} {not_after} {path}\"")
        })
        .collect();
    assert!(!lines.is_empty());
    let text = format!(
        "{}readonly CERTIFICATES=(\n{}{}",
        &text[..start],
        lines.join("\n"),
        &text[end..]
    );
    std::fs::write(&script, text).unwrap();
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).unwrap();
    let sums: String = sums
        .lines()
        .map(|l| {
            if l.ends_with("  install.sh") {
                format!("{}  install.sh\n", sha256_file(&script))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(bundle.join("SHA256SUMS"), sums).unwrap();
}

/// The review's D13 and D14: expired or not yet valid certificates are refused before any
/// change, and `--check` reports expiry from the rendered dates without awk.
#[test]
fn certificates_out_of_their_validity_are_refused_and_checked_without_awk() {
    let v = versions();
    v.install_ok(&v.a);
    let before = snapshot(&v.root);
    with_certificate_dates(&v.b, "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z");
    let out = run(&v.b, &["--root", v.root_arg()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("expired on 2021-01-01T00:00:00Z")
            && stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&v.root), before);
    with_certificate_dates(&v.b, "2999-01-01T00:00:00Z", "3000-01-01T00:00:00Z");
    let out = run(&v.b, &["--root", v.root_arg()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not valid before 2999-01-01T00:00:00Z"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&v.root), before);

    // --check with a PATH holding no awk.
    let soon = Command::new(tool("date"))
        .args(["-u", "-d", "+10 days", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let soon = stdout(&soon).trim().to_string();
    with_certificate_dates(&v.a, "2020-01-01T00:00:00Z", &soon);
    let bin = v.project.path("no-awk");
    std::fs::create_dir_all(&bin).unwrap();
    for entry in std::fs::read_dir("/usr/bin").unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.contains("awk") {
            let _ = std::os::unix::fs::symlink(entry.path(), bin.join(&name));
        }
    }
    let out = Command::new(bin.join("bash"))
        .arg(v.a.join("install.sh"))
        .args(["--root", v.root_arg(), "--check"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "drift: /etc/kubernetes/cert/ca.pem expires on {soon}, within 30 days"
        )),
        "{}",
        stdout(&out)
    );
    assert!(!stderr(&out).contains("awk"), "{}", stderr(&out));
}

/// The review's D12 and part of M7: rollout.sh finds the leader by the same rule as
/// `kube-bundle rollout-plan` when node names are FQDNs (the leader goes last), and with
/// `--trust` checks every tarball's signature before any master changes.
#[test]
fn rollout_sh_puts_an_fqdn_leader_last_and_checks_signatures_first() {
    let inventory = INVENTORY
        .replace("name = \"m1\"", "name = \"m1.lab\"")
        .replace("name = \"m2\"", "name = \"m2.lab\"")
        .replace("name = \"m3\"", "name = \"m3.lab\"");
    let project = Project::new(&inventory);
    // A kubectl that reports m1.lab as the holder of every Lease.
    project.write(
        "bin/kubectl",
        "#!/bin/sh\necho \"$*\" >>\"$(dirname \"$0\")/kubectl.log\"\nprintf 'm1.lab_0b7c5a2e-7d1c'\n",
    );
    std::fs::set_permissions(
        project.path("bin/kubectl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    run_ok(
        Command::new(tool("ssh-keygen"))
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(project.path("sk")),
    );
    let public = std::fs::read_to_string(project.path("sk.pub")).unwrap();
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    project.write(
        "allowed",
        &format!("ops namespaces=\"kube-bundle\" {}\n", key.join(" ")),
    );
    let out = project.build_with(&["--sign", project.path("sk").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    project.write("kubeconfig", "");
    let path = format!(
        "{}:{}",
        project.path("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let rollout = |args: &[&str]| {
        Command::new(tool("bash"))
            .arg(project.path("dist/rollout.sh"))
            .args(args)
            .env("PATH", &path)
            .env("KUBE_BUNDLE", env!("CARGO_BIN_EXE_kube-bundle"))
            .output()
            .unwrap()
    };
    let kubeconfig = project.path("kubeconfig");
    let allowed = project.path("allowed");
    let args = [
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--trust",
        allowed.to_str().unwrap(),
        "--dry-run",
    ];
    let out = rollout(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let log = stdout(&out);
    let steps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("would copy"))
        .map(|l| l.split(':').nth(1).unwrap().trim())
        .collect();
    assert_eq!(
        steps,
        [
            "[1/3] m2.lab (127.0.1.2)",
            "[2/3] m3.lab (127.0.1.3)",
            "[3/3] m1.lab (127.0.1.1), leader of kube-controller-manager"
        ],
        "{log}"
    );
    assert!(
        log.contains("current kube-controller-manager leader: m1.lab (m1.lab_0b7c5a2e-7d1c)"),
        "{log}"
    );
    assert!(
        log.contains("m3.lab: control-plane-m3.lab.tar.gz is signed by a key in"),
        "{log}"
    );
    let plan = Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(["rollout-plan", "-c", "cluster.toml", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(project.dir.path())
        .env("PATH", &path)
        .output()
        .unwrap();
    let plan = format!("{}{}", stdout(&plan), stderr(&plan));
    assert!(plan.contains("3. m1.lab"), "rollout-plan agrees: {plan}");

    // A tarball whose SHA256SUMS was re-signed by nobody: refused before any master.
    let tarball = project.path("dist/control-plane-m3.lab.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 40);
    std::fs::write(&tarball, bytes).unwrap();
    let out = rollout(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("m3.lab: kube-bundle verify --trust refuses")
            && stderr(&out).contains("no master was changed"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("would copy"), "{}", stdout(&out));
}

/// Two components on one node: a file of one component restarts only its unit, the shared
/// CA restarts both, in start order; `--uninstall --purge` and `--rollback` cover both.
#[test]
fn two_components_restart_only_what_changed_and_go_back_together() {
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-controller-manager]\nbinary = \"fake-kcm\"\n[kube-scheduler]\nbinary = \"fake-ks\"\n"
    ));
    for (f, program) in [
        ("fake-kcm", "kube-controller-manager"),
        ("fake-ks", "kube-scheduler"),
    ] {
        project.write_binary(f, &stand_in(program, "1.20.2"));
    }
    project.build_ok();
    let a = project.unpack("m1");
    let root = project.path("root");
    let root_arg = root.to_str().unwrap();
    let out = run(&a, &["--root", root_arg], None);
    assert!(out.status.success(), "{}", stderr(&out));
    for rel in [
        "etc/systemd/system/kube-controller-manager.service",
        "etc/systemd/system/kube-scheduler.service",
        "etc/kubernetes/kube-scheduler.yaml",
        "etc/kubernetes/kube-scheduler.kubeconfig",
        "opt/k8s/bin/kube-scheduler",
    ] {
        assert!(root.join(rel).is_file(), "{rel}");
    }
    assert!(root.join("data/k8s/k8s/kube-scheduler").is_dir());

    let restarts = |edit: &str| {
        std::fs::write(root.join(edit), "edited\n").unwrap();
        let out = run(&a, &["--dry-run", "--root", root_arg], None);
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("install.sh: units whose files change: "))
            .map(str::to_string)
            .unwrap_or_default();
        let out = run(&a, &["--root", root_arg], None);
        assert!(out.status.success(), "{}", stderr(&out));
        line
    };
    assert_eq!(
        restarts("etc/kubernetes/kube-scheduler.yaml"),
        "kube-scheduler.service (not restarted with --root)"
    );
    assert_eq!(
        restarts("etc/kubernetes/kube-controller-manager.kubeconfig"),
        "kube-controller-manager.service (not restarted with --root)"
    );
    assert_eq!(
        restarts("etc/kubernetes/cert/ca.pem"),
        "kube-controller-manager.service kube-scheduler.service (not restarted with --root)",
        "the shared CA restarts both, in start order"
    );
    let script = std::fs::read_to_string(a.join("install.sh")).unwrap();
    assert!(
        script.contains(
            "FILE_COMPONENTS[\"/etc/kubernetes/kube-scheduler.yaml\"]=\"kube-scheduler\""
        ) && script.contains(
            "FILE_COMPONENTS[\"/etc/kubernetes/cert/ca.pem\"]=\"kube-controller-manager,kube-scheduler\""
        ),
        "{script}"
    );

    let out = run(&a, &["--root", root_arg, "--uninstall", "--purge"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("uninstalled kube-controller-manager kube-scheduler"),
        "{}",
        stdout(&out)
    );
    assert!(!root.join("data/k8s/k8s/kube-scheduler").exists());
    assert!(!root.join("data/k8s/k8s/kube-controller-manager").exists());
    assert!(!root.join("etc/kubernetes/kube-scheduler.yaml").exists());
    let out = run(&a, &["--root", root_arg, "--rollback"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(root.join("etc/kubernetes/kube-scheduler.yaml").is_file());
    assert!(
        root.join("data/k8s/k8s/kube-scheduler").is_dir(),
        "work dirs recreated"
    );
    assert!(root.join("data/k8s/k8s/kube-controller-manager").is_dir());
}
