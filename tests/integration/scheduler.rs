//! kube-scheduler beside kube-controller-manager: one bundle per master carrying both,
//! today's pki/ reused without a new certificate, the scheduler's identity checked with
//! openssl, verify, certs, renew and rollout-plan per component, its flag catalogue, and
//! the completions and man pages generated from the command definitions.

use std::process::Command;

use crate::bad_input::{no_setup, refused};
use crate::common::*;
use crate::verify::{findings, rewrite};

fn both() -> String {
    format!("{INVENTORY}\n[kube-scheduler]\n")
}

fn read(project: &Project, rel: &str) -> Vec<u8> {
    std::fs::read(project.path(rel)).unwrap()
}

#[test]
fn todays_pki_is_reused_when_the_scheduler_joins() {
    // Build with the controller-manager alone, as before the scheduler existed.
    let project = Project::new(INVENTORY);
    project.build_ok();
    let kcm_files: Vec<(String, Vec<u8>)> = NODES
        .iter()
        .flat_map(|(n, _)| {
            [
                "kube-controller-manager.pem",
                "kube-controller-manager-key.pem",
            ]
            .map(|f| format!("pki/{n}/{f}"))
        })
        .chain(["pki/ca.pem", "pki/ca-key.pem", "pki/sa.key"].map(String::from))
        .map(|rel| (rel.clone(), read(&project, &rel)))
        .collect();

    project.write("cluster.toml", &both());
    let log = project.build_ok();
    for (rel, bytes) in &kcm_files {
        assert_eq!(&read(&project, rel), bytes, "{rel} changed");
    }
    assert!(
        !log.contains("kube-controller-manager certificate") && !log.contains("generated"),
        "{log}"
    );
    for (node, _) in NODES {
        assert!(
            log.contains(&format!("{node}: issued a kube-scheduler certificate")),
            "{log}"
        );
        assert_eq!(
            mode_of(&project.path(&format!("pki/{node}/kube-scheduler-key.pem"))),
            0o600
        );
    }
    let dist: Vec<String> = std::fs::read_dir(project.path("dist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for (node, _) in NODES {
        assert!(
            dist.contains(&format!("control-plane-{node}.tar.gz")),
            "{dist:?}"
        );
    }
    let paths = tarballs(&project);
    let mut args = vec!["verify"];
    args.extend(paths.iter().map(String::as_str));
    let out = project.kube_bundle(&args);
    assert_eq!(out.status.code(), Some(0), "{}", findings(&out));

    // A second build changes nothing.
    let log = project.build_ok();
    assert!(log.contains("no bundle changed"), "{log}");
}

fn tarballs(project: &Project) -> Vec<String> {
    NODES
        .iter()
        .map(|(n, _)| project.tarball(n).display().to_string())
        .collect()
}

#[test]
fn the_scheduler_certificate_has_its_own_identity() {
    let project = Project::new(&both());
    project.build_ok();
    for (node, ip) in NODES {
        let bundle = project.unpack(node);
        let cert = bundle.join("rootfs/etc/kubernetes/cert/kube-scheduler.pem");
        let cert_dir = cert.parent().unwrap();
        let text = openssl(
            cert_dir,
            &[
                "x509",
                "-noout",
                "-subject",
                "-ext",
                "subjectAltName,extendedKeyUsage,keyUsage",
                "-in",
                "kube-scheduler.pem",
            ],
        );
        assert!(
            text.contains("O = system:kube-scheduler")
                && text.contains("CN = system:kube-scheduler"),
            "{text}"
        );
        assert!(
            text.contains(&format!("DNS:{node}"))
                && text.contains("IP Address:127.0.0.1")
                && text.contains(&format!("IP Address:{ip}")),
            "{text}"
        );
        assert!(
            text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
            "{text}"
        );
        // Chains to the same CA as the controller-manager's.
        let verified = openssl(
            cert_dir,
            &["verify", "-CAfile", "ca.pem", "kube-scheduler.pem"],
        );
        assert_eq!(verified, "kube-scheduler.pem: OK\n");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            manifest["components"],
            serde_json::json!(["kube-controller-manager", "kube-scheduler"])
        );
        // The scheduler gets no signing keys.
        let unit = std::fs::read_to_string(
            bundle.join("rootfs/etc/systemd/system/kube-scheduler.service"),
        )
        .unwrap();
        assert!(
            !unit.contains("ca-key.pem") && !unit.contains("sa.key"),
            "{unit}"
        );
    }
}

#[test]
fn verify_checks_the_scheduler_like_the_controller_manager() {
    let project = Project::new(&both());
    project.build_ok();
    let m1 = project.tarball("m1");

    // A configuration the release does not read, without leader election.
    rewrite(&m1, |top| {
        let config = top.join("rootfs/etc/kubernetes/kube-scheduler.yaml");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("v1beta1", "v1")
            .replace("leaderElect: true", "leaderElect: false");
        std::fs::write(&config, text).unwrap();
    });
    let out = project.kube_bundle(&["verify", m1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    let config = "control-plane-m1.tar.gz: rootfs/etc/kubernetes/kube-scheduler.yaml";
    assert_eq!(
        f,
        format!(
            "{config}: apiVersion `kubescheduler.config.k8s.io/v1` is not the one kube-scheduler 1.20.2 reads (`kubescheduler.config.k8s.io/v1beta1`)\n\
             {config}: leaderElection.leaderElect is not true: every master would schedule\n"
        )
    );

    // The controller-manager's key pair in the scheduler's place.
    let m2 = project.tarball("m2");
    rewrite(&m2, |top| {
        let cert = top.join("rootfs/etc/kubernetes/cert");
        std::fs::copy(
            cert.join("kube-controller-manager.pem"),
            cert.join("kube-scheduler.pem"),
        )
        .unwrap();
        std::fs::copy(
            cert.join("kube-controller-manager-key.pem"),
            cert.join("kube-scheduler-key.pem"),
        )
        .unwrap();
    });
    let out = project.kube_bundle(&["verify", m2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    assert!(f.contains("control-plane-m2.tar.gz: rootfs/etc/kubernetes/cert/kube-scheduler.pem: subject CN and O must be `system:kube-scheduler`, found CN `system:kube-controller-manager` O `system:kube-controller-manager`"), "{f}");
    assert!(f.contains("rootfs/etc/kubernetes/kube-scheduler.kubeconfig: client-certificate-data is not the bundled kube-scheduler.pem"), "{f}");

    // The untouched bundle is clean.
    let out = project.kube_bundle(&["verify", project.tarball("m3").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", findings(&out));
}

#[test]
fn certs_and_renew_work_per_component() {
    let project = Project::new(&both());
    project.build_ok();
    let out = project.kube_bundle(&["certs", "-c", "cluster.toml", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["name"].as_str().unwrap(),
                r["node"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "ca -",
            "service-account key -",
            "kube-controller-manager m1",
            "kube-scheduler m1",
            "kube-controller-manager m2",
            "kube-scheduler m2",
            "kube-controller-manager m3",
            "kube-scheduler m3",
        ]
    );

    let serial = |rel: &str| serial_of(&project.path(rel));
    let before: Vec<String> = ["m1", "m2"]
        .iter()
        .flat_map(|n| {
            ["kube-controller-manager", "kube-scheduler"].map(|c| format!("pki/{n}/{c}.pem"))
        })
        .map(|rel| serial(&rel))
        .collect();
    let out = project.kube_bundle(&[
        "build",
        "-c",
        "cluster.toml",
        "-o",
        "dist",
        "--renew",
        "m2",
        "--component",
        "kube-scheduler",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after: Vec<String> = ["m1", "m2"]
        .iter()
        .flat_map(|n| {
            ["kube-controller-manager", "kube-scheduler"].map(|c| format!("pki/{n}/{c}.pem"))
        })
        .map(|rel| serial(&rel))
        .collect();
    assert_eq!(
        before[..3],
        after[..3],
        "only m2's scheduler certificate is renewed"
    );
    assert_ne!(before[3], after[3]);
    assert!(
        stderr(&out).contains("m2: reissued the kube-scheduler certificate: renewal was asked for"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("changed: control-plane-m2.tar.gz"),
        "{}",
        stderr(&out)
    );

    project
        .run_build(&["--renew", "--component", "etcd"])
        .status(2)
        .stderr(
            "error: --component etcd: `etcd` is not a component `cluster.toml` builds\n\
             hint: it builds kube-controller-manager, kube-scheduler\n",
        )
        .check();
}

#[test]
fn rollout_plan_names_each_component_leader() {
    let project = Project::new(&both());
    project
        .run(&["rollout-plan", "-c", "cluster.toml"])
        .stdout("1. m1 127.0.1.1\n2. m2 127.0.1.2\n3. m3 127.0.1.3\n")
        .stderr_has("cannot tell the kube-controller-manager leader (no --kubeconfig given)")
        .stderr_has("cannot tell the kube-scheduler leader (no --kubeconfig given)")
        .check();
    let out = project.kube_bundle(&["rollout-plan", "-c", "cluster.toml", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["leaders"][1]["component"], "kube-scheduler");
    assert_eq!(plan["steps"][0]["leads"], serde_json::json!([]));
}

#[test]
fn scheduler_flags_are_checked_against_its_own_catalogue() {
    let cases = [
        (
            "1.24.0",
            "address = \"0.0.0.0\"",
            "error: cluster.toml:31:11: `kube-scheduler.extra-args.address`: `--address` does not exist in kube-scheduler 1.24.0; it was removed after 1.23\n\
             hint: remove it from `extra-args`\n",
        ),
        (
            "1.20.2",
            "cluster-signing-duration = \"1h\"",
            "error: cluster.toml:31:28: `kube-scheduler.extra-args.cluster-signing-duration`: kube-scheduler has no flag `--cluster-signing-duration`\n\
             hint: check the spelling against `kube-scheduler --help` of 1.20.2; names are written without leading dashes\n",
        ),
        (
            "1.20.2",
            "config = \"/tmp/x.yaml\"",
            "error: cluster.toml:31:10: `kube-scheduler.extra-args.config`: `--config` is set by kube-bundle\n\
             hint: kube-bundle writes `--config` for kube-scheduler; it cannot be overridden\n",
        ),
    ];
    for (version, arg, stderr) in cases {
        refused(
            &format!(
                "{}\n[kube-scheduler.extra-args]\n{arg}\n",
                both().replace("1.20.2", version)
            ),
            no_setup,
            stderr,
        );
    }
    let project = Project::new(&format!("{}\n[kube-scheduler.extra-args]\nv = 4\n", both()));
    project.build_ok();
    let unit = std::fs::read_to_string(
        project
            .unpack("m1")
            .join("rootfs/etc/systemd/system/kube-scheduler.service"),
    )
    .unwrap();
    assert!(
        unit.contains("--v=4\n") && !unit.contains("--v=2"),
        "{unit}"
    );

    // Two components on one port is refused before anything is written.
    refused(
        &format!("{INVENTORY}\n[kube-scheduler]\nsecure-port = 10257\n"),
        no_setup,
        "error: cluster.toml: `kube-scheduler.secure-port`: `kube-controller-manager.secure-port` and `kube-scheduler.secure-port` would both listen on port 10257 of every node\n\
         hint: give each component its own port (defaults: etcd 2379 and peers 2380, kube-apiserver 6443, kube-controller-manager 10257, kube-scheduler 10259)\n",
    );
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let project = Project::new(INVENTORY);
    for shell in ["bash", "zsh", "fish"] {
        let out = project.kube_bundle(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        for word in ["rollout-plan", "verify", "component", "warn-within"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let bash = project.path("kube-bundle.bash");
    std::fs::write(
        &bash,
        stdout(&project.kube_bundle(&["completions", "bash"])),
    )
    .unwrap();
    run_ok(Command::new("bash").arg("-n").arg(&bash));

    let out = project.kube_bundle(&["man", "-o", "man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(project.path("man/kube-bundle.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH kube-bundle 1"),
        "{page}"
    );
    assert!(page.contains("rollout\\-plan"), "{page}");
    let build = std::fs::read_to_string(project.path("man/kube-bundle-build.1")).unwrap();
    assert!(build.contains(".TH kube-bundle-build 1"), "{build}");
    assert!(build.contains("\\-\\-component"), "{build}");
    assert!(!project.path("man/kube-bundle-man.1").exists());
}
