//! install.sh as one generic script: the rendered script of a controller-manager-only, an
//! apiserver and a whole-plane node against golden files, and its functions tested alone
//! by sourcing it with `KUBE_BUNDLE_SOURCED=1` (argument parsing, the stop order, the
//! component hooks).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// The test inventory with kube-apiserver beside the controller-manager.
fn apiserver() -> String {
    format!(
        "{}\n[kube-apiserver]\netcd-servers = [\"http://127.0.0.1:2379\"]\n",
        INVENTORY.replace("apiserver = \"https://{{node.ip}}:6443\"\n", "")
    )
}

/// `m1`'s unpacked bundle of a node of `kind`, with its project.
fn bundle(kind: &str) -> (Project, PathBuf) {
    let project = match kind {
        "controller-manager" => Project::new(INVENTORY),
        "apiserver" => Project::new(&apiserver()),
        "whole-plane" => crate::etcd::project(""),
        _ => unreachable!("{kind}"),
    };
    project.build_ok();
    let bundle = project.unpack("m1");
    (project, bundle)
}

/// install.sh with the validity dates of its certificates, new at every build, replaced.
fn without_dates(script: &str) -> String {
    script
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.trim_start().split(' ').collect();
            let dated = words.len() == 3
                && words[0].starts_with("\"20")
                && words[0].ends_with('Z')
                && words[1].ends_with('Z');
            if dated {
                format!("    \"NOT-BEFORE NOT-AFTER {}", words[2])
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn rendered_install_sh_matches_the_golden_files_and_passes_shellcheck() {
    // Regenerate with UPDATE_GOLDEN=1 after an intended change.
    for kind in ["controller-manager", "apiserver", "whole-plane"] {
        let (_project, bundle) = bundle(kind);
        let install = bundle.join("install.sh");
        run_ok(
            Command::new(tool("shellcheck"))
                .arg("--severity=style")
                .arg(&install),
        );
        let text = without_dates(&std::fs::read_to_string(&install).unwrap());
        assert!(
            text.contains("\"NOT-BEFORE NOT-AFTER /etc/kubernetes/cert/ca.pem\""),
            "{kind}: the certificates' dates are not where the golden file expects them"
        );
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/golden/install-{kind}.sh"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &text).unwrap();
        }
        assert_eq!(
            text,
            std::fs::read_to_string(&golden).unwrap_or_default(),
            "{kind}: install.sh differs from {}",
            golden.display()
        );
    }
}

/// Runs `script` in bash with the bundle's install.sh sourced, in the bundle's folder.
fn sourced(bundle: &Path, script: &str) -> Output {
    Command::new(tool("bash"))
        .arg("-c")
        .arg(format!(
            "KUBE_BUNDLE_SOURCED=1 source ./install.sh || exit 99\n{script}"
        ))
        .current_dir(bundle)
        .output()
        .unwrap()
}

fn sourced_ok(bundle: &Path, script: &str) -> String {
    let out = sourced(bundle, script);
    assert!(
        out.status.success(),
        "{script}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn sourced_install_sh_runs_nothing() {
    let (_project, bundle) = bundle("controller-manager");
    // Sourced, it neither checks the bundle nor asks for root: it only defines.
    std::fs::remove_file(bundle.join("SHA256SUMS")).unwrap();
    let out = sourced(&bundle, "echo \"$ACTION ${#COMPONENTS[@]}\"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "install 1\n");
    assert_eq!(stderr(&out), "");
    // Run, the same script checks its bundle first.
    let run = install(&bundle, &["--check", "--root", "/nonexistent"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("SHA256SUMS is missing from the bundle"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn parse_args_reads_options_and_refuses_bad_ones() {
    let (_project, bundle) = bundle("controller-manager");
    let out = sourced_ok(
        &bundle,
        "parse_args --check --timeout 5 --stable=0 --root rel//x/. --force-node\n\
         echo \"$ACTION $TIMEOUT $STABLE $FORCE_NODE $SYSTEMD $ROOT\"",
    );
    assert_eq!(out, format!("check 5 0 1 0 {}/rel/x\n", bundle.display()));
    assert_eq!(
        sourced_ok(&bundle, "parse_args; echo \"$ACTION $SYSTEMD [$ROOT]\""),
        "install 1 []\n"
    );
    for (args, message) in [
        ("--purge", "--purge goes with --uninstall"),
        (
            "--check --rollback",
            "--check and --rollback cannot be combined",
        ),
        ("--timeout 0", "--timeout must be a whole number of seconds"),
        ("--root", "--root needs a folder"),
        ("--delete-etcd-data", "unknown option '--delete-etcd-data'"),
    ] {
        let out = sourced(&bundle, &format!("parse_args {args}; echo parsed"));
        assert_eq!(out.status.code(), Some(2), "{args}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{args}");
        let first = stderr(&out).lines().next().unwrap_or_default().to_string();
        assert_eq!(first, format!("install.sh: error: {message}"), "{args}");
    }
}

#[test]
fn a_components_options_come_through_its_hooks() {
    let (_project, bundle) = bundle("whole-plane");
    assert_eq!(
        sourced_ok(
            &bundle,
            "parse_args --uninstall --purge --delete-etcd-data; echo \"$ACTION $PURGE $DELETE_ETCD_DATA\""
        ),
        "uninstall 1 1\n"
    );
    let out = sourced(&bundle, "parse_args --delete-etcd-data");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .starts_with("install.sh: error: --delete-etcd-data goes with --uninstall --purge\n"),
        "{}",
        stderr(&out)
    );
    let help = sourced_ok(&bundle, "usage");
    assert!(help.contains("\n  --force-etcd-downgrade\n"), "{help}");
    assert!(
        help.ends_with(
            "--purge alone never removes it\nA bundle built with pinned signers always requires a valid signature.\n"
        ),
        "{help}"
    );
    assert!(
        help.contains("a unit that gates the rest (etcd.service, kube-apiserver.service)"),
        "{help}"
    );
}

#[test]
fn every_node_stops_in_reverse_start_order() {
    for (kind, order) in [
        ("controller-manager", "kube-controller-manager"),
        ("apiserver", "kube-controller-manager kube-apiserver"),
        (
            "whole-plane",
            "kube-scheduler kube-controller-manager kube-apiserver etcd",
        ),
    ] {
        let (_project, bundle) = bundle(kind);
        assert_eq!(
            sourced_ok(
                &bundle,
                "echo \"${COMPONENTS[*]}\"; stop_order; echo \"${ORDER[*]}\""
            ),
            format!(
                "{}\n{order}\n",
                order.split(' ').rev().collect::<Vec<_>>().join(" ")
            ),
            "{kind}"
        );
    }
}

#[test]
fn hooks_are_dispatched_by_component_and_default_to_nothing() {
    let (_project, bundle) = bundle("whole-plane");
    let out = sourced_ok(
        &bundle,
        r#"has_hook gate etcd && echo "etcd has its own gate"
has_hook gate kube-apiserver || echo "kube-apiserver has the common gate"
hook gate kube-apiserver 0 && echo "no hook is success"
hook_kube_apiserver_usage() { echo "apiserver: $*"; }
hook_kube_scheduler_usage() { echo "scheduler: $*"; return 3; }
hook_etcd_usage() { echo "etcd: $*"; }
each_hook usage a b || echo "each_hook stopped at a failing hook"
"#,
    );
    assert_eq!(
        out,
        "etcd has its own gate\n\
         kube-apiserver has the common gate\n\
         no hook is success\n\
         etcd: a b\n\
         apiserver: a b\n\
         scheduler: a b\n\
         each_hook stopped at a failing hook\n"
    );
}

/// Makes the bundle's folders and their parents reachable by an unprivileged user; the
/// keys stay readable by root alone.
fn open_to_others(project: &Project, bundle: &Path) {
    let mut p = bundle.to_path_buf();
    while p != project.dir.path().parent().unwrap() {
        let mode = mode_of(&p) | 0o755;
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        p = p.parent().unwrap().to_path_buf();
    }
    for dir in walkdir::WalkDir::new(bundle) {
        let dir = dir.unwrap();
        if dir.file_type().is_dir() {
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
    }
}

#[test]
fn a_non_root_check_says_it_needs_root_not_that_checksums_are_wrong() {
    let (project, bundle) = bundle("controller-manager");
    open_to_others(&project, &bundle);
    let unprivileged = |args: &[&str]| {
        Command::new(tool("setpriv"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
            .arg(bundle.join("install.sh"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = unprivileged(&["--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("install.sh: error: cannot read rootfs/etc/kubernetes/cert/")
            && err.contains("-key.pem of the bundle as uid 65534: it needs root; run install.sh with sudo; nothing was changed\n"),
        "{err}"
    );
    assert!(!err.contains("checksum"), "{err}");

    // With a bundle it can read, the node's files it cannot read are named the same way.
    let root = project.path("node-root");
    let installed = install(&bundle, &["--root", root.to_str().unwrap()]);
    assert!(installed.status.success(), "{}", stderr(&installed));
    for entry in walkdir::WalkDir::new(&bundle) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let mode = mode_of(entry.path()) | 0o444;
            std::fs::set_permissions(
                entry.path(),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap();
        }
    }
    open_to_others(&project, &root.join("etc/kubernetes/cert"));
    let out = unprivileged(&["--check", "--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("install.sh: error: cannot read /etc/kubernetes/cert/ca-key.pem ")
            && err.ends_with(
                " on the node as uid 65534 to compare with the bundle: run --check as root (sudo ./install.sh --check)\n"
            ),
        "{err}"
    );
    assert!(!stdout(&out).contains("differs"), "{}", stdout(&out));
}

#[test]
fn releases_taken_in_one_second_sort_in_the_order_they_were_taken() {
    // Rollback takes the newest release and pruning drops the oldest, both by name: names
    // made within one second (one process, or two processes in either pid order) must
    // still sort in the order they were taken.
    let (project, bundle) = bundle("controller-manager");
    let root = project.path("empty-root");
    let releases = root.join("var/backups/kube-bundle");
    std::fs::create_dir_all(&releases).unwrap();
    let out = sourced_ok(
        &bundle,
        &format!(
            "parse_args --root {}; resolve_dir \"$BACKUP_ROOT\"; RELEASES=$RD; for i in 1 2 3 4 5 6; do take_release || {{ echo \"$ERR\"; exit 1; }}; \
             echo \"$i\" >\"$RELEASE/order\"; done; complete_releases; \
             for r in \"${{RELEASE_LIST[@]}}\"; do cat \"$r/order\"; done",
            root.display()
        ),
    );
    assert_eq!(out, "1\n2\n3\n4\n5\n6\n");
    for entry in std::fs::read_dir(&releases).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let (stamp, pid) = name.split_once('-').unwrap();
        assert_eq!(stamp.len(), "20261203T051044.123456Z".len(), "{name}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[15] == b'.',
            "{name}"
        );
        assert!(pid.parse::<u32>().is_ok(), "{name}");
    }
}

#[test]
fn start_behaviour_comes_from_the_rows() {
    // etcd's row says systemctl must not wait for it and that it serves only with a
    // quorum; the other rows start blocking, alone.
    let (_whole, node) = bundle("whole-plane");
    let out = sourced_ok(&node, r#"echo "${!NO_BLOCK[*]}|${!QUORUM[*]}""#);
    assert_eq!(out, "etcd|etcd\n");
    let (_api, node) = bundle("apiserver");
    let out = sourced_ok(&node, r#"echo "${#NO_BLOCK[@]}|${#QUORUM[@]}""#);
    assert_eq!(out, "0|0\n");
}
