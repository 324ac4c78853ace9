//! etcd from the inventory: its certificates and flags, the bad input that must stop a
//! build, and install.sh's care for etcd's data, run for real with `--root`: no action
//! but `--uninstall --purge --delete-etcd-data` removes it, and that one and every
//! install that changes etcd keep a snapshot first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// Three masters with every component; etcd is carried from a stand-in binary.
fn inventory(extra_etcd: &str) -> String {
    format!(
        "{}\n[kube-scheduler]\n[kube-apiserver]\n[etcd]\nversion = \"3.4\"\nbinary = \"fake-etcd\"\n{extra_etcd}",
        INVENTORY
            .replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
            .replace("csr-signing = \"ca\"", "csr-signing = \"signer\"")
    )
}

pub fn project(extra_etcd: &str) -> Project {
    let project = Project::new(&inventory(extra_etcd));
    project.write_binary("fake-etcd", &stand_in("etcd", "3.4.23"));
    project
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn members_get_certificates_of_the_etcd_ca_and_the_tutorials_flags() {
    let project = project("");
    let notes = project.build_ok();
    assert!(notes.contains("generated the etcd CA"), "{notes}");
    assert!(notes.contains("m1: issued an etcd certificate"), "{notes}");
    assert!(
        notes.contains("m1: issued an apiserver-etcd-client certificate"),
        "{notes}"
    );
    let bundle = project.unpack("m2");
    let cert = bundle.join("rootfs/etc/kubernetes/cert");
    assert_eq!(
        read(&cert.join("etcd-ca.pem")),
        read(&project.path("pki/etcd-ca.pem"))
    );
    assert!(!cert.join("etcd-ca-key.pem").exists());
    assert_eq!(mode_of(&cert.join("etcd-key.pem")), 0o600);
    // The member's certificate serves clients and peers; the apiserver's is a client's.
    for purpose in ["sslserver", "sslclient"] {
        let verified = openssl(
            &cert,
            &[
                "verify",
                "-CAfile",
                "etcd-ca.pem",
                "-purpose",
                purpose,
                "etcd.pem",
            ],
        );
        assert_eq!(verified, "etcd.pem: OK\n", "{purpose}");
    }
    let verify = |ca: &str, file: &str| {
        openssl_command(&["verify", "-CAfile", ca, file])
            .current_dir(&cert)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify("etcd-ca.pem", "apiserver-etcd-client.pem"));
    assert!(!verify("ca.pem", "etcd.pem"), "a dedicated CA by default");
    let sans = openssl(
        &cert,
        &[
            "x509",
            "-in",
            "etcd.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        sans.contains("IP Address:127.0.0.1, IP Address:127.0.1.2, DNS:m2\n"),
        "{sans}"
    );
    let unit = read(&bundle.join("rootfs/etc/systemd/system/etcd.service"));
    for want in [
        "WorkingDirectory=/data/k8s/etcd/data\n",
        "  --name=m2 \\\n",
        "  --data-dir=/data/k8s/etcd/data \\\n  --wal-dir=/data/k8s/etcd/wal \\\n",
        "  --listen-client-urls=https://127.0.1.2:2379 \\\n",
        "  --listen-peer-urls=https://127.0.1.2:2380 \\\n",
        "  --initial-cluster=m1=https://127.0.1.1:2380,m2=https://127.0.1.2:2380,m3=https://127.0.1.3:2380 \\\n",
        "  --initial-cluster-state=new \\\n",
        "  --initial-cluster-token=etcd-cluster-0 \\\n",
        "  --client-cert-auth \\\n",
        "Type=notify\nTimeoutStartSec=0\nLimitNOFILE=65536\n",
    ] {
        assert!(unit.contains(want), "{want} not in:\n{unit}");
    }
    assert!(!unit.contains("http://"), "no plain-http listener:\n{unit}");
    let api = read(&bundle.join("rootfs/etc/systemd/system/kube-apiserver.service"));
    assert!(
        api.contains("--etcd-servers=https://127.0.1.2:2379,https://127.0.1.1:2379,https://127.0.1.3:2379 \\\n"),
        "its own member first:\n{api}"
    );
    // etcd starts first, then the apiserver, each gating the rest.
    let install = read(&bundle.join("install.sh"));
    assert!(install.contains(
        "    \"etcd\"\n    \"kube-apiserver\"\n    \"kube-controller-manager\"\n    \"kube-scheduler\"\n"
    ));
    assert!(
        install.contains("GATES_REST[\"etcd\"]=1\n")
            && install.contains("GATES_REST[\"kube-apiserver\"]=1\n")
    );
    run_ok(
        Command::new(tool("shellcheck"))
            .arg("--severity=style")
            .arg(bundle.join("install.sh")),
    );
    // A shared CA is the root CA, as in the tutorial.
    let shared = Project::new(&inventory("").replace("[pki]\n", "[pki]\netcd-ca = \"shared\"\n"));
    shared.write_binary("fake-etcd", &stand_in("etcd", "3.4.23"));
    shared.build_ok();
    assert!(!shared.path("pki/etcd-ca.pem").exists());
    let bundle = shared.unpack("m1");
    let cert = bundle.join("rootfs/etc/kubernetes/cert");
    assert_eq!(read(&cert.join("etcd-ca.pem")), read(&cert.join("ca.pem")));
}

#[test]
fn a_member_added_later_changes_only_the_apiservers_list_on_the_others() {
    let project = project("");
    project.build_ok();
    let before: Vec<PathBuf> = ["m1", "m2", "m3"]
        .iter()
        .map(|n| project.unpack(n))
        .collect();
    // A fourth master joins the formed cluster.
    let text = read(&project.path("cluster.toml")).replace(
        "\n[kube-scheduler]",
        "\n[[nodes]]\nname = \"m4\"\nip = \"127.0.1.4\"\netcd-state = \"existing\"\n\n[kube-scheduler]",
    );
    project.write("cluster.toml", &text);
    let out = project.build();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::rename(project.path("unpacked-m1"), project.path("old-m1")).unwrap();
    let m4 = project.unpack("m4");
    let unit = read(&m4.join("rootfs/etc/systemd/system/etcd.service"));
    assert!(unit.contains("  --initial-cluster=m1=https://127.0.1.1:2380,m2=https://127.0.1.2:2380,m3=https://127.0.1.3:2380,m4=https://127.0.1.4:2380 \\\n"), "{unit}");
    assert!(
        unit.contains("  --initial-cluster-state=existing \\\n"),
        "{unit}"
    );
    // On m1, only kube-apiserver's unit changes: its --etcd-servers gains m4.
    let old = project.path("old-m1/control-plane-m1/rootfs");
    let new = project.unpack("m1").join("rootfs");
    let mut changed = Vec::new();
    for entry in walkdir::WalkDir::new(&new).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(&new).unwrap();
            if std::fs::read(entry.path()).unwrap()
                != std::fs::read(old.join(rel)).unwrap_or_default()
            {
                changed.push(rel.display().to_string());
            }
        }
    }
    assert_eq!(changed, ["etc/systemd/system/kube-apiserver.service"]);
    let _ = before;
}

#[test]
fn bad_etcd_input_is_refused_with_one_error_and_nothing_written() {
    let refused = |text: &str, stderr: &str| {
        let with_binary = |p: &Project| p.write_binary("fake-etcd", &stand_in("etcd", "3.4.23"));
        crate::bad_input::refused(text, with_binary, stderr);
    };
    let with = |find: &str, replace: &str| {
        let text = inventory("");
        assert!(text.contains(find), "{find}");
        text.replacen(find, replace, 1)
    };
    refused(
        &with("version = \"3.4\"", "version = \"3.3\""),
        "error: cluster.toml:30:11: `etcd.version`: etcd `3.3` has no flag profile\n\
         hint: kube-bundle knows etcd 3.4, 3.5 and 3.6; write `3.4`, `3.5` or `3.6` (a patch release like `3.4.23` is fine)\n",
    );
    refused(
        &with("version = \"3.4\"\n", ""),
        "error: cluster.toml: `etcd.version`: is required\n\
         hint: set the etcd release the bundles carry: `3.4`, `3.5` or `3.6` (`etcd --version` says it)\n",
    );
    refused(
        &inventory("data-dir = \"/data/k8s/k8s/kube-apiserver/etcd\"\n"),
        "error: cluster.toml: `etcd.data-dir`: `/data/k8s/k8s/kube-apiserver/etcd` overlaps kube-apiserver's work dir `/data/k8s/k8s/kube-apiserver`\n\
         hint: keep etcd's data in a folder of its own, such as /data/k8s/etcd/data\n",
    );
    refused(
        &inventory("data-dir = \"/data/etcd\"\nwal-dir = \"/data/etcd/wal\"\n"),
        "error: cluster.toml: `etcd.wal-dir`: `/data/etcd/wal` and the data dir `/data/etcd` overlap\n\
         hint: give the WAL a folder of its own beside the data dir, as the tutorial's /data/k8s/etcd/{data,wal}\n",
    );
    refused(
        &inventory("client-port = 6443\n"),
        "error: cluster.toml: `kube-apiserver.secure-port`: `etcd.client-port` and `kube-apiserver.secure-port` would both listen on port 6443 of every node\n\
         hint: give each component its own port (defaults: etcd 2379 and peers 2380, kube-apiserver 6443, kube-controller-manager 10257, kube-scheduler 10259)\n",
    );
    refused(
        &inventory("peer-port = 10257\n"),
        "error: cluster.toml: `etcd.peer-port`: `kube-controller-manager.secure-port` and `etcd.peer-port` would both listen on port 10257 of every node\n\
         hint: give each component its own port (defaults: etcd 2379 and peers 2380, kube-apiserver 6443, kube-controller-manager 10257, kube-scheduler 10259)\n",
    );
    refused(
        &with(
            "[kube-apiserver]\n",
            "[kube-apiserver]\netcd-servers = [\"https://10.0.0.1:2379\"]\n",
        ),
        "error: cluster.toml:29:16: `kube-apiserver.etcd-servers`: is set by kube-bundle when the inventory has `[etcd]`\n\
         hint: remove it: the apiservers use the bundled etcd members, its CA and a client certificate from pki/\n",
    );
    refused(
        &inventory("[etcd.extra-args]\nenable-v2 = true\n").replace("\"3.4\"", "\"3.6\""),
        "error: cluster.toml:33:13: `etcd.extra-args.enable-v2`: `--enable-v2` does not exist in etcd 3.6; it was removed after 3.5\n\
         hint: remove it from `extra-args`\n",
    );
    refused(
        &inventory("[etcd.extra-args]\ninitial-cluster-state = \"existing\"\n"),
        "error: cluster.toml:33:25: `etcd.extra-args.initial-cluster-state`: `--initial-cluster-state` is set by kube-bundle\n\
         hint: kube-bundle writes `--initial-cluster-state` for etcd; it cannot be overridden\n",
    );
    refused(
        &with(
            "ip = \"127.0.1.3\"",
            "ip = \"127.0.1.3\"\netcd-state = \"joining\"",
        ),
        "error: cluster.toml:26:14: `nodes[2].etcd-state`: unknown value `joining`\n\
         hint: `new` for a member that bootstraps the cluster (the default), `existing` for one added to a formed cluster with `etcdctl member add`\n",
    );
}

#[test]
fn an_even_number_of_members_is_a_warning_with_the_quorum_math() {
    let text = inventory("").replace(
        "\n[kube-scheduler]",
        "\n[[nodes]]\nname = \"m4\"\nip = \"127.0.1.4\"\n\n[kube-scheduler]",
    );
    let project = Project::new(&text);
    project.write_binary("fake-etcd", &stand_in("etcd", "3.4.23"));
    let notes = project.build_ok();
    assert!(
        notes.contains("lists 4 etcd members: a quorum is 3, so the cluster survives the loss of 1 member(s), no more than with 3"),
        "{notes}"
    );
}

pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

/// etcd's data as a member leaves it: the database, the WAL and a marker of our own.
pub fn seed_data(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let files = [
        (
            "data/k8s/etcd/data/member/snap/db",
            b"bbolt database".to_vec(),
        ),
        (
            "data/k8s/etcd/wal/0000000000000000-0000000000000000.wal",
            b"write-ahead log".to_vec(),
        ),
    ];
    files
        .into_iter()
        .map(|(rel, bytes)| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

pub fn data_intact(data: &[(PathBuf, Vec<u8>)], after: &str) {
    for (path, bytes) in data {
        assert_eq!(
            std::fs::read(path).unwrap_or_default(),
            *bytes,
            "{} lost after {after}",
            path.display()
        );
    }
}

#[test]
fn no_install_path_deletes_etcd_data_without_the_explicit_flag() {
    let project = project("");
    project.build_ok();
    let bundle = project.unpack("m1");
    let root = project.path("target-root");
    let r = root.to_str().unwrap();
    let out = ok(&install(&bundle, &["--root", r]));
    assert!(out.contains("installed into"), "{out}");
    assert_eq!(mode_of(&root.join("data/k8s/etcd/data")), 0o700);
    assert_eq!(mode_of(&root.join("data/k8s/etcd/wal")), 0o700);
    let data = seed_data(&root);

    // Again: nothing changes, nothing is touched.
    ok(&install(&bundle, &["--root", r]));
    data_intact(&data, "a second install");

    // A bundle that changes etcd's flags: the database is copied first, next to the
    // releases, and the release names it.
    let text = read(&project.path("cluster.toml")) + "[etcd.extra-args]\nsnapshot-count = 50000\n";
    project.write("cluster.toml", &text);
    project.build_ok();
    std::fs::remove_dir_all(project.path("unpacked-m1")).unwrap();
    let changed = project.unpack("m1");
    let out = ok(&install(&changed, &["--root", r]));
    assert!(out.contains("saved a snapshot of etcd's data in "), "{out}");
    let backups = root.join("var/backups/kube-bundle");
    let snapshots: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("etcd-snapshot-")
        })
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(std::fs::read(&snapshots[0]).unwrap(), b"bbolt database");
    assert_eq!(mode_of(&snapshots[0]), 0o600);
    data_intact(&data, "an install changing etcd");

    // Rolling back puts the old unit back, names the snapshot and keeps the data.
    let out = ok(&install(&changed, &["--root", r, "--rollback"]));
    assert!(
        out.contains(&format!(
            "the snapshot it took first is {}",
            snapshots[0].display()
        )),
        "{out}"
    );
    assert!(snapshots[0].exists());
    data_intact(&data, "--rollback");

    // Uninstall and --purge leave etcd's data; --delete-etcd-data alone is refused.
    let out = install(&bundle, &["--root", r, "--uninstall", "--delete-etcd-data"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--delete-etcd-data goes with --uninstall --purge"));
    ok(&install(&bundle, &["--root", r, "--uninstall"]));
    data_intact(&data, "--uninstall");
    ok(&install(&bundle, &["--root", r]));
    let out = ok(&install(&bundle, &["--root", r, "--uninstall", "--purge"]));
    assert!(
        out.contains("kept etcd's data in /data/k8s/etcd/data and /data/k8s/etcd/wal"),
        "{out}"
    );
    assert!(
        !root.join("data/k8s/k8s/kube-apiserver").exists(),
        "other work dirs go"
    );
    data_intact(&data, "--uninstall --purge");
    let out = ok(&install(
        &bundle,
        &["--root", r, "--uninstall", "--purge", "--dry-run"],
    ));
    assert!(out.contains("would keep etcd's data"), "{out}");

    // With both flags it goes, after a copy kept beside the releases.
    let out = ok(&install(
        &bundle,
        &["--root", r, "--uninstall", "--purge", "--delete-etcd-data"],
    ));
    assert!(out.contains("saved a snapshot of etcd's data in "), "{out}");
    assert!(!root.join("data/k8s/etcd/data").exists());
    assert!(!root.join("data/k8s/etcd/wal").exists());
    let kept: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("etcd-snapshot-purge-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), b"bbolt database");
}

/// The review's part 3, row 3: a work dir linked to a disk that holds etcd's data, or to
/// the node's root. `--purge` refuses before it removes or stops anything, however
/// `--root` is spelt; a work dir linked anywhere else goes as a link, its target kept.
#[test]
fn purge_never_follows_a_linked_work_dir_into_data() {
    let project = project("");
    project.build_ok();
    let bundle = project.unpack("m1");
    let root = project.path("target-root");
    let r = root.to_str().unwrap().to_string();
    let link = root.join("data/k8s/k8s/kube-apiserver");
    let relink = |target: &str| {
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link).unwrap();
        }
        std::os::unix::fs::symlink(target, &link).unwrap();
    };
    for dir in ["mnt/disk1", "data/k8s/etcd", "data/k8s/k8s"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    relink("/mnt/disk1");
    std::os::unix::fs::symlink("/mnt/disk1/etcd", root.join("data/k8s/etcd/data")).unwrap();
    ok(&install(&bundle, &["--root", &r]));
    assert_eq!(mode_of(&root.join("mnt/disk1/etcd")), 0o700);
    let member = root.join("mnt/disk1/etcd/member/snap/db");
    std::fs::create_dir_all(member.parent().unwrap()).unwrap();
    std::fs::write(&member, "bbolt database").unwrap();
    std::fs::write(root.join("mnt/disk1/audit.log"), "audit").unwrap();
    let data = vec![(member.clone(), b"bbolt database".to_vec())];

    let hint = "; nothing was removed or stopped: change the link (or the inventory's dirs), or run --uninstall without --purge\n";
    for (target, refusal) in [
        ("/mnt/disk1", "leads to /mnt/disk1, which holds etcd's data dir /data/k8s/etcd/data (at /mnt/disk1/etcd)"),
        ("/", "leads to /, which is the node's root /"),
        ("/var/backups", "leads to /var/backups, which holds the backups folder (releases, etcd snapshots) /var/backups/kube-bundle"),
        ("/data/k8s/etcd/data/member", "leads to /mnt/disk1/etcd/member, which is inside etcd's data dir /data/k8s/etcd/data (at /mnt/disk1/etcd)"),
    ] {
        relink(target);
        let before = untouched(&root);
        let message = format!(
            "install.sh: error: refusing --purge: the work dir of kube-apiserver, /data/k8s/k8s/kube-apiserver, {refusal}{hint}"
        );
        for spelling in [r.clone(), format!("{r}/"), format!("{r}//"), format!("{r}/.")] {
            for extra in [&[][..], &["--dry-run"], &["--delete-etcd-data"]] {
                let mut args = vec!["--root", &spelling, "--uninstall", "--purge"];
                args.extend_from_slice(extra);
                let out = install(&bundle, &args);
                assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
                assert_eq!(stderr(&out), message, "{args:?}");
                assert!(!stdout(&out).contains("removed"), "{}", stdout(&out));
                assert_eq!(untouched(&root), before, "{args:?}");
            }
        }
    }
    data_intact(&data, "the refused purges");

    // A link to a folder that holds nothing that must stay: the link goes, its target
    // stays, and so do etcd's data and the releases.
    std::fs::create_dir_all(root.join("mnt/disk2")).unwrap();
    std::fs::write(root.join("mnt/disk2/audit.log"), "audit").unwrap();
    relink("/mnt/disk2");
    let out = ok(&install(
        &bundle,
        &[
            "--root",
            &format!("{r}/."),
            "--uninstall",
            "--purge",
            "--dry-run",
        ],
    ));
    assert!(out.contains("would remove the symbolic link /data/k8s/k8s/kube-apiserver and keep what it points to (/mnt/disk2)\n"), "{out}");
    let out = ok(&install(
        &bundle,
        &["--root", &format!("{r}/."), "--uninstall", "--purge"],
    ));
    assert!(out.contains("removed the symbolic link /data/k8s/k8s/kube-apiserver; what it points to (/mnt/disk2) is kept\n"), "{out}");
    assert!(
        out.contains("removed /data/k8s/k8s/kube-controller-manager\n"),
        "{out}"
    );
    assert!(
        out.contains("kept etcd's data in /data/k8s/etcd/data and /data/k8s/etcd/wal"),
        "{out}"
    );
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(!root.join("data/k8s/k8s/kube-controller-manager").exists());
    assert_eq!(read(&root.join("mnt/disk2/audit.log")), "audit");
    assert_eq!(read(&root.join("mnt/disk1/audit.log")), "audit");
    data_intact(&data, "--uninstall --purge");
    let releases = std::fs::read_dir(root.join("var/backups/kube-bundle"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join(".complete").exists())
        .count();
    assert_eq!(releases, 2, "the first install's and the uninstall's");

    // With --delete-etcd-data too, a data dir that is a link goes as a link: the member's
    // data where it points stays (and says so), after a snapshot of it.
    ok(&install(&bundle, &["--root", &r]));
    let out = ok(&install(
        &bundle,
        &["--root", &r, "--uninstall", "--purge", "--delete-etcd-data"],
    ));
    assert!(out.contains("saved a snapshot of etcd's data in "), "{out}");
    assert!(out.contains("removed the symbolic link /data/k8s/etcd/data; what it points to (/mnt/disk1/etcd) is kept\n"), "{out}");
    assert!(
        out.contains("removed /data/k8s/etcd/wal (etcd's data; its snapshot is "),
        "{out}"
    );
    assert!(!root.join("data/k8s/etcd/wal").exists());
    data_intact(
        &data,
        "--uninstall --purge --delete-etcd-data of a linked data dir",
    );
}

/// A member of a new cluster waits for its peers, and kube-apiserver exits without it:
/// systemd must start every unit again, however long that takes.
#[test]
fn every_unit_restarts_without_a_start_limit() {
    let project = project("");
    project.build_ok();
    let bundle = project.unpack("m1");
    for component in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let path = bundle.join(format!("rootfs/etc/systemd/system/{component}.service"));
        let problems = crate::outputs::verify_unit(&path);
        assert!(problems.is_empty(), "{component}: {problems:?}");
        let unit = read(&path);
        let (head, service) = unit.split_once("[Service]\n").unwrap();
        assert!(
            head.starts_with("[Unit]\n") && head.contains("\nStartLimitIntervalSec=0\n"),
            "{unit}"
        );
        assert!(
            service.contains("\nRestart=on-failure\nRestartSec=5\n"),
            "{unit}"
        );
    }
}

#[test]
fn a_failed_install_keeps_etcd_data() {
    let project = project("");
    project.build_ok();
    let bundle = project.unpack("m1");
    let root = project.path("target-root");
    let r = root.to_str().unwrap();
    ok(&install(&bundle, &["--root", r]));
    let data = seed_data(&root);
    // A bundle whose etcd unit cannot be written: install.sh stops and goes back.
    let text = read(&project.path("cluster.toml")) + "[etcd.extra-args]\nsnapshot-count = 50000\n";
    project.write("cluster.toml", &text);
    project.build_ok();
    std::fs::remove_dir_all(project.path("unpacked-m1")).unwrap();
    let changed = project.unpack("m1");
    let units = root.join("etc/systemd/system");
    std::fs::remove_file(units.join("etcd.service")).unwrap();
    std::fs::create_dir(units.join("etcd.service")).unwrap();
    let out = install(&changed, &["--root", r]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    data_intact(&data, "a failed install");
}

#[test]
fn rollout_sh_starts_a_new_cluster_on_every_master_at_once_then_checks_them() {
    let project = project("");
    project.build_ok();
    let bin = project.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = project.path("ssh.log");
    // ssh runs the command here, in a root folder of the host's own, and logs it; scp
    // copies.
    let roots = project.path("roots");
    for (name, body) in [
        (
            "ssh",
            format!(
                "#!/bin/sh\nhost=${{1#*@}}\nshift\ncmd=$(printf '%s' \"$*\" | sed \"s|@ROOT@|{}/$host|g\")\nprintf '%s\\n' \"$*\" >>{}\nexec sh -c \"$cmd\"\n",
                roots.display(),
                log.display()
            ),
        ),
        ("scp", "#!/bin/sh\nexec cp \"$1\" \"${2#*:}\"\n".to_string()),
        ("kubectl", "#!/bin/sh\necho applied\n".to_string()),
    ] {
        std::fs::write(bin.join(name), body).unwrap();
        std::fs::set_permissions(
            bin.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let remote = project.path("remote");
    let out = Command::new(tool("bash"))
        .arg(project.path("dist/rollout.sh"))
        .args([
            "--remote-dir",
            remote.to_str().unwrap(),
            "--",
            "--root",
            "@ROOT@",
        ])
        .env("SSH", bin.join("ssh"))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("SCP", bin.join("scp"))
        .output()
        .unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no master has etcd data yet: installing all 3 at once"),
        "{text}"
    );
    for node in ["m1", "m2", "m3"] {
        assert!(text.contains(&format!("{node}: healthy")), "{text}");
    }
    assert!(text.contains("etcd has its quorum"), "{text}");
    assert!(!text.contains("[1/3]"), "not one by one:\n{text}");
    for (node, ip) in NODES {
        let unit = roots.join(ip).join("etc/systemd/system/etcd.service");
        assert!(read(&unit).contains(&format!("--name={node} ")), "{node}");
    }
    // Each master was asked for etcd data, then installed, then checked.
    let calls = read(&log);
    assert_eq!(
        calls.matches("test -e /data/k8s/etcd/data/member").count(),
        3,
        "{calls}"
    );
    assert_eq!(calls.matches("/install.sh --root").count(), 3, "{calls}");
    assert_eq!(
        calls.matches("./install.sh --check --root").count(),
        3,
        "{calls}"
    );
}
