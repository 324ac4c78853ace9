//! install.sh run for real with `--root` into a scratch folder: modes, atomic replace with
//! backups, a second run, dry runs, and refusals (tampered, extra or missing files, no
//! sha256 tool, not root) that leave the target untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

fn built() -> (Project, PathBuf) {
    let project = Project::with_fake_binary();
    project.build_ok();
    let bundle = project.unpack("m1");
    (project, bundle)
}

pub(crate) const INSTALLED: [(&str, u32); 9] = [
    ("etc/kubernetes/cert/ca.pem", 0o644),
    ("etc/kubernetes/cert/ca-key.pem", 0o600),
    ("etc/kubernetes/cert/kube-controller-manager.pem", 0o644),
    ("etc/kubernetes/cert/kube-controller-manager-key.pem", 0o600),
    ("etc/kubernetes/cert/sa.key", 0o600),
    ("etc/kubernetes/cert/sa.pub", 0o644),
    ("etc/kubernetes/kube-controller-manager.kubeconfig", 0o600),
    ("etc/systemd/system/kube-controller-manager.service", 0o644),
    ("opt/k8s/bin/kube-controller-manager", 0o755),
];

#[test]
fn installs_every_file_with_its_mode_and_is_safe_to_rerun() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    let out = install(&bundle, &["--root", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for (rel, mode) in INSTALLED {
        let dest = root.join(rel);
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(bundle.join("rootfs").join(rel)).unwrap(),
            "{rel}"
        );
        assert_eq!(mode_of(&dest), mode, "{rel}");
    }
    assert!(
        root.join("data/k8s/k8s/kube-controller-manager").is_dir(),
        "work dir exists before the service starts"
    );
    assert!(stdout(&out).contains("systemctl was not run"));
    let no_temp_left = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_entry(|e| !e.path().ends_with("var/backups"))
        .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.'));
    assert!(no_temp_left, "no temporary files remain");
    assert_eq!(
        releases(&root).len(),
        1,
        "the empty node is kept as a release to go back to"
    );

    // A second run changes nothing and succeeds (the lock file names the last run).
    let unlocked = |root: &Path| {
        let mut all = snapshot(root);
        all.retain(|(rel, _, _)| !rel.ends_with("/.lock"));
        all
    };
    let before = unlocked(&root);
    let out = install(&bundle, &["--root", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing changed: every file is up to date"),
        "{}",
        stdout(&out)
    );
    assert_eq!(unlocked(&root), before);

    // A changed file on the node is replaced, and the old copy kept for root only.
    let unit = root.join("etc/systemd/system/kube-controller-manager.service");
    std::fs::write(&unit, "edited by hand\n").unwrap();
    let key = root.join("etc/kubernetes/cert/sa.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = install(&bundle, &["--root", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stdout(&out);
    assert!(
        log.contains("installed /etc/systemd/system/kube-controller-manager.service")
            && log.contains("installed /etc/kubernetes/cert/sa.key"),
        "{log}"
    );
    assert!(
        !log.contains("installed /etc/kubernetes/cert/ca.pem"),
        "only what changed is installed: {log}"
    );
    assert_eq!(
        std::fs::read(&unit).unwrap(),
        std::fs::read(bundle.join("rootfs/etc/systemd/system/kube-controller-manager.service"))
            .unwrap()
    );
    assert_eq!(mode_of(&key), 0o600, "a loosened key mode is put right");
    let kept = releases(&root);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(mode_of(&kept[1]), 0o700);
    assert_eq!(
        std::fs::read_to_string(kept[1].join("etc/systemd/system/kube-controller-manager.service"))
            .unwrap(),
        "edited by hand\n"
    );
    assert_eq!(mode_of(&kept[1].join("etc/kubernetes/cert/sa.key")), 0o644);

    // --rollback goes back one release at a time: to the hand-edited files, then to nothing.
    let out = install(&bundle, &["--root", root.to_str().unwrap(), "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), "edited by hand\n");
    assert_eq!(mode_of(&key), 0o644);
    let out = install(&bundle, &["--root", root.to_str().unwrap(), "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (rel, _) in INSTALLED {
        assert!(
            !root.join(rel).exists(),
            "{rel} removed: the first release had no files"
        );
    }
    let out = install(&bundle, &["--root", root.to_str().unwrap(), "--rollback"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no release to roll back to"),
        "{}",
        stderr(&out)
    );
}

fn releases(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("var/backups/kube-bundle"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn check_reports_drift_and_nothing_else() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    let root_arg = root.to_str().unwrap();
    assert!(install(&bundle, &["--root", root_arg]).status.success());
    let out = install(&bundle, &["--root", root_arg, "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("no drift"), "{}", stdout(&out));

    let before = snapshot(&root);
    std::fs::write(
        root.join("etc/systemd/system/kube-controller-manager.service"),
        "[Service]\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/kubernetes/cert/ca-key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_dir(root.join("data/k8s/k8s/kube-controller-manager")).unwrap();
    let edited = snapshot(&root);
    let out = install(&bundle, &["--root", root_arg, "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let log = stdout(&out);
    let drift: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("drift:"))
        .map(|l| l.trim_start_matches("install.sh: "))
        .collect::<Vec<_>>();
    assert_eq!(
        drift,
        [
            "drift: /etc/kubernetes/cert/ca-key.pem has mode 644, the bundle says 0600",
            "drift: /etc/systemd/system/kube-controller-manager.service differs from the bundle",
            "drift: the work dir /data/k8s/k8s/kube-controller-manager is missing",
        ]
    );
    assert_eq!(snapshot(&root), edited, "--check changes nothing");
    assert_ne!(before, edited);
}

#[test]
fn uninstall_then_install_again() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    let root_arg = root.to_str().unwrap();
    assert!(install(&bundle, &["--root", root_arg]).status.success());
    std::fs::write(root.join("data/k8s/k8s/kube-controller-manager/state"), "x").unwrap();
    let out = install(&bundle, &["--root", root_arg, "--uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (rel, _) in INSTALLED {
        assert!(!root.join(rel).exists(), "{rel} removed");
    }
    assert!(
        root.join("data/k8s/k8s/kube-controller-manager/state")
            .exists(),
        "work dir data kept without --purge"
    );
    let kept = releases(&root);
    assert!(
        kept.last()
            .unwrap()
            .join("etc/kubernetes/cert/ca-key.pem")
            .exists(),
        "uninstall keeps a release"
    );
    assert!(install(&bundle, &["--root", root_arg]).status.success());
    for (rel, mode) in INSTALLED {
        assert_eq!(mode_of(&root.join(rel)), mode, "{rel}");
    }
    let out = install(&bundle, &["--root", root_arg, "--uninstall", "--purge"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!root.join("data/k8s/k8s/kube-controller-manager").exists());
}

/// `--purge` never removes through a symlink: a work dir linked to the node's root is
/// refused before anything changes, however `--root` is spelt, and one linked elsewhere
/// goes as a link, what it points to kept.
#[test]
fn purge_removes_a_linked_work_dir_as_a_link() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    let r = root.to_str().unwrap().to_string();
    assert!(install(&bundle, &["--root", &r]).status.success());
    let work = root.join("data/k8s/k8s/kube-controller-manager");
    std::fs::remove_dir(&work).unwrap();
    std::os::unix::fs::symlink("/", &work).unwrap();
    let before = untouched(&root);
    for spelling in [format!("{r}/"), format!("{r}//"), format!("{r}/.")] {
        let out = install(&bundle, &["--root", &spelling, "--uninstall", "--purge"]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert_eq!(
            stderr(&out),
            "install.sh: error: refusing --purge: the work dir of kube-controller-manager, /data/k8s/k8s/kube-controller-manager, leads to /, which is the node's root /; nothing was removed or stopped: change the link (or the inventory's dirs), or run --uninstall without --purge\n"
        );
        assert_eq!(untouched(&root), before, "{spelling}");
    }
    std::fs::create_dir_all(root.join("mnt/logs")).unwrap();
    std::fs::write(root.join("mnt/logs/kept"), "x").unwrap();
    std::fs::remove_file(&work).unwrap();
    std::os::unix::fs::symlink("/mnt/logs", &work).unwrap();
    let out = install(
        &bundle,
        &["--root", &format!("{r}/"), "--uninstall", "--purge"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("removed the symbolic link /data/k8s/k8s/kube-controller-manager; what it points to (/mnt/logs) is kept\n"),
        "{}",
        stdout(&out)
    );
    assert!(std::fs::symlink_metadata(&work).is_err());
    assert_eq!(
        std::fs::read_to_string(root.join("mnt/logs/kept")).unwrap(),
        "x"
    );
    assert!(!releases(&root).is_empty());
}

#[test]
fn a_failed_write_puts_the_previous_files_back() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    let root_arg = root.to_str().unwrap();
    // An older install on the node.
    std::fs::create_dir_all(root.join("etc/kubernetes/cert")).unwrap();
    std::fs::write(root.join("etc/kubernetes/cert/ca.pem"), "old ca\n").unwrap();
    // The install fails half-way: the unit's folder is blocked by a file, after the
    // certificates are in.
    std::fs::write(root.join("etc/systemd"), "blocker").unwrap();
    let out = install(&bundle, &["--root", root_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("installed /etc/kubernetes/cert/ca.pem"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("install.sh: error: creating the folder ")
            && err.contains("etc/systemd failed: mkdir")
            && err.contains("the previous release is back in place"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/kubernetes/cert/ca.pem")).unwrap(),
        "old ca\n"
    );
    assert!(!root.join("etc/kubernetes/cert/ca-key.pem").exists());
    assert!(!root.join("var/backups/kube-bundle/.pending").exists());
    assert!(releases(&root).is_empty(), "{:?}", releases(&root));

    std::fs::remove_file(root.join("etc/systemd")).unwrap();
    let out = install(&bundle, &["--root", root_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (rel, mode) in INSTALLED {
        assert_eq!(mode_of(&root.join(rel)), mode, "{rel}");
        assert_eq!(
            std::fs::read(root.join(rel)).unwrap(),
            std::fs::read(bundle.join("rootfs").join(rel)).unwrap(),
            "{rel}"
        );
    }
    // The release to go back to is the node as it was before.
    let out = install(&bundle, &["--root", root_arg, "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/kubernetes/cert/ca.pem")).unwrap(),
        "old ca\n"
    );
    assert!(!root
        .join("etc/systemd/system/kube-controller-manager.service")
        .exists());
}

/// A single-component install before multi-component bundles left its pending marker
/// `.pending-<component>` (an absolute path; the controller-manager's was the only such
/// bundle): it is still honoured.
#[test]
fn an_older_pending_marker_is_recovered() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    let root_arg = root.to_str().unwrap();
    let backups = root.join("var/backups/kube-bundle");
    let release = backups.join("20260101T000000Z-42");
    std::fs::create_dir_all(release.join("etc/kubernetes/cert")).unwrap();
    std::fs::write(release.join("etc/kubernetes/cert/ca.pem"), "old ca\n").unwrap();
    std::fs::write(release.join(".absent"), "").unwrap();
    std::fs::write(release.join(".complete"), "").unwrap();
    std::fs::write(
        backups.join(".pending-kube-controller-manager"),
        "/var/backups/kube-bundle/20260101T000000Z-42\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc/kubernetes/cert")).unwrap();
    std::fs::write(root.join("etc/kubernetes/cert/ca.pem"), "half-installed\n").unwrap();
    let out = install(&bundle, &["--root", root_arg, "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("rolled back to the release the interrupted install replaced"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/kubernetes/cert/ca.pem")).unwrap(),
        "old ca\n"
    );
    assert!(!backups.join(".pending-kube-controller-manager").exists());
}

#[test]
fn dry_run_changes_nothing() {
    let (project, bundle) = built();
    let root = project.path("target-root");
    std::fs::create_dir_all(&root).unwrap();
    let out = install(&bundle, &["--dry-run", "--root", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would install /etc/kubernetes/cert/ca-key.pem (mode 0600)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("would create /data/k8s/k8s/kube-controller-manager"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        snapshot(&root),
        vec![(String::new(), String::new(), mode_of(&root))]
    );
}

fn assert_refused(bundle: &Path, root: &Path, needle: &str) {
    let out = install(bundle, &["--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(needle) && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(
        !root.exists() || snapshot(root).len() <= 1,
        "target touched: {:?}",
        snapshot(root)
    );
}

#[test]
fn a_changed_byte_is_refused() {
    let (project, bundle) = built();
    let kubeconfig = bundle.join("rootfs/etc/kubernetes/kube-controller-manager.kubeconfig");
    let mut bytes = std::fs::read(&kubeconfig).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&kubeconfig, bytes).unwrap();
    assert_refused(
        &bundle,
        &project.path("target-root"),
        "rootfs/etc/kubernetes/kube-controller-manager.kubeconfig does not match its checksum",
    );
}

#[test]
fn an_extra_file_is_refused() {
    let (project, bundle) = built();
    std::fs::write(bundle.join("rootfs/etc/kubernetes/cert/evil.pem"), "x").unwrap();
    assert_refused(
        &bundle,
        &project.path("target-root"),
        "rootfs/etc/kubernetes/cert/evil.pem is in the bundle but not in SHA256SUMS",
    );
}

#[test]
fn a_missing_file_is_refused() {
    let (project, bundle) = built();
    std::fs::remove_file(bundle.join("rootfs/etc/kubernetes/cert/sa.pub")).unwrap();
    assert_refused(
        &bundle,
        &project.path("target-root"),
        "rootfs/etc/kubernetes/cert/sa.pub is listed in SHA256SUMS but missing",
    );
}

#[test]
fn no_sha256_tool_is_refused() {
    let (project, bundle) = built();
    // A PATH with every tool install.sh needs but a checksum tool.
    let bin = project.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = std::fs::read_to_string(bundle.join("install.sh")).unwrap();
    let tools = script
        .lines()
        .find_map(|l| l.strip_prefix("readonly TOOLS=("))
        .unwrap()
        .trim_end_matches(')');
    for t in tools.split(' ').chain(["bash"]) {
        std::os::unix::fs::symlink(tool(t), bin.join(t)).unwrap();
    }
    let root = project.path("target-root");
    let out = Command::new(bin.join("bash"))
        .arg(bundle.join("install.sh"))
        .args(["--root", root.to_str().unwrap()])
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no sha256 tool (sha256sum or shasum) found"),
        "{}",
        stderr(&out)
    );
    assert!(!root.exists());
}

#[test]
fn non_root_is_refused_without_root_option() {
    let (project, bundle) = built();
    // Let an unprivileged user reach install.sh (keys stay unreadable to it).
    let mut p = bundle.clone();
    while p != project.dir.path().parent().unwrap() {
        let mode = mode_of(&p) | 0o755;
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        p = p.parent().unwrap().to_path_buf();
    }
    let out = Command::new(tool("setpriv"))
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
        .arg(bundle.join("install.sh"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("must run as root"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let (_project, bundle) = built();
    let out = install(&bundle, &["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown option '--bogus'"));
    let help = install(&bundle, &["--help"]);
    assert!(help.status.success() && stdout(&help).contains("--dry-run"));
}

fn rollout(project: &Project, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(tool("bash"));
    cmd.arg(project.path("dist/rollout.sh")).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn rollout_sh_goes_one_master_at_a_time_and_stops_at_a_failure() {
    let (project, _) = built();
    let remote = project.path("remote");
    std::fs::create_dir_all(&remote).unwrap();
    // Stand-ins for ssh and scp that act on this machine; the real ones are used
    // against the end-to-end nodes.
    project.write("ssh", "#!/bin/sh\nshift\nexec sh -c \"$*\"\n");
    project.write("scp", "#!/bin/sh\nexec cp \"$1\" \"${2#*:}\"\n");
    for f in ["ssh", "scp"] {
        std::fs::set_permissions(
            project.path(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let ssh = project.path("ssh").display().to_string();
    let scp = project.path("scp").display().to_string();
    let env = [("SSH", ssh.as_str()), ("SCP", scp.as_str())];
    let root = project.path("target-root");
    let args = [
        "--remote-dir",
        remote.to_str().unwrap(),
        "--",
        "--root",
        root.to_str().unwrap(),
    ];

    let out = rollout(&project, &env, &[&["--dry-run"], &args[..]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stdout(&out);
    let steps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("would copy"))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(
        steps,
        ["m1", "m2", "m3"],
        "inventory order without a leader"
    );
    assert!(!root.exists(), "--dry-run changes nothing");

    let out = rollout(&project, &env, &args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("[3/3] m3 (127.0.1.3): healthy")
            && stdout(&out).contains("all 3 masters updated"),
        "{}",
        stdout(&out)
    );
    assert!(root
        .join("etc/kubernetes/kube-controller-manager.kubeconfig")
        .exists());

    // m2's install fails: m3 is not touched.
    std::fs::remove_dir_all(&root).unwrap();
    let bundle = project.path("dist/control-plane-m2.tar.gz");
    let work = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(tool("tar"))
            .arg("-xzf")
            .arg(&bundle)
            .arg("-C")
            .arg(work.path()),
    );
    std::fs::write(
        work.path()
            .join("control-plane-m2/rootfs/etc/kubernetes/cert/extra.pem"),
        "x",
    )
    .unwrap();
    run_ok(
        Command::new(tool("tar"))
            .arg("-czf")
            .arg(&bundle)
            .arg("-C")
            .arg(work.path())
            .arg("control-plane-m2"),
    );
    let out = rollout(&project, &env, &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("m2: install.sh failed (it has put the previous release back); stopping the rollout, 1 master(s) not updated"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("[3/3]"), "{}", stdout(&out));
}
