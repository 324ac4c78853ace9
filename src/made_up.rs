//! A component that exists only in this test: a row, its configuration template and a
//! flag profile, and nothing else. It shows that the stages read rows: the inventory
//! takes its section by name, and it is planned, rendered, packed, installed with
//! `install.sh --root` and verified with no stage naming it. A second made-up row
//! brings a CA of its own, declared beside it, which `pki` makes and `plan` and `render`
//! carry with no stage naming it either. The rows are registered with
//! `component::testing::add`, for the calling test's thread only; the binary has no way
//! to add one.

use std::path::Path;
use std::process::Command;

use crate::component::{self, CaSpec, CertSpec, Component, ConfigFile, ExtraPort, IssuedBy, Names};
use crate::model::Flag;
use crate::model::{ComponentSettings, Inventory, Node};
use crate::version::KubeVersion;

fn set(name: &str, value: impl Into<String>) -> Flag {
    Flag {
        name: name.into(),
        value: Some(value.into()),
    }
}

fn flags(_inv: &Inventory, node: &Node, s: &ComponentSettings) -> Vec<Flag> {
    let c = s.component;
    vec![
        set("bind-address", node.ip.to_string()),
        set("secure-port", s.secure_port.to_string()),
        set("metrics-port", s.extra_ports[0].to_string()),
        set("tls-cert-file", c.cert_path()),
        set("tls-private-key-file", c.key_path()),
        set("kubeconfig", c.kubeconfig_path()),
        set("config", c.config_path().unwrap_or_default()),
    ]
}

fn api_version(version: &KubeVersion) -> &'static str {
    match version.profile_minor() {
        ..=21 => "madeup.example.com/v1beta1",
        _ => "madeup.example.com/v1",
    }
}

const MADE_UP_ROW: Component = Component {
    name: "made-up",
    user: "system:made-up",
    description: "A made-up component",
    documentation: "https://example.com/made-up",
    section: component::STANDARD,
    node_state: None,
    starter: None,
    required: false,
    default_secure_port: 10300,
    port_key: "secure-port",
    extra_ports: &[ExtraPort {
        key: "metrics-port",
        default: 10301,
        what: "metrics",
    }],
    health: component::Health {
        scheme: "https",
        path: "/livez",
        ca: component::paths::CA_CERT,
        ok: "ok",
    },
    lease: Some("made-up"),
    kubeconfig: true,
    serves_api: false,
    binds_node_ip: true,
    certs: &[CertSpec {
        name: "made-up",
        cn: "system:made-up:{node}",
        org: Some("system:made-ups"),
        server: true,
        client: true,
        names: Names::Node,
        issued_by: IssuedBy::Root,
    }],
    certs_from: &[],
    gates_the_rest: false,
    start: component::BLOCKING,
    work_mode: 0o755,
    data_dirs: &[],
    unit_settings: &["LimitNOFILE=4096"],
    config: Some(ConfigFile {
        template: "made-up.yaml",
        text: "apiVersion: {{api_version}}\nkind: {{kind}}\nclientConnection:\n  kubeconfig: \"{{kubeconfig}}\"\nleaderElection:\n  leaderElect: true\n",
        kind: "MadeUpConfiguration",
        api_version,
        values: |_, _| serde_json::json!({}),
    }),
    flags,
    main_packages: &[],
    catalogue: "flag\tfirst\tlast\tsource\nverbosity\t16\t\tmade up\n",
    version_series: "1.",
    version_stamp: component::KUBERNETES_STAMP,
    install_data: None,
    managed_flags: &[("secure-port", "secure-port"), ("bind-address", "")],
    guards: &[],
    shared_flags: &[],
    uses_service_account_key: false,
    signs_csrs: false,
    install_hooks: None,
    manifest: None,
    verify: crate::model::Checks::NONE,
};

static MADE_UP: Component = MADE_UP_ROW;

/// A CA only the row below needs, declared beside it.
const MADE_UP_CA: CaSpec = CaSpec {
    stem: "made-up-ca",
    what: "made-up CA",
    node_path: "/etc/kubernetes/cert/made-up-ca.pem",
    pki_key: None,
};

/// The made-up row's flags, and the CA its clients must chain to.
fn signed_flags(inv: &Inventory, node: &Node, s: &ComponentSettings) -> Vec<Flag> {
    let mut flags = flags(inv, node, s);
    flags.push(set("client-ca-file", MADE_UP_CA.node_path));
    flags
}

/// A made-up row whose certificate [`MADE_UP_CA`] issues.
static SIGNED: Component = Component {
    name: "made-up-signed",
    user: "system:made-up-signed",
    default_secure_port: 10320,
    health: component::Health {
        ca: MADE_UP_CA.node_path,
        ..MADE_UP_ROW.health
    },
    lease: Some("made-up-signed"),
    certs: &[CertSpec {
        name: "made-up-signed",
        cn: "system:made-up-signed",
        org: None,
        server: true,
        client: true,
        names: Names::Node,
        issued_by: IssuedBy::Ca(&MADE_UP_CA),
    }],
    config: None,
    flags: signed_flags,
    ..MADE_UP_ROW
};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(root: &Path, rel: &str) -> String {
    fs_err::read_to_string(root.join(rel)).expect("file exists")
}

#[test]
fn a_row_alone_makes_a_component_that_plans_renders_installs_and_verifies() {
    component::testing::add(&MADE_UP);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    fs_err::write(
        project.join("cluster.toml"),
        "[cluster]\nkubernetes-version = \"1.20.2\"\nservice-cidr = \"10.254.0.0/16\"\n\
         [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n\
         [made-up]\nbinary = \"made-up.sh\"\nbinary-check = false\nsecure-port = 10310\n\
         extra-args = { verbosity = 3 }\n",
    )
    .unwrap();
    fs_err::write(project.join("made-up.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    run(Command::new("chmod")
        .args(["0755"])
        .arg(project.join("made-up.sh")));

    // Load and plan: its section is read by the row's name; the other rows' sections are
    // absent, so the required controller-manager comes along with defaults.
    let inv = crate::load::config::load(&project.join("cluster.toml")).unwrap();
    let built: Vec<&str> = inv.components.iter().map(|s| s.component.name).collect();
    assert_eq!(built, ["kube-controller-manager", "made-up"]);
    let settings = inv.settings(&MADE_UP).unwrap();
    assert_eq!(
        (settings.secure_port, settings.extra_ports.clone()),
        (10310, vec![10301])
    );
    assert_eq!(inv.work_dir(&MADE_UP), "/data/k8s/k8s/made-up");

    // A port another row's key already takes is refused, naming both keys.
    let clash = fs_err::read_to_string(project.join("cluster.toml"))
        .unwrap()
        .replace("secure-port = 10310", "secure-port = 10257");
    let err = crate::load::config::parse(&project.join("clash.toml"), &clash).unwrap_err();
    assert!(
        err.to_string().contains(
            "`kube-controller-manager.secure-port` and `made-up.secure-port` would both listen on port 10257"
        ),
        "{err}"
    );

    // Render and pack.
    let out = project.join("dist");
    let report = crate::build(
        &crate::BuildOptions {
            config: project.join("cluster.toml"),
            out: out.clone(),
            templates: None,
            mtime: 0,
            renew: crate::pki::Renewal::default(),
            sign: None,
            pin_signers: None,
            cache: None,
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(report.bundles.len(), 1);
    let tarball = report.bundles[0].path.clone();
    let unpacked = project.join("unpacked");
    fs_err::create_dir(&unpacked).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked));
    let bundle = unpacked.join("control-plane-m1");
    let unit = read(&bundle, "rootfs/etc/systemd/system/made-up.service");
    for want in [
        "Description=A made-up component",
        "WorkingDirectory=/data/k8s/k8s/made-up",
        "ExecStart=/opt/k8s/bin/made-up",
        "--bind-address=10.0.0.1",
        "--secure-port=10310",
        "--metrics-port=10301",
        "--config=/etc/kubernetes/made-up.yaml",
        "--verbosity=3",
        "LimitNOFILE=4096",
    ] {
        assert!(unit.contains(want), "{want} in {unit}");
    }
    assert_eq!(
        read(&bundle, "rootfs/etc/kubernetes/made-up.yaml"),
        "apiVersion: madeup.example.com/v1beta1\nkind: MadeUpConfiguration\nclientConnection:\n  kubeconfig: \"/etc/kubernetes/made-up.kubeconfig\"\nleaderElection:\n  leaderElect: true\n"
    );
    let subject = run(Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(bundle.join("rootfs/etc/kubernetes/cert/made-up.pem")));
    assert_eq!(
        subject.trim(),
        "subject=CN=system:made-up:m1,O=system:made-ups"
    );
    let install = read(&bundle, "install.sh");
    assert!(
        install.contains("HEALTH_URL[\"made-up\"]=\"https://10.0.0.1:10310/livez\"")
            && install.contains("LEASE[\"made-up\"]=\"made-up\""),
        "install.sh carries the row's health URL and lease"
    );

    // Install into a scratch root.
    let root = project.join("root");
    let log = run(Command::new("bash")
        .arg(bundle.join("install.sh"))
        .arg("--root")
        .arg(&root));
    assert!(log.contains("systemctl was not run"), "{log}");
    for rel in [
        "etc/systemd/system/made-up.service",
        "etc/kubernetes/made-up.yaml",
        "etc/kubernetes/made-up.kubeconfig",
        "etc/kubernetes/cert/made-up.pem",
        "etc/kubernetes/cert/made-up-key.pem",
        "opt/k8s/bin/made-up",
    ] {
        assert_eq!(
            fs_err::read(root.join(rel)).unwrap(),
            fs_err::read(bundle.join("rootfs").join(rel)).unwrap(),
            "{rel}"
        );
    }
    let mode = |rel: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &fs_err::metadata(root.join(rel)).unwrap().permissions(),
        ) & 0o7777
    };
    assert_eq!(mode("etc/kubernetes/cert/made-up-key.pem"), 0o600);
    assert_eq!(mode("opt/k8s/bin/made-up"), 0o755);
    assert_eq!(mode("data/k8s/k8s/made-up"), 0o755);

    // Verify: the row's files, identity, unit paths and configuration file pass.
    let verify = |path: &Path| {
        crate::verify::verify(&crate::verify::VerifyOptions {
            bundles: vec![path.to_path_buf()],
            warn_within: std::time::Duration::from_secs(30 * 86400),
            trust: None,
            seal_key: None,
        })
        .unwrap()
    };
    let clean = verify(&tarball);
    assert!(clean.findings.is_empty(), "{:?}", clean.findings);
    assert_eq!(clean.bundles.len(), 1);
}

#[test]
fn a_ca_declared_beside_a_row_is_made_planned_and_rendered() {
    component::testing::add(&SIGNED);
    let dir = tempfile::tempdir().unwrap();
    let inv = crate::load::config::parse(
        &dir.path().join("cluster.toml"),
        "[cluster]\nkubernetes-version = \"1.20.2\"\nservice-cidr = \"10.254.0.0/16\"\n\
         [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n[made-up-signed]\n",
    )
    .unwrap();
    assert_eq!(component::cas(&inv), [&MADE_UP_CA]);

    // pki/ makes it once, under the cluster's name, and issues the row's certificate with it.
    let prepare = || {
        let mut notes = Vec::new();
        let pki = crate::pki::prepare(&inv, &crate::pki::Renewal::default(), &mut |n| {
            notes.push(n);
        })
        .unwrap();
        (pki, notes)
    };
    let (pki, notes) = prepare();
    let pki_dir = dir.path().join("pki");
    let ca_path = pki_dir.join("made-up-ca.pem");
    let made = format!("generated the made-up CA in `{}`", ca_path.display());
    assert!(notes.contains(&made), "{notes:#?}");
    assert!(pki_dir.join("made-up-ca-key.pem").exists());
    let subject = run(Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&ca_path));
    assert_eq!(subject.trim(), "subject=CN=kubernetes-made-up-ca");
    let chained = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca_path)
        .arg(pki_dir.join("m1/made-up-signed.pem")));
    assert!(chained.trim().ends_with(": OK"), "{chained}");
    let ca_pem = fs_err::read_to_string(&ca_path).unwrap();
    assert_eq!(pki.ca_pem(&MADE_UP_CA), ca_pem);
    let (_, again) = prepare();
    assert!(!again.contains(&made), "{again:#?}");
    let rows = crate::pki::certs::list(&inv, std::time::Duration::from_secs(86400)).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.name == "made-up-ca" && r.node.is_none() && r.self_signed),
        "certs lists it"
    );

    // The plan carries its certificate where the row declared, read by the row.
    let plan = crate::plan::plan_node(&inv, &inv.nodes[0]);
    let file = &plan.files[MADE_UP_CA.node_path];
    assert_eq!(file.source, crate::plan::Source::Ca(&MADE_UP_CA));
    assert_eq!((file.mode, file.restarts.clone()), (0o644, vec![&SIGNED]));

    // Rendering gives it pki/'s bytes, and install.sh checks the row's health against it.
    let templates = crate::render::Templates::load(None).unwrap();
    let rendered = templates.render_node(&inv, &plan, &pki).unwrap();
    let carried = &rendered.files["rootfs/etc/kubernetes/cert/made-up-ca.pem"];
    assert_eq!(
        carried.content,
        crate::plan::Content::Bytes(ca_pem.into_bytes())
    );
    let install = match &rendered.files["install.sh"].content {
        crate::plan::Content::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
        crate::plan::Content::File(_) => unreachable!("install.sh is rendered"),
    };
    assert!(
        install.contains("/etc/kubernetes/cert/made-up-ca.pem"),
        "install.sh names the row's health CA"
    );
}
