//! Dangerous changes to a whole-plane bundle that a forger repacks consistently
//! (SHA256SUMS and manifest.json updated to match, `verify::rewrite`): each is a finding
//! of `verify`, named by bundle and file. The review's reproductions (part 3, row 7).

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::etcd_verify::{all, assert_clean, edit_unit, findings, project};
use crate::verify::rewrite;

const CERT: &str = "rootfs/etc/kubernetes/cert";
const APISERVER_UNIT: &str = "rootfs/etc/systemd/system/kube-apiserver.service";
const KCM_UNIT: &str = "rootfs/etc/systemd/system/kube-controller-manager.service";

/// Three whole-plane masters with the default signing CA, built, with a pristine copy
/// of each tarball to start every change from.
fn built() -> (Project, Vec<PathBuf>) {
    let project = project("", "");
    project.build_ok();
    let pristine: Vec<PathBuf> = NODES
        .iter()
        .map(|(node, _)| {
            let copy = project.path(&format!("pristine-{node}.tar.gz"));
            std::fs::copy(project.tarball(node), &copy).unwrap();
            copy
        })
        .collect();
    (project, pristine)
}

fn restore(project: &Project, pristine: &[PathBuf]) {
    for ((node, _), copy) in NODES.iter().zip(pristine) {
        std::fs::copy(copy, project.tarball(node)).unwrap();
    }
}

/// m1 repacked with `files` (pki/ file, path in the bundle) added, then verified alone.
fn with_files(project: &Project, files: &[(&Path, &str)]) -> Vec<String> {
    rewrite(&project.tarball("m1"), |top| {
        for (from, to) in files {
            std::fs::copy(from, top.join(to)).unwrap();
        }
    });
    let out = project.verify(&[project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    findings(&out)
}

/// `node`'s `unit` edited by `change`, then verified with `bundles` (all, or `node`'s
/// alone): its findings, which must be some.
fn after_edit(
    project: &Project,
    node: &str,
    unit: &str,
    change: impl FnOnce(String) -> String,
    together: bool,
) -> Vec<String> {
    edit_unit(&project.tarball(node), unit, change);
    let bundles = if together {
        all(project)
    } else {
        vec![project.tarball(node)]
    };
    let out = project.verify(&bundles);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    findings(&out)
}

fn line(node: &str, file: &str, message: &str) -> String {
    format!("control-plane-{node}.tar.gz: {file}: {message}")
}

const CA_KEY_RISK: &str = "with it, anyone who reads this file can sign certificates that CA's trusters accept; a CA key stays on the build host";

#[test]
fn ca_keys_under_any_name_are_found() {
    let (project, pristine) = built();
    let pki = |name: &str| project.path(&format!("pki/{name}"));
    let fp_key = format!("{CERT}/front-proxy-ca-key.pem");
    assert_eq!(
        with_files(&project, &[(&pki("front-proxy-ca-key.pem"), &fp_key)]),
        [line(
            "m1",
            &fp_key,
            &format!("holds the private key of the CA in front-proxy-ca.pem: {CA_KEY_RISK}")
        )]
    );
    restore(&project, &pristine);
    let etcd_key = format!("{CERT}/etcd-ca-key.pem");
    assert_eq!(
        with_files(&project, &[(&pki("etcd-ca-key.pem"), &etcd_key)]),
        [line(
            "m1",
            &etcd_key,
            &format!("holds the private key of the CA in etcd-ca.pem: {CA_KEY_RISK}")
        )]
    );
    // The root key under a harmless name, and in PKCS#1 as cfssl writes keys.
    restore(&project, &pristine);
    let pkcs1 = project.path("root-pkcs1.pem");
    run_ok(
        openssl_command(&["rsa", "-traditional", "-in"])
            .arg(pki("ca-key.pem"))
            .arg("-out")
            .arg(&pkcs1),
    );
    let hidden = "rootfs/etc/kubernetes/audit-policy-key.pem";
    assert_eq!(
        with_files(&project, &[(&pkcs1, hidden)]),
        [line(
            "m1",
            hidden,
            &format!("holds the private key of the CA in ca.pem: {CA_KEY_RISK}")
        )]
    );
    // Appended to a file that has another purpose: every PEM block is read.
    restore(&project, &pristine);
    let audit = "rootfs/etc/kubernetes/audit-policy.yaml";
    rewrite(&project.tarball("m1"), |top| {
        let mut text = std::fs::read_to_string(top.join(audit)).unwrap();
        text.push_str(&std::fs::read_to_string(pki("ca-key.pem")).unwrap());
        std::fs::write(top.join(audit), text).unwrap();
    });
    assert_eq!(
        findings(&project.verify(&[project.tarball("m1")])),
        [line(
            "m1",
            audit,
            &format!("holds the private key of the CA in ca.pem: {CA_KEY_RISK}")
        )]
    );
    // The root key where the tutorial keeps it, in a bundle that signs CSRs with its
    // own signing CA: a finding, not a warning.
    restore(&project, &pristine);
    let root_key = format!("{CERT}/ca-key.pem");
    let out = {
        rewrite(&project.tarball("m1"), |top| {
            std::fs::copy(pki("ca-key.pem"), top.join(&root_key)).unwrap();
        });
        project.verify(&[project.tarball("m1")])
    };
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        findings(&out),
        [line("m1", &root_key, "is the root CA key, in a bundle whose CSRs are signed by csr-signer.pem: nothing here needs it, and whoever reads it can sign any certificate the cluster trusts")]
    );
    assert!(!stderr(&out).contains("warning:"), "{}", stderr(&out));
    // An encrypted key cannot be told apart, and kube-bundle never writes one.
    restore(&project, &pristine);
    let encrypted = project.path("encrypted.pem");
    run_ok(
        openssl_command(&[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:x",
            "-in",
        ])
        .arg(pki("ca-key.pem"))
        .arg("-out")
        .arg(&encrypted),
    );
    let spare = format!("{CERT}/spare.pem");
    assert_eq!(
        with_files(&project, &[(&encrypted, &spare)]),
        [line(
            "m1",
            &spare,
            "holds an encrypted private key, which kube-bundle never writes: verify cannot tell whose it is"
        )]
    );
    // The bundle as built passes: the signing CA's own key is where it belongs.
    restore(&project, &pristine);
    assert_clean(&project.verify(&all(&project)), 3);
}

#[test]
fn apiserver_flags_that_decide_who_may_do_what_are_found() {
    let (project, pristine) = built();
    let cases: [(&str, &str, &str); 6] = [
        (
            "  --encryption-provider-config=/etc/kubernetes/encryption-config.yaml \\\n",
            "",
            "--encryption-provider-config is `unset`, not kube-bundle's `/etc/kubernetes/encryption-config.yaml`: Secrets would be written to etcd unencrypted",
        ),
        (
            "--client-ca-file=/etc/kubernetes/cert/client-ca.pem",
            "--client-ca-file=/etc/kubernetes/cert/ca.pem",
            "--client-ca-file is `/etc/kubernetes/cert/ca.pem`, not kube-bundle's `/etc/kubernetes/cert/client-ca.pem`: client certificates would be checked against other CAs than the bundle's client-ca.pem",
        ),
        (
            "--requestheader-client-ca-file=/etc/kubernetes/cert/front-proxy-ca.pem",
            "--requestheader-client-ca-file=/etc/kubernetes/cert/ca.pem",
            "--requestheader-client-ca-file is `/etc/kubernetes/cert/ca.pem`, not kube-bundle's `/etc/kubernetes/cert/front-proxy-ca.pem`: another CA could vouch for a front proxy, which names any user in request headers",
        ),
        (
            "--anonymous-auth=false",
            "--anonymous-auth=true",
            "--anonymous-auth is `true`, not kube-bundle's `false`: requests without credentials would reach the API as system:anonymous",
        ),
        // A boolean flag set bare, after kube-bundle's, is true.
        (
            "--anonymous-auth=false \\\n",
            "--anonymous-auth=false \\\n  --anonymous-auth \\\n",
            "--anonymous-auth is `true`, not kube-bundle's `false`: requests without credentials would reach the API as system:anonymous",
        ),
        (
            "--authorization-mode=Node,RBAC",
            "--authorization-mode=AlwaysAllow",
            "--authorization-mode is `AlwaysAllow`, not kube-bundle's `Node,RBAC`: another mode can allow what RBAC denies (AlwaysAllow allows every request)",
        ),
    ];
    for (find, replace, message) in cases {
        restore(&project, &pristine);
        assert_eq!(
            after_edit(
                &project,
                "m1",
                APISERVER_UNIT,
                |t| t.replace(find, replace),
                false
            ),
            [line("m1", APISERVER_UNIT, message)]
        );
    }
}

#[test]
fn etcd_servers_must_be_members_of_the_bundled_cluster() {
    let (project, pristine) = built();
    // A server that is no member.
    let added = |t: String| {
        t.replace(
            "https://127.0.1.3:2379 \\",
            "https://127.0.1.3:2379,https://10.66.66.66:2379 \\",
        )
    };
    assert_eq!(
        after_edit(&project, "m1", APISERVER_UNIT, added, true),
        [line("m1", APISERVER_UNIT, "--etcd-servers lists https://10.66.66.66:2379, which is no member of the etcd cluster: no bundle given names it in --initial-cluster or advertises it; if a member joins later, verify its bundle together with these")]
    );
    // Alone, m1 cannot tell it from a member that joins later: a warning.
    let out = project.verify(&[project.tarball("m1")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("warning: control-plane-m1.tar.gz: {APISERVER_UNIT}: --etcd-servers lists https://10.66.66.66:2379, which is no member of the etcd cluster: no bundle given names it in --initial-cluster or advertises it (a member that joins later? verify every bundle together to tell)")),
        "{}",
        stderr(&out)
    );

    // A member dropped: found from m1's own --initial-cluster, alone or with the others.
    restore(&project, &pristine);
    let dropped = "--etcd-servers does not list member `m2` of the etcd cluster";
    let drop_m2 = |t: String| t.replace(",https://127.0.1.2:2379", "");
    assert_eq!(
        after_edit(&project, "m1", APISERVER_UNIT, drop_m2, false),
        [line(
            "m1",
            APISERVER_UNIT,
            &format!("{dropped} (https://127.0.1.2:2379, in control-plane-m1.tar.gz's --initial-cluster)")
        )]
    );
    let together = findings(&project.verify(&all(&project)));
    assert_eq!(
        together,
        [line(
            "m1",
            APISERVER_UNIT,
            &format!("{dropped} (https://127.0.1.2:2379, the member of control-plane-m2.tar.gz)")
        )]
    );
}

#[test]
fn every_master_shares_the_service_range_and_the_token_issuer() {
    let (project, pristine) = built();
    let m2 = project.tarball("m2");
    let issuer = |t: String| {
        t.replace(
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-issuer=https://issuer.example.com",
        )
    };
    assert_eq!(
        after_edit(&project, "m2", APISERVER_UNIT, issuer, true),
        [line("m2", APISERVER_UNIT, "--service-account-issuer is `https://issuer.example.com`, but `https://kubernetes.default.svc.cluster.local` in control-plane-m1.tar.gz: every master must use the same")]
    );

    // Another service range on one master, in both of its units.
    restore(&project, &pristine);
    let range = |t: String| {
        t.replace(
            "--service-cluster-ip-range=10.254.0.0/16",
            "--service-cluster-ip-range=10.96.0.0/16",
        )
    };
    for unit in [APISERVER_UNIT, KCM_UNIT] {
        edit_unit(&m2, unit, range);
    }
    assert_eq!(
        findings(&project.verify(&all(&project))),
        [
            line("m2", APISERVER_UNIT, "--service-cluster-ip-range `10.96.0.0/16` gives the `kubernetes` service 10.96.0.1, but manifest.json's apiserver.service-ip (the serving certificate's) is 10.254.0.1"),
            line("m2", APISERVER_UNIT, "--service-cluster-ip-range is `10.96.0.0/16`, but `10.254.0.0/16` in control-plane-m1.tar.gz: every master must use the same"),
            line("m2", KCM_UNIT, "--service-cluster-ip-range is `10.96.0.0/16`, but `10.254.0.0/16` in control-plane-m1.tar.gz: every master must use the same"),
        ]
    );
    // Within one bundle, the controller-manager's range must be the apiserver's.
    restore(&project, &pristine);
    assert_eq!(
        after_edit(&project, "m2", KCM_UNIT, range, false),
        [line("m2", KCM_UNIT, "--service-cluster-ip-range is `10.96.0.0/16`, but kube-apiserver.service of this bundle gives `10.254.0.0/16`: they must agree")]
    );
}

#[test]
fn work_and_data_dirs_the_build_refuses_are_findings() {
    let (project, pristine) = built();
    let m1 = project.tarball("m1");
    // kube-apiserver working in install.sh's releases folder.
    let releases = |t: String| {
        t.replace(
            "/data/k8s/k8s/kube-apiserver",
            "/var/backups/kube-bundle/kube-apiserver",
        )
    };
    assert_eq!(
        after_edit(&project, "m1", APISERVER_UNIT, releases, false),
        [
            line("m1", APISERVER_UNIT, "WorkingDirectory: `/var/backups/kube-bundle/kube-apiserver` overlaps install.sh's releases `/var/backups/kube-bundle`"),
            line("m1", APISERVER_UNIT, "names `/var/backups/kube-bundle/kube-apiserver/audit.log`, which is neither in the bundle nor listed as external"),
        ]
    );
    // etcd's data in the units' folder, with manifest.json saying so.
    restore(&project, &pristine);
    let etcd_unit = "rootfs/etc/systemd/system/etcd.service";
    rewrite(&m1, |top| {
        let unit = top.join(etcd_unit);
        let text = std::fs::read_to_string(&unit)
            .unwrap()
            .replace("/data/k8s/etcd/data", "/etc/systemd/system");
        std::fs::write(&unit, text).unwrap();
        let manifest = top.join("manifest.json");
        let text = std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("/data/k8s/etcd/data", "/etc/systemd/system");
        std::fs::write(&manifest, text).unwrap();
    });
    assert_eq!(
        findings(&project.verify(&[project.tarball("m1")])),
        [line(
            "m1",
            "manifest.json",
            "etcd.data-dir: `/etc/systemd/system` overlaps the units' folder `/etc/systemd/system`"
        )]
    );
}
