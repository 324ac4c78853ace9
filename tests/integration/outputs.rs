//! What a bundle holds, checked with the real tools: the kubeconfig against the tutorial's
//! four `kubectl config` commands, the unit with `systemd-analyze verify`, install.sh with
//! shellcheck, the archive with GNU tar and sha256sum.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const UNIT: &str = "rootfs/etc/systemd/system/kube-controller-manager.service";

/// The test inventory with kube-scheduler built too.
fn both() -> String {
    format!("{INVENTORY}\n[kube-scheduler]\n")
}

/// (component, secure port) of every component the tests build.
const COMPONENTS: [(&str, u16); 2] = [
    ("kube-controller-manager", 10257),
    ("kube-scheduler", 10259),
];

fn kubectl(args: &[&str], dir: &Path) -> String {
    run_ok(
        Command::new(tool("kubectl"))
            .args(args)
            .current_dir(dir)
            .env("HOME", dir),
    )
}

#[test]
fn kubeconfig_equals_what_the_tutorials_kubectl_commands_produce() {
    let project = Project::new(&both());
    project.build_ok();
    for ((node, ip), (component, _)) in NODES
        .into_iter()
        .flat_map(|n| COMPONENTS.into_iter().map(move |c| (n, c)))
    {
        let user = format!("system:{component}");
        let bundle = project.unpack(node);
        let certs = bundle.join("rootfs/etc/kubernetes/cert");
        let theirs = project.path(&format!("tutorial-{node}-{component}.kubeconfig"));
        let theirs = theirs.to_str().unwrap();
        let cert = |f: &str| certs.join(f).display().to_string();
        let dir = project.dir.path();
        kubectl(
            &[
                "config",
                "set-cluster",
                "kubernetes",
                &format!("--certificate-authority={}", cert("ca.pem")),
                "--embed-certs=true",
                &format!("--server=https://{ip}:6443"),
                &format!("--kubeconfig={theirs}"),
            ],
            dir,
        );
        kubectl(
            &[
                "config",
                "set-credentials",
                &user,
                &format!("--client-certificate={}", cert(&format!("{component}.pem"))),
                &format!("--client-key={}", cert(&format!("{component}-key.pem"))),
                "--embed-certs=true",
                &format!("--kubeconfig={theirs}"),
            ],
            dir,
        );
        kubectl(
            &[
                "config",
                "set-context",
                &user,
                "--cluster=kubernetes",
                &format!("--user={user}"),
                &format!("--kubeconfig={theirs}"),
            ],
            dir,
        );
        kubectl(
            &[
                "config",
                "use-context",
                &user,
                &format!("--kubeconfig={theirs}"),
            ],
            dir,
        );

        let ours = bundle.join(format!("rootfs/etc/kubernetes/{component}.kubeconfig"));
        let view = |path: &str| {
            kubectl(
                &["config", "view", "--raw", &format!("--kubeconfig={path}")],
                dir,
            )
        };
        let (a, b) = (view(ours.to_str().unwrap()), view(theirs));
        assert_eq!(
            a, b,
            "{node}: {component} kubeconfig differs from the tutorial's"
        );
        assert!(a.contains(&format!("server: https://{ip}:6443")), "{a}");
        assert_eq!(mode_of(&ours), 0o600);
    }
}

/// `systemd-analyze verify` exits 0 on unknown keys, so any line it prints counts, except
/// the binary missing on the build host.
pub(crate) fn verify_unit(unit: &Path) -> Vec<String> {
    let out = Command::new(tool("systemd-analyze"))
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !COMPONENTS
                .iter()
                .map(|(c, _)| *c)
                .chain(["kube-apiserver", "etcd"])
                .any(|c| {
                    l.contains(&format!(
                        "/opt/k8s/bin/{c} is not executable: No such file or directory"
                    ))
                })
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn units_pass_systemd_analyze_verify_for_every_profile() {
    for version in [
        "1.16.6", "1.18.0", "1.20.2", "1.22.0", "1.24.0", "1.26.0", "1.27.0", "1.34.0",
    ] {
        let project = Project::new(&both().replace("1.20.2", version));
        project.build_ok();
        let bundle = project.unpack("m1");
        for (component, port) in COMPONENTS {
            let unit_path = bundle.join(format!("rootfs/etc/systemd/system/{component}.service"));
            let problems = verify_unit(&unit_path);
            assert!(problems.is_empty(), "{version} {component}: {problems:?}");
            let unit = std::fs::read_to_string(&unit_path).unwrap();
            assert!(
                unit.contains(&format!("WorkingDirectory=/data/k8s/k8s/{component}\n")),
                "{unit}"
            );
            assert!(
                unit.contains("Restart=on-failure\nRestartSec=5\n"),
                "{unit}"
            );
            assert!(unit.contains("--bind-address=127.0.1.1 \\\n"), "{unit}");
            assert!(
                unit.contains(&format!("--secure-port={port} \\\n")),
                "{unit}"
            );
        }
    }
}

#[test]
fn the_unit_check_can_fail() {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("kube-controller-manager.service");
    std::fs::write(&unit, "[Service]\nExecStart=/bin/true\nRestartSecs=5\n").unwrap();
    assert!(
        !verify_unit(&unit).is_empty(),
        "a misspelt key must be reported"
    );
}

#[test]
fn rendered_units_match_the_golden_files() {
    // Golden files make every change to a rendered unit visible in review.
    // Regenerate with UPDATE_GOLDEN=1 after an intended change.
    for version in ["1.16.6", "1.20.2", "1.22.0", "1.24.0", "1.34.0"] {
        let project = Project::new(&both().replace("1.20.2", version));
        project.build_ok();
        let bundle = project.unpack("m1");
        let files = [
            (
                "etc/systemd/system/kube-controller-manager.service",
                "kube-controller-manager",
                "service",
            ),
            (
                "etc/systemd/system/kube-scheduler.service",
                "kube-scheduler",
                "service",
            ),
            (
                "etc/kubernetes/kube-scheduler.yaml",
                "kube-scheduler",
                "yaml",
            ),
        ];
        for (path, name, ext) in files {
            let text = std::fs::read_to_string(bundle.join("rootfs").join(path)).unwrap();
            let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/golden/{name}-{version}.{ext}"));
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &text).unwrap();
            }
            assert_eq!(
                text,
                std::fs::read_to_string(&golden).unwrap_or_default(),
                "{version}: {path} differs from {}",
                golden.display()
            );
        }
    }
}

#[test]
fn apiserver_units_pass_systemd_analyze_and_match_the_golden_files() {
    // Regenerate with UPDATE_GOLDEN=1 after an intended change.
    for version in ["1.16.6", "1.20.2", "1.22.0", "1.24.0", "1.34.0"] {
        let inventory = format!(
            "{}\n[kube-scheduler]\n[kube-apiserver]\netcd-servers = [\"http://127.0.0.1:2379\"]\n",
            INVENTORY.replace("1.20.2", version)
        );
        let project = Project::new(&inventory);
        project.build_ok();
        let bundle = project.unpack("m1");
        let unit_path = bundle.join("rootfs/etc/systemd/system/kube-apiserver.service");
        let problems = verify_unit(&unit_path);
        assert!(problems.is_empty(), "{version}: {problems:?}");
        let text = std::fs::read_to_string(&unit_path).unwrap();
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            "tests/fixtures/golden/kube-apiserver-{version}.service"
        ));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &text).unwrap();
        }
        assert_eq!(
            text,
            std::fs::read_to_string(&golden).unwrap_or_default(),
            "{version}: differs from {}",
            golden.display()
        );
    }
}

#[test]
fn install_sh_passes_shellcheck() {
    let project = Project::new(&both());
    project.build_ok();
    let install = project.unpack("m1").join("install.sh");
    run_ok(
        Command::new(tool("shellcheck"))
            .arg("--severity=style")
            .arg(&install),
    );
    run_ok(
        Command::new(tool("shellcheck"))
            .arg("--severity=style")
            .arg(project.path("dist/rollout.sh")),
    );
    let text = std::fs::read_to_string(&install).unwrap();
    assert!(text.starts_with("#!/usr/bin/env bash\n"));
    assert!(text.contains("set -euo pipefail\n"));
}

#[test]
fn archive_layout_modes_and_checksums() {
    let project = Project::with_fake_binary();
    project.build_ok();

    // dist/SHA256SUMS checks with the real sha256sum, and covers every file of dist/ but
    // itself and the admin kubeconfig (which never leaves the build host); tarballs are 0600.
    let all = file_names(&project.path("dist"), &["SHA256SUMS", "admin.kubeconfig"]);
    assert_eq!(sha256sum_checked(&project.path("dist")), all);
    assert!(all.contains(&"fetch.sh".to_string()) && all.contains(&"ca.pem".to_string()));
    assert_eq!(all.iter().filter(|n| n.ends_with(".tar.gz")).count(), 3);
    for (node, _) in NODES {
        assert_eq!(mode_of(&project.tarball(node)), 0o600, "{node}");
    }

    let listing = run_ok(
        Command::new(tool("tar"))
            .arg("-tvzf")
            .arg(project.tarball("m1")),
    );
    let mut files = Vec::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (perms, owner, path) = (cols[0], cols[1], cols[5]);
        assert_eq!(owner, "0/0", "{line}");
        files.push((
            path.trim_start_matches("control-plane-m1/").to_string(),
            perms.to_string(),
        ));
    }
    let perms = |p: &str| {
        files
            .iter()
            .find(|(f, _)| f == p)
            .map_or_else(|| panic!("{p} missing:\n{listing}"), |(_, m)| m.as_str())
    };
    assert_eq!(perms(""), "drwxr-xr-x");
    assert_eq!(perms("install.sh"), "-rwxr-xr-x");
    assert_eq!(perms("SHA256SUMS"), "-rw-r--r--");
    assert_eq!(perms("manifest.json"), "-rw-r--r--");
    for key in ["ca-key.pem", "kube-controller-manager-key.pem", "sa.key"] {
        assert_eq!(
            perms(&format!("rootfs/etc/kubernetes/cert/{key}")),
            "-rw-------",
            "{key}"
        );
    }
    assert_eq!(
        perms("rootfs/etc/kubernetes/kube-controller-manager.kubeconfig"),
        "-rw-------"
    );
    assert_eq!(perms("rootfs/etc/kubernetes/cert/ca.pem"), "-rw-r--r--");
    assert_eq!(
        perms("rootfs/etc/systemd/system/kube-controller-manager.service"),
        "-rw-r--r--"
    );
    assert_eq!(
        perms("rootfs/opt/k8s/bin/kube-controller-manager"),
        "-rwxr-xr-x"
    );

    // SHA256SUMS inside covers every other file, and sha256sum agrees.
    let bundle = project.unpack("m1");
    let sums = run_ok(
        Command::new(tool("sha256sum"))
            .args(["-c", "SHA256SUMS"])
            .current_dir(&bundle),
    );
    let regular: Vec<&String> = files
        .iter()
        .filter(|(_, m)| m.starts_with('-'))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        sums.lines().count(),
        regular.len() - 1,
        "every file but SHA256SUMS:\n{sums}"
    );

    // manifest.json agrees with the files and describes the certificates.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["node"], "m1");
    assert_eq!(
        manifest["components"],
        serde_json::json!(["kube-controller-manager"])
    );
    assert_eq!(manifest["kubernetes-version"], "1.20.2");
    for f in manifest["files"].as_array().unwrap() {
        let path = bundle.join(f["path"].as_str().unwrap());
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            sha256_file(&path),
            "{path:?}"
        );
        assert_eq!(
            u32::from_str_radix(f["mode"].as_str().unwrap(), 8).unwrap(),
            mode_of(&path),
            "{path:?}"
        );
    }
    let leaf = manifest["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "rootfs/etc/kubernetes/cert/kube-controller-manager.pem")
        .unwrap();
    assert!(
        leaf["subject"]
            .as_str()
            .unwrap()
            .contains("CN=system:kube-controller-manager"),
        "{leaf}"
    );
    assert_eq!(
        leaf["sans"],
        serde_json::json!(["DNS:m1", "IP:127.0.0.1", "IP:127.0.1.1"])
    );
    let serial = serial_of(&bundle.join("rootfs/etc/kubernetes/cert/kube-controller-manager.pem"));
    assert_eq!(
        leaf["serial"]
            .as_str()
            .unwrap()
            .replace(':', "")
            .to_uppercase(),
        serial.trim().trim_start_matches("serial=")
    );
    assert!(leaf["not-after"].as_str().unwrap() > leaf["not-before"].as_str().unwrap());
    assert_eq!(
        std::fs::read(bundle.join("rootfs/opt/k8s/bin/kube-controller-manager")).unwrap(),
        std::fs::read(project.path("fake-kcm")).unwrap()
    );
}

#[test]
fn newer_versions_warn_and_name_the_profile() {
    let project = Project::new(&INVENTORY.replace("1.20.2", "1.36.0"));
    let log = project.build_ok();
    assert!(log.contains("warning: Kubernetes 1.36.0 is newer than the newest checked flag profile; using the 1.34 profile"), "{log}");
}

#[test]
fn extra_args_override_and_append() {
    let inventory = format!("{INVENTORY}\n[kube-controller-manager]\nsecure-port = 10300\n[kube-controller-manager.extra-args]\nv = 4\nallocate-node-cidrs = true\nfeature-gates = \"A=true,B=false\"\n");
    let project = Project::new(&inventory);
    project.build_ok();
    let unit = std::fs::read_to_string(project.unpack("m1").join(UNIT)).unwrap();
    assert!(
        unit.contains("  --v=4 \\\n") && !unit.contains("--v=2"),
        "{unit}"
    );
    assert!(unit.contains("--secure-port=10300"), "{unit}");
    // New flags come last, in name order.
    assert!(unit.contains("  --allocate-node-cidrs=true \\\n  --feature-gates=A=true,B=false\nRestart=on-failure\n"), "{unit}");
    let install = std::fs::read_to_string(project.unpack("m1").join("install.sh")).unwrap();
    assert!(
        install.contains("https://127.0.1.1:10300/healthz"),
        "install.sh checks the configured port"
    );
}

#[test]
fn templates_can_be_overridden_from_a_folder() {
    let project = Project::new(INVENTORY);
    let default = include_str!("../../bundle-templates/unit.service.hbs");
    project.write(
        "tpl/kube-controller-manager.service.hbs",
        &default.replace("[Service]\n", "[Service]\nNice=-5\n"),
    );
    let out = project.build_with(&["--templates", "tpl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let unit = std::fs::read_to_string(project.unpack("m1").join(UNIT)).unwrap();
    assert!(unit.contains("[Service]\nNice=-5\n"), "{unit}");

    project.write(
        "tpl/kube-controller-manager.service.hbs",
        "{{no_such_value}}\n",
    );
    let out = project.kube_bundle(&[
        "build",
        "-c",
        "cluster.toml",
        "-o",
        "dist2",
        "--templates",
        "tpl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("template `kube-controller-manager.service`"),
        "{}",
        stderr(&out)
    );
    assert!(!project.path("dist2").exists());
}

#[test]
fn a_reader_that_closes_early_is_not_an_error() {
    let project = Project::new(INVENTORY);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(["build", "-c", "cluster.toml", "-o", "dist"])
        .current_dir(project.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like `kube-bundle build | head -0`: the pipe is closed before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(project.tarball("m1").exists());
}
