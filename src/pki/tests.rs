//! Unit tests of the pki stage: CAs, leaves, keys kept and refused, file modes.

use super::*;
use crate::load::config;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use x509_parser::oid_registry as oids;

const INVENTORY: &str =
    "[cluster]\nkubernetes-version = \"1.20.2\"\nservice-cidr = \"10.254.0.0/16\"\n\
    [pki]\ncsr-signing = \"ca\"\nkey-algorithm = \"ecdsa-p256\"\nC = \"CN\"\nOU = \"opsnull\"\n\
    [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n\
    [[nodes]]\nname = \"m2\"\nip = \"10.0.0.2\"\n";

/// The test inventory with every component, the apiserver and etcd included.
fn whole_plane() -> String {
    format!("{INVENTORY}[kube-apiserver]\n[kube-scheduler]\n[etcd]\nversion = \"3.4\"\n")
}

/// `text` as the inventory `cluster.toml` of `dir`, so that its pki/ is `dir/pki`.
fn inventory(dir: &Path, text: &str) -> Inventory {
    config::parse(&dir.join("cluster.toml"), text).unwrap()
}

/// [`prepare`] without renewal, which must succeed: the PKI and its notes.
fn prepared(inv: &Inventory) -> (Pki, Vec<String>) {
    renewed(inv, &Renewal::default())
}

fn renewed(inv: &Inventory, renew: &Renewal) -> (Pki, Vec<String>) {
    let mut notes = Vec::new();
    let pki = prepare(inv, renew, &mut |n| notes.push(n)).unwrap();
    (pki, notes)
}

/// [`prepare`] that must fail: its error, as printed.
fn refused(inv: &Inventory) -> String {
    prepare(inv, &Renewal::default(), &mut |_| {})
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

fn der_of(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text).unwrap().into_contents()
}

fn parsed(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

/// Every entry under `dir`, relative, with its mode and (for a file) its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            let bytes = if e.file_type().is_file() {
                fs_err::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                (mode, bytes),
            )
        })
        .collect()
}

fn seconds(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap()
}

#[test]
fn a_new_ca_signs_certificates_only_and_lasts_its_validity() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let before = OffsetDateTime::now_utc();
    let (pki, notes) = prepared(&inv);
    let after = OffsetDateTime::now_utc();
    let ca_path = dir.path().join("pki/ca.pem");
    assert_eq!(
        notes[0],
        format!("generated a new CA in `{}`", ca_path.display())
    );
    assert_eq!(fs_err::read_to_string(&ca_path).unwrap(), pki.ca_cert_pem);

    let der = der_of(&pki.ca_cert_pem);
    let ca = parsed(&der);
    let constraints = ca.basic_constraints().unwrap().unwrap();
    assert!(constraints.critical && constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, None);
    let usage = ca.key_usage().unwrap().unwrap();
    assert!(usage.critical);
    assert_eq!(
        (
            usage.value.key_cert_sign(),
            usage.value.crl_sign(),
            usage.value.digital_signature(),
            usage.value.key_encipherment(),
        ),
        (true, true, true, false)
    );
    assert!(ca.extended_key_usage().unwrap().is_none());
    assert!(self_signed(&ca) && ca.verify_signature(None).is_ok());
    assert!(ca.subject_alternative_name().unwrap().is_none());
    // The inventory's subject, without an O, CN after the cluster.
    assert_eq!(
        attr(&ca, &oids::OID_X509_COMMON_NAME).unwrap(),
        "kubernetes-ca"
    );
    assert_eq!(attr(&ca, &oids::OID_X509_COUNTRY_NAME).unwrap(), "CN");
    assert_eq!(
        attr(&ca, &oids::OID_X509_ORGANIZATIONAL_UNIT).unwrap(),
        "opsnull"
    );
    assert_eq!(attr(&ca, &oids::OID_X509_ORGANIZATION_NAME), None);
    assert_eq!(key_algorithm_of(&ca), Some(KeyAlgorithm::EcdsaP256));
    assert!(key_matches(Path::new("ca-key.pem"), &pki.ca_key_pem, &ca).unwrap());
    // Backdated for slow clocks; X.509 keeps whole seconds.
    let start = ca.validity().not_before.to_datetime();
    let end = ca.validity().not_after.to_datetime();
    let second = time::Duration::seconds(1);
    assert!(start >= before - CLOCK_SKEW - second && start <= after - CLOCK_SKEW);
    let lifetime = seconds(inv.pki.ca_validity) + CLOCK_SKEW;
    assert!((end - start - lifetime).abs() <= second, "{start} to {end}");
    // A positive serial of 16 bytes, another for the next CA.
    let serial = ca.raw_serial();
    assert!(serial.len() == 16 && serial[0] & 0x80 == 0, "{serial:?}");
    let other = tempfile::tempdir().unwrap();
    let (again, _) = prepared(&inventory(other.path(), INVENTORY));
    assert_ne!(parsed(&der_of(&again.ca_cert_pem)).raw_serial(), serial);
}

#[test]
fn every_leaf_names_its_node_and_has_the_usages_of_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &whole_plane());
    let (pki, _) = prepared(&inv);
    // (certificate, serves, is a client): fixed here, not read from the rows.
    let kinds = [
        ("apiserver-etcd-client", false, true),
        ("etcd", true, true),
        ("front-proxy-client", false, true),
        ("kube-apiserver", true, false),
        ("kube-apiserver-kubelet-client", false, true),
        ("kube-controller-manager", true, true),
        ("kube-scheduler", true, true),
    ];
    let mut names: Vec<(&str, &str)> = pki
        .leaves
        .keys()
        .map(|(node, name)| (node.as_str(), *name))
        .collect();
    names.sort();
    let want: Vec<(&str, &str)> = ["m1", "m2"]
        .iter()
        .flat_map(|n| kinds.iter().map(move |(name, ..)| (*n, *name)))
        .collect();
    assert_eq!(names, want);
    let specs: Vec<&CertSpec> = inv
        .components
        .iter()
        .flat_map(|s| inv.certs(s.component))
        .collect();
    for ((node_name, name), leaf) in &pki.leaves {
        let node = inv.nodes.iter().find(|n| &n.name == node_name).unwrap();
        let spec = specs.iter().find(|s| s.name == *name).unwrap();
        let der = der_of(&leaf.cert_pem);
        let cert = parsed(&der);
        let issuer_pem = match spec.issued_by {
            IssuedBy::Root => pki.ca_cert_pem.as_str(),
            IssuedBy::Ca(ca) => pki.ca_pem(ca),
        };
        let issuer_der = der_of(issuer_pem);
        let issuer = parsed(&issuer_der);
        assert!(
            cert.verify_signature(Some(issuer.public_key())).is_ok(),
            "{name}"
        );
        assert_eq!(cert.issuer().as_raw(), issuer.subject().as_raw(), "{name}");
        assert!(cert.validity().not_after <= issuer.validity().not_after);
        assert_eq!(
            attr(&cert, &oids::OID_X509_COMMON_NAME),
            Some(spec.cn_on(node_name))
        );
        assert_eq!(
            attr(&cert, &oids::OID_X509_ORGANIZATION_NAME).as_deref(),
            spec.org
        );
        assert_eq!(attr(&cert, &oids::OID_X509_COUNTRY_NAME).unwrap(), "CN");
        assert_eq!(
            cert_sans(&cert),
            expected_sans(&inv, Some(node), spec),
            "{name}"
        );
        let (_, serves, client) = kinds.iter().find(|(n, ..)| n == name).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert_eq!(
            (eku.server_auth, eku.client_auth),
            (*serves, *client),
            "{name}"
        );
        assert!(
            !eku.any && !eku.code_signing && eku.other.is_empty(),
            "{name}"
        );
        assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
        let usage = cert.key_usage().unwrap().unwrap().value;
        assert!(
            usage.digital_signature() && usage.key_encipherment(),
            "{name}"
        );
        assert!(!usage.key_cert_sign() && !usage.crl_sign(), "{name}");
        assert!(key_matches(Path::new(name), &leaf.key_pem, &cert).unwrap());
        let (cert_file, key_file) = spec.pki_files();
        let saved = dir.path().join("pki").join(node_name);
        assert_eq!(
            fs_err::read_to_string(saved.join(cert_file)).unwrap(),
            leaf.cert_pem
        );
        assert_eq!(
            fs_err::read_to_string(saved.join(key_file)).unwrap(),
            leaf.key_pem
        );
    }
    // The names, spelled out for one node.
    let der = leaf_der(&pki, "m2", "kube-controller-manager");
    let kcm = parsed(&der);
    assert_eq!(cert_sans(&kcm), ["DNS:m2", "IP:10.0.0.2", "IP:127.0.0.1"]);
    assert_eq!(
        attr(&kcm, &oids::OID_X509_COMMON_NAME).unwrap(),
        "system:kube-controller-manager"
    );
    assert_eq!(
        attr(&kcm, &oids::OID_X509_ORGANIZATION_NAME).unwrap(),
        "system:kube-controller-manager"
    );
    let der = leaf_der(&pki, "m1", "kube-apiserver");
    let serving = cert_sans(&parsed(&der));
    for name in [
        "IP:10.0.0.1",
        "IP:10.254.0.1",
        "DNS:kubernetes.default.svc.cluster.local",
    ] {
        assert!(serving.contains(&name.to_string()), "{name}: {serving:?}");
    }
    let der = leaf_der(&pki, "m1", "kube-apiserver-kubelet-client");
    assert!(cert_sans(&parsed(&der)).is_empty());
    // The operator's certificate: of the root CA, no names, a client in system:masters.
    let admin_der = der_of(&pki.admin.as_ref().unwrap().cert_pem);
    let admin = parsed(&admin_der);
    assert_eq!(attr(&admin, &oids::OID_X509_COMMON_NAME).unwrap(), "admin");
    assert_eq!(
        attr(&admin, &oids::OID_X509_ORGANIZATION_NAME).unwrap(),
        "system:masters"
    );
    let eku = admin.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(cert_sans(&admin).is_empty());
    let ca_der = der_of(&pki.ca_cert_pem);
    assert!(admin
        .verify_signature(Some(parsed(&ca_der).public_key()))
        .is_ok());
}

/// The DER of `name`'s certificate on `node`.
fn leaf_der(pki: &Pki, node: &str, name: &'static str) -> Vec<u8> {
    der_of(&pki.leaves[&(node.to_string(), name)].cert_pem)
}

#[test]
fn a_saved_ca_and_its_key_are_kept_and_never_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let (first, _) = prepared(&inv);
    let pki_dir = dir.path().join("pki");
    let saved = files(&pki_dir);
    let (second, notes) = prepared(&inv);
    assert_eq!(notes, Vec::<String>::new());
    assert_eq!(files(&pki_dir), saved, "nothing rewritten");
    assert_eq!(
        (&second.ca_cert_pem, &second.ca_key_pem),
        (&first.ca_cert_pem, &first.ca_key_pem)
    );
    for (key, leaf) in &first.leaves {
        assert_eq!(second.leaves[key].cert_pem, leaf.cert_pem, "{key:?}");
    }
    // Half a CA is refused, never completed with a new half.
    let (cert, key) = (pki_dir.join("ca.pem"), pki_dir.join("ca-key.pem"));
    fs_err::remove_file(&cert).unwrap();
    assert_eq!(
        refused(&inv),
        format!(
            "`{}`: exists but its certificate `{}` does not",
            key.display(),
            cert.display()
        )
    );
    assert!(!cert.exists());
    fs_err::write(&cert, &first.ca_cert_pem).unwrap();
    fs_err::remove_file(&key).unwrap();
    assert_eq!(
        refused(&inv),
        format!(
            "`{}`: exists but its key `{}` does not",
            cert.display(),
            key.display()
        )
    );
    assert!(!key.exists());
    assert_eq!(fs_err::read_to_string(&cert).unwrap(), first.ca_cert_pem);
}

#[test]
fn the_cas_rows_declare_are_made_once_unless_the_root_serves() {
    use crate::component::{ETCD_CA, FRONT_PROXY_CA};
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &whole_plane());
    let (pki, notes) = prepared(&inv);
    let pki_dir = dir.path().join("pki");
    let made: Vec<&String> = notes
        .iter()
        .filter(|n| n.starts_with("generated the") && n.contains(" CA in "))
        .collect();
    assert_eq!(
        made,
        [
            &format!(
                "generated the front-proxy CA in `{}`",
                pki_dir.join("front-proxy-ca.pem").display()
            ),
            &format!(
                "generated the etcd CA in `{}`",
                pki_dir.join("etcd-ca.pem").display()
            ),
        ]
    );
    for (spec, cn) in [
        (&FRONT_PROXY_CA, "kubernetes-front-proxy-ca"),
        (&ETCD_CA, "kubernetes-etcd-ca"),
    ] {
        let pem = fs_err::read_to_string(pki_dir.join(spec.pki_files().0)).unwrap();
        assert_eq!(pki.ca_pem(spec), pem);
        let der = der_of(&pem);
        let cert = parsed(&der);
        assert_eq!(
            attr(&cert, &oids::OID_X509_COMMON_NAME).as_deref(),
            Some(cn)
        );
        assert!(self_signed(&cert));
        assert_eq!(files(&pki_dir)[&PathBuf::from(spec.pki_files().1)].0, 0o600);
    }
    let (_, again) = prepared(&inv);
    assert!(!again.iter().any(|n| n.contains(" CA in ")), "{again:?}");

    // With the root CA serving for etcd's, no etcd CA is made and the root issues etcd's
    // certificates.
    let dir = tempfile::tempdir().unwrap();
    let shared = whole_plane().replace("[pki]\n", "[pki]\netcd-ca = \"shared\"\n");
    let inv = inventory(dir.path(), &shared);
    let (pki, notes) = prepared(&inv);
    assert!(!notes.iter().any(|n| n.contains("etcd CA")), "{notes:?}");
    assert!(!dir.path().join("pki/etcd-ca.pem").exists());
    assert_eq!(
        pki.cas.keys().copied().collect::<Vec<_>>(),
        [&FRONT_PROXY_CA]
    );
    assert_eq!(pki.ca_pem(&ETCD_CA), pki.ca_cert_pem);
    let root_der = der_of(&pki.ca_cert_pem);
    let root = parsed(&root_der);
    let etcd_der = leaf_der(&pki, "m1", "etcd");
    assert!(parsed(&etcd_der)
        .verify_signature(Some(root.public_key()))
        .is_ok());
}

#[test]
fn a_ca_whose_key_does_not_match_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    prepared(&inv);
    let pki_dir = dir.path().join("pki");
    let key = pki_dir.join("ca-key.pem");
    let stranger = generate_key(KeyAlgorithm::EcdsaP256)
        .unwrap()
        .serialize_pem();
    write_private(&key, stranger.as_bytes()).unwrap();
    // A missing leaf would be issued, if the CA were accepted.
    fs_err::remove_file(pki_dir.join("m1/kube-controller-manager.pem")).unwrap();
    let before = files(&pki_dir);
    assert_eq!(
        refused(&inv),
        format!(
            "`{}`: does not match the CA certificate `{}`",
            key.display(),
            pki_dir.join("ca.pem").display()
        )
    );
    assert_eq!(files(&pki_dir), before);

    // The same for an imported CA, before pki/ exists.
    let other = tempfile::tempdir().unwrap();
    fs_err::copy(pki_dir.join("ca.pem"), other.path().join("root.pem")).unwrap();
    fs_err::write(other.path().join("root-key.pem"), &stranger).unwrap();
    let imported = inventory(
        other.path(),
        &INVENTORY.replace(
            "[pki]\n",
            "[pki]\nca-cert = \"root.pem\"\nca-key = \"root-key.pem\"\n",
        ),
    );
    assert_eq!(
        refused(&imported),
        format!(
            "`{}`: does not match the CA certificate `{}`",
            other.path().join("root-key.pem").display(),
            other.path().join("root.pem").display()
        )
    );
    assert!(!other.path().join("pki").exists());
}

#[test]
fn a_leaf_that_no_longer_fits_is_reissued_keeping_its_key_when_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let (first, _) = prepared(&inv);
    let leaf =
        |pki: &Pki, node: &str| pki.leaves[&(node.to_string(), "kube-controller-manager")].clone();
    // A new node IP: new SANs under the same key; the other node is untouched.
    let moved = inventory(dir.path(), &INVENTORY.replace("10.0.0.1", "10.0.0.11"));
    let (second, notes) = prepared(&moved);
    assert_eq!(
        notes,
        ["m1: reissued the kube-controller-manager certificate: its SANs changed from DNS:m1,IP:10.0.0.1,IP:127.0.0.1 to DNS:m1,IP:10.0.0.11,IP:127.0.0.1"]
    );
    assert_eq!(leaf(&second, "m1").key_pem, leaf(&first, "m1").key_pem);
    assert_ne!(leaf(&second, "m1").cert_pem, leaf(&first, "m1").cert_pem);
    assert_eq!(leaf(&second, "m2").cert_pem, leaf(&first, "m2").cert_pem);
    // Another key algorithm: every leaf gets a new key of it.
    let rsa = inventory(dir.path(), &INVENTORY.replace("ecdsa-p256", "rsa-2048"));
    let (third, notes) = prepared(&rsa);
    assert!(
        notes.contains(&"m2: reissued the kube-controller-manager certificate (new key): the key algorithm changed to rsa-2048".to_string()),
        "{notes:?}"
    );
    let der = der_of(&leaf(&third, "m2").cert_pem);
    assert_eq!(key_algorithm_of(&parsed(&der)), Some(KeyAlgorithm::Rsa2048));
    assert!(key_fits(&leaf(&third, "m2").key_pem, KeyAlgorithm::Rsa2048));
    // The CA keeps its key whatever the inventory now says.
    assert_eq!(third.ca_key_pem, first.ca_key_pem);
}

#[test]
fn renewal_reissues_under_the_same_names_with_the_same_or_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let (first, _) = prepared(&inv);
    let m1 = ("m1".to_string(), "kube-controller-manager");
    let m2 = ("m2".to_string(), "kube-controller-manager");
    let only_m1 = Renewal {
        nodes: Some(["m1".to_string()].into()),
        ..Renewal::default()
    };
    let (renewed_pki, notes) = renewed(&inv, &only_m1);
    assert_eq!(
        notes,
        ["m1: reissued the kube-controller-manager certificate: renewal was asked for"]
    );
    assert_eq!(renewed_pki.leaves[&m1].key_pem, first.leaves[&m1].key_pem);
    assert_ne!(renewed_pki.leaves[&m1].cert_pem, first.leaves[&m1].cert_pem);
    assert_eq!(renewed_pki.leaves[&m2].cert_pem, first.leaves[&m2].cert_pem);
    let rotating = Renewal {
        nodes: Some(Default::default()),
        rotate_keys: true,
        ..Renewal::default()
    };
    let (rotated, notes) = renewed(&inv, &rotating);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes
        .iter()
        .all(|n| n.ends_with("(new key): renewal was asked for")));
    assert_ne!(rotated.leaves[&m2].key_pem, first.leaves[&m2].key_pem);
    let unknown = Renewal {
        nodes: Some(["m9".to_string()].into()),
        ..Renewal::default()
    };
    let err = prepare(&inv, &unknown, &mut |_| {})
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("--renew m9: `m9` is not a node of `{}`", inv.path.display())
    );
}

#[test]
fn a_leaf_never_outlives_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(
        dir.path(),
        &INVENTORY.replace(
            "[pki]\n",
            "[pki]\nca-validity = \"30d\"\ncert-validity = \"365d\"\n",
        ),
    );
    let (pki, notes) = prepared(&inv);
    let ca_der = der_of(&pki.ca_cert_pem);
    let ca_end = parsed(&ca_der).validity().not_after;
    let der = leaf_der(&pki, "m1", "kube-controller-manager");
    assert_eq!(parsed(&der).validity().not_after, ca_end);
    let note = format!(
        "m1: certificate ends with the CA on {}",
        rfc3339(ca_end.to_datetime())
    );
    assert!(notes.contains(&note), "{notes:?}");
}

#[test]
fn a_ca_certificate_an_interrupted_first_build_left_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let (first, _) = prepared(&inv);
    let pki_dir = dir.path().join("pki");
    let tmp = pki_dir.join("ca.tmp-4242");
    fs_err::rename(pki_dir.join("ca.pem"), &tmp).unwrap();
    let (second, notes) = prepared(&inv);
    assert_eq!(
        notes,
        [format!(
            "recovered `{}` from `{}`, which an interrupted build wrote in full",
            pki_dir.join("ca.pem").display(),
            tmp.display()
        )]
    );
    assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
    assert!(!tmp.exists());
}

#[test]
fn a_service_account_key_is_kept_and_its_public_half_checked() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let (first, _) = prepared(&inv);
    let pair = first.service_account.unwrap();
    let public = dir.path().join("pki/sa.pub");
    fs_err::remove_file(&public).unwrap();
    let (second, notes) = prepared(&inv);
    assert_eq!(
        notes,
        [format!(
            "wrote `{}` from the existing key",
            public.display()
        )]
    );
    let again = second.service_account.unwrap();
    assert_eq!(
        (again.private_pem, again.public_pem.clone()),
        (pair.private_pem, pair.public_pem)
    );
    let stranger = generate_key(KeyAlgorithm::EcdsaP256)
        .unwrap()
        .public_key_pem();
    write_public(&public, stranger.as_bytes()).unwrap();
    assert_eq!(
        refused(&inv),
        format!(
            "`{}`: does not match `{}`",
            public.display(),
            dir.path().join("pki/sa.key").display()
        )
    );
    assert_eq!(fs_err::read_to_string(&public).unwrap(), stranger);
}

/// Run by [`private_files_are_0600_whatever_the_umask`] under `umask 000`.
#[test]
#[ignore = "run under umask 000 by private_files_are_0600_whatever_the_umask"]
fn files_written_under_the_umask_in_effect() {
    let dir = tempfile::tempdir().unwrap();
    // The umask is 000, or this test proves nothing.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "").unwrap();
    assert_eq!(
        fs_err::metadata(&probe).unwrap().permissions().mode() & 0o777,
        0o666
    );
    let inv = inventory(
        dir.path(),
        &whole_plane().replace("[pki]\n", "[pki]\nseal-secrets = true\n"),
    );
    prepared(&inv);
    let mut private = 0;
    for (path, (mode, _)) in files(&dir.path().join("pki")) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_dir = dir.path().join("pki").join(&path).is_dir();
        let want = if is_dir {
            0o700
        } else if name.ends_with("-key.pem")
            || ["sa.key", "seal.key", "encryption-key"].contains(&name.as_str())
        {
            private += 1;
            0o600
        } else {
            0o644
        };
        assert_eq!(mode, want, "{}", path.display());
    }
    assert_eq!(private, 22, "private files");
}

#[test]
fn private_files_are_0600_whatever_the_umask() {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pki::tests::files_written_under_the_umask_in_effect",
            "--include-ignored",
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("test result: ok. 1 passed"),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn private_files_replace_what_was_there_with_mode_0600_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    fs_err::write(&key, "old").unwrap();
    fs_err::set_permissions(&key, std::fs::Permissions::from_mode(0o666)).unwrap();
    write_private(&key, b"new").unwrap();
    assert_eq!(fs_err::read_to_string(&key).unwrap(), "new");
    assert_eq!(
        fs_err::metadata(&key).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // A leftover of a killed build with this process id is replaced, not kept.
    let leftover = key.with_extension(format!("tmp-{}", std::process::id()));
    fs_err::write(&leftover, "half").unwrap();
    write_public(&key, b"public").unwrap();
    assert_eq!(
        fs_err::metadata(&key).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    let names: Vec<_> = fs_err::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["key.pem"]);
}

#[test]
fn describe_reads_what_a_manifest_lists() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), INVENTORY);
    let (pki, _) = prepared(&inv);
    let pem_text = &pki.leaves[&("m1".to_string(), "kube-controller-manager")].cert_pem;
    let summary = describe(pem_text).unwrap();
    assert_eq!(
        summary.subject,
        "C=CN, O=system:kube-controller-manager, OU=opsnull, CN=system:kube-controller-manager"
    );
    assert_eq!(summary.issuer, "C=CN, OU=opsnull, CN=kubernetes-ca");
    assert_eq!(summary.sans, ["DNS:m1", "IP:10.0.0.1", "IP:127.0.0.1"]);
    let der = der_of(pem_text);
    assert_eq!(summary.serial, parsed(&der).raw_serial_as_string());
    assert!(summary.not_before < summary.not_after);
    assert!(describe("not a certificate").is_none());
}
