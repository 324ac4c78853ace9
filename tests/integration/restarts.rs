//! Restarts only what changed, with `--root` on a whole control plane (the review's part
//! 3, rows 4, 5, 8 and 12): a file restarts only the components that read it, so
//! kube-apiserver's files never restart or snapshot etcd; a failed install that changed
//! nothing leaves no release to "roll back" to; `--rollback` snapshots etcd before it
//! changes etcd's files and refuses an older etcd minor release unless forced; a snapshot
//! killed half-way leaves no `.part` after the next run.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::etcd::{data_intact, ok, project, read, seed_data};

const BACKUPS: &str = "var/backups/kube-bundle";
const ETCD_UNIT: &str = "etc/systemd/system/etcd.service";

/// A whole-plane project, its bundle A for m1 (etcd 3.4), and bundle B built from
/// `cluster.toml` changed by `edit` (with `binary`, a stand-in executable by that name,
/// beside it), both unpacked; the root they install into.
struct Planes {
    project: Project,
    a: PathBuf,
    b: PathBuf,
    root: PathBuf,
}

fn planes(edit: impl Fn(String) -> String, binary: Option<(&str, &[u8])>) -> Planes {
    let project = project("");
    project.build_ok();
    if let Some((name, bytes)) = binary {
        project.write_binary(name, bytes);
    }
    let a = project.unpack("m1");
    let text = edit(read(&project.path("cluster.toml")));
    project.write("b.toml", &text);
    let b = project.build_unpacked("b.toml", "dist-b", "m1");
    let root = project.path("root");
    Planes {
        project,
        a,
        b,
        root,
    }
}

impl Planes {
    fn r(&self) -> &str {
        self.root.to_str().unwrap()
    }

    /// Release folders, oldest first.
    fn releases(&self) -> Vec<PathBuf> {
        self.backups(std::path::Path::is_dir)
    }

    /// etcd snapshots, finished or not.
    fn snapshots(&self) -> Vec<PathBuf> {
        self.backups(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("etcd-snapshot-")
        })
    }

    fn backups(&self, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.root.join(BACKUPS))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| keep(p))
            .collect();
        found.sort();
        found
    }

    /// The node's files, without the backups folder (whose lock names the last run).
    fn node(&self) -> Vec<(String, String, u32)> {
        ["etc", "opt", "data"]
            .iter()
            .flat_map(|d| snapshot(&self.root.join(d)))
            .collect()
    }

    /// PATH with a stand-in for a tool first.
    fn fake(&self, name: &str, script: &str) -> String {
        let dir = self.project.fake_tool(name, script);
        format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
    }

    fn install_with_path(&self, bundle: &Path, path: &str) -> std::process::Output {
        install_command(bundle, &["--root", self.r()])
            .env("PATH", path)
            .output()
            .unwrap()
    }
}

fn with_etcd_flag(text: String) -> String {
    text + "[etcd.extra-args]\nsnapshot-count = 50000\n"
}

/// The review's row 5: an audit policy of its own (a template override) changes one file,
/// which restarts kube-apiserver alone; etcd is neither restarted nor snapshotted. Every
/// file of the bundle restarts exactly the components that read it.
#[test]
fn apiserver_files_restart_only_the_apiserver_and_never_snapshot_etcd() {
    let project = project("");
    project.build_ok();
    let a = project.unpack("m1");
    let script = read(&a.join("install.sh"));
    let table: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("FILE_COMPONENTS["))
        .collect();
    let files = |c: &str| format!("FILE_COMPONENTS[\"/etc/kubernetes/{c}");
    let expected: Vec<String> = [
        ("audit-policy.yaml", "kube-apiserver"),
        ("cert/apiserver-etcd-client-key.pem", "kube-apiserver"),
        ("cert/apiserver-etcd-client.pem", "kube-apiserver"),
        ("cert/ca.pem", "kube-controller-manager,kube-scheduler"),
        ("cert/client-ca.pem", "kube-apiserver"),
        ("cert/csr-signer-key.pem", "kube-controller-manager"),
        ("cert/csr-signer.pem", "kube-controller-manager"),
        ("cert/etcd-ca.pem", "etcd,kube-apiserver"),
        ("cert/etcd-key.pem", "etcd"),
        ("cert/etcd.pem", "etcd"),
        (
            "cert/front-proxy-ca.pem",
            "kube-apiserver,kube-controller-manager,kube-scheduler",
        ),
        ("cert/front-proxy-client-key.pem", "kube-apiserver"),
        ("cert/front-proxy-client.pem", "kube-apiserver"),
        ("cert/kube-apiserver-key.pem", "kube-apiserver"),
        (
            "cert/kube-apiserver-kubelet-client-key.pem",
            "kube-apiserver",
        ),
        ("cert/kube-apiserver-kubelet-client.pem", "kube-apiserver"),
        ("cert/kube-apiserver.pem", "kube-apiserver"),
        (
            "cert/kube-controller-manager-key.pem",
            "kube-controller-manager",
        ),
        (
            "cert/kube-controller-manager.pem",
            "kube-controller-manager",
        ),
        ("cert/kube-scheduler-key.pem", "kube-scheduler"),
        ("cert/kube-scheduler.pem", "kube-scheduler"),
        ("cert/sa.key", "kube-apiserver,kube-controller-manager"),
        ("cert/sa.pub", "kube-apiserver"),
        ("encryption-config.yaml", "kube-apiserver"),
        (
            "kube-controller-manager.kubeconfig",
            "kube-controller-manager",
        ),
        ("kube-scheduler.kubeconfig", "kube-scheduler"),
        ("kube-scheduler.yaml", "kube-scheduler"),
    ]
    .iter()
    .map(|(path, cs)| format!("{}\"]=\"{cs}\"", files(path)))
    .chain(
        [
            ("/etc/systemd/system/etcd.service", "etcd"),
            (
                "/etc/systemd/system/kube-apiserver.service",
                "kube-apiserver",
            ),
            (
                "/etc/systemd/system/kube-controller-manager.service",
                "kube-controller-manager",
            ),
            (
                "/etc/systemd/system/kube-scheduler.service",
                "kube-scheduler",
            ),
            ("/opt/k8s/bin/etcd", "etcd"),
        ]
        .iter()
        .map(|(path, cs)| format!("FILE_COMPONENTS[\"{path}\"]=\"{cs}\"")),
    )
    .collect();
    assert_eq!(table, expected);

    let root = project.path("root");
    let r = root.to_str().unwrap();
    ok(&install(&a, &["--root", r]));
    let data = seed_data(&root);
    let policy = include_str!("../../bundle-templates/audit-policy.yaml.hbs");
    project.write(
        "templates/audit-policy.yaml.hbs",
        &format!("# Reviewed by the security team.\n{policy}"),
    );
    let out = project.build_with(&["--templates", "templates"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(project.path("unpacked-m1")).unwrap();
    let b = project.unpack("m1");

    let dry = ok(&install(&b, &["--root", r, "--dry-run"]));
    let would: Vec<&str> = dry
        .lines()
        .filter_map(|l| l.strip_prefix("install.sh: would install "))
        .collect();
    assert_eq!(
        would,
        ["/etc/kubernetes/audit-policy.yaml (mode 0644)"],
        "{dry}"
    );
    assert!(
        dry.contains(
            "install.sh: units whose files change: kube-apiserver.service (not restarted with --root)\n"
        ),
        "{dry}"
    );
    let out = ok(&install(&b, &["--root", r]));
    assert!(!out.contains("snapshot"), "{out}");
    let snapshots: Vec<String> = std::fs::read_dir(root.join(BACKUPS))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("etcd-snapshot-"))
        .collect();
    assert!(snapshots.is_empty(), "{snapshots:?}");
    assert_eq!(
        read(&root.join("etc/kubernetes/audit-policy.yaml")),
        format!("# Reviewed by the security team.\n{policy}")
    );
    data_intact(&data, "an apiserver-only change");
}

/// The review's row 4: installs that fail before changing a file (here the etcd snapshot
/// cannot be written: the disk is full) leave no release, so `--rollback` afterwards goes
/// back to the release before the last real install, not to the node as it is.
#[test]
fn a_failed_install_that_changed_nothing_leaves_no_release() {
    let v = planes(with_etcd_flag, None);
    ok(&install(&v.a, &["--root", v.r()]));
    let data = seed_data(&v.root);
    let out = ok(&install(&v.b, &["--root", v.r()]));
    assert!(out.contains("saved a snapshot of etcd's data"), "{out}");
    let releases = v.releases();
    let snapshots = v.snapshots();
    assert_eq!((releases.len(), snapshots.len()), (2, 1));
    let on_b = v.node();

    let path = v.fake(
        "cp",
        &format!(
            "#!/bin/bash\nfor a; do :; done\n\
             [[ $a == */etcd-snapshot-*.part ]] && {{ echo \"cp: error writing '$a': No space left on device\" >&2; exit 1; }}\n\
             exec {} \"$@\"\n",
            tool("cp").display()
        ),
    );
    for _ in 0..6 {
        std::fs::write(v.root.join(ETCD_UNIT), "edited\n").unwrap();
        let out = v.install_with_path(&v.a, &path);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("No space left on device") && err.ends_with("; nothing was changed\n"),
            "{err}"
        );
        assert_eq!(v.releases(), releases, "no release of a failed install");
        assert_eq!(v.snapshots(), snapshots);
        assert!(!v.root.join(BACKUPS).join(".pending").exists());
    }
    std::fs::write(
        v.root.join(ETCD_UNIT),
        read(&v.b.join("rootfs").join(ETCD_UNIT)),
    )
    .unwrap();
    assert_eq!(v.node(), on_b);

    let out = ok(&install(&v.b, &["--root", v.r(), "--rollback"]));
    assert!(
        out.contains(&format!(
            "rolled back to the release the last install replaced ({})",
            releases[1].display()
        )),
        "{out}"
    );
    assert_eq!(
        read(&v.root.join(ETCD_UNIT)),
        read(&v.a.join("rootfs").join(ETCD_UNIT)),
        "A is back"
    );
    // Going back changed etcd's unit: a snapshot came first, as for an install.
    let rollback: Vec<PathBuf> = v
        .snapshots()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-rollback.db"))
        .collect();
    assert_eq!(rollback.len(), 1, "{out}");
    assert!(
        out.contains(&format!(
            "saved a snapshot of etcd's data in {}",
            rollback[0].display()
        )),
        "{out}"
    );
    assert_eq!(std::fs::read(&rollback[0]).unwrap(), b"bbolt database");
    assert_eq!(mode_of(&rollback[0]), 0o600);
    data_intact(&data, "--rollback");
}

/// The review's row 8: from etcd 3.5 back to a 3.4 release, `--rollback` (and an install
/// of the 3.4 bundle) refuses, since etcd 3.4 cannot read data 3.5 wrote, and changes
/// nothing; with `--force-etcd-downgrade` it goes back after a snapshot.
#[test]
fn a_rollback_to_an_older_etcd_minor_is_refused_unless_forced() {
    let v = planes(
        |text| {
            text.replace("version = \"3.4\"", "version = \"3.5\"")
                .replace("binary = \"fake-etcd\"", "binary = \"fake-etcd-3.5\"")
        },
        Some(("fake-etcd-3.5", &stand_in("etcd", "3.5.9"))),
    );
    let help = ok(&install(&v.b, &["--help"]));
    assert!(help.contains("--force-etcd-downgrade"), "{help}");

    ok(&install(&v.a, &["--root", v.r()]));
    let data = seed_data(&v.root);
    ok(&install(&v.b, &["--root", v.r()]));
    assert_eq!(
        std::fs::read(v.root.join("opt/k8s/bin/etcd")).unwrap(),
        stand_in("etcd", "3.5.9")
    );
    let on_b = v.node();
    let snapshots = v.snapshots();
    let releases = v.releases();

    let refusal = "this replaces etcd 3.5 with the older etcd 3.4, and an older minor release cannot read the data a newer one has written";
    for args in [vec!["--rollback"], vec!["--rollback", "--dry-run"], vec![]] {
        // Both bundles' install.sh read the node's etcd release, not their own.
        for bundle in [&v.a, &v.b] {
            if args.is_empty() && bundle == &v.b {
                continue;
            }
            let mut all = vec!["--root", v.r()];
            all.extend(&args);
            let out = install(bundle, &all);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
            let err = stderr(&out);
            assert!(
                err.contains(refusal)
                    && err.contains("pass --force-etcd-downgrade")
                    && err.contains("nothing was changed"),
                "{args:?}: {err}"
            );
            assert_eq!(v.node(), on_b, "{args:?}");
            assert_eq!(v.snapshots(), snapshots, "{args:?}");
            assert_eq!(v.releases(), releases, "{args:?}");
        }
    }
    let out = install(
        &v.b,
        &["--root", v.r(), "--check", "--force-etcd-downgrade"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let out = install(
        &v.b,
        &["--root", v.r(), "--rollback", "--force-etcd-downgrade"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("--force-etcd-downgrade: replacing etcd 3.5 with the older etcd 3.4"),
        "{}",
        stderr(&out)
    );
    let taken: Vec<PathBuf> = v
        .snapshots()
        .into_iter()
        .filter(|p| !snapshots.contains(p))
        .collect();
    assert_eq!(taken.len(), 1, "{}", stdout(&out));
    assert!(taken[0].to_string_lossy().ends_with("-rollback.db"));
    assert_eq!(std::fs::read(&taken[0]).unwrap(), b"bbolt database");
    assert_eq!(
        std::fs::read(v.root.join("opt/k8s/bin/etcd")).unwrap(),
        stand_in("etcd", "3.4.23")
    );
    data_intact(&data, "a forced rollback");
    // The node runs 3.4 again: A installs without a word about versions.
    let out = install(&v.a, &["--root", v.r()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("etcd 3."), "{}", stderr(&out));
}

/// The review's row 12: install.sh killed (SIGKILL) while it copies etcd's database into
/// a snapshot. The next run removes the partial snapshot and the release the killed run
/// took (it had changed nothing), so `--rollback` still goes back to A.
#[test]
fn a_killed_snapshot_leaves_nothing_behind_after_the_next_run() {
    let v = planes(with_etcd_flag, None);
    ok(&install(&v.a, &["--root", v.r()]));
    let data = seed_data(&v.root);
    let path = v.fake(
        "cp",
        &format!(
            "#!/bin/bash\nfor a; do :; done\n\
             if [[ $a == */etcd-snapshot-*.part ]]; then head -c 5 \"$2\" >\"$a\"; read -r pid _ <{}/{BACKUPS}/.lock; kill -9 \"$pid\"; exit 1; fi\n\
             exec {} \"$@\"\n",
            v.root.display(),
            tool("cp").display()
        ),
    );
    let out = v.install_with_path(&v.b, &path);
    assert_eq!(out.status.code(), None, "killed: {}", stderr(&out));
    let parts: Vec<PathBuf> = v
        .snapshots()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert_eq!(parts.len(), 1, "{:?}", v.snapshots());
    assert_eq!(std::fs::read(&parts[0]).unwrap(), b"bbolt");

    let out = ok(&install(&v.b, &["--root", v.r()]));
    assert!(
        out.contains(&format!(
            "removed {}, a snapshot an earlier run that was killed did not finish",
            parts[0].display()
        )),
        "{out}"
    );
    assert!(
        v.snapshots()
            .iter()
            .all(|p| !p.to_string_lossy().contains(".part")),
        "{:?}",
        v.snapshots()
    );
    assert!(!v.root.join(BACKUPS).join(".pending").exists());
    assert_eq!(v.releases().len(), 2, "{:?}", v.releases());
    ok(&install(&v.b, &["--root", v.r(), "--rollback"]));
    assert_eq!(
        read(&v.root.join(ETCD_UNIT)),
        read(&v.a.join("rootfs").join(ETCD_UNIT)),
        "A is back"
    );
    data_intact(&data, "a killed snapshot");
}

/// A `mkdir` that loses the race for every folder install.sh makes for node files (mode
/// 0755): another process makes it first (as three installs into sibling `--root`s do
/// with their common parent), so `mkdir` fails with "File exists" while it is there.
const RACING_MKDIR: &str = r#"#!/bin/sh
if [ "$1" = -m ] && [ "$2" = 0755 ] && [ "$3" = -- ]; then
    /usr/bin/mkdir "$@" || exit
    echo "mkdir: cannot create directory '$4': File exists" >&2
    exit 1
fi
exec /usr/bin/mkdir "$@"
"#;

/// A folder install.sh would make but another process made meanwhile is used, not an
/// error that stops the install.
#[test]
fn a_folder_another_process_makes_meanwhile_does_not_stop_the_install() {
    let v = planes(|text| text, None);
    let out = v.install_with_path(&v.a, &v.fake("mkdir", RACING_MKDIR));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(v.root.join("etc/kubernetes/cert/ca.pem").is_file());
    assert!(v.root.join("opt/k8s/bin/etcd").is_file());
}
