//! Leaf certificates: the names and subject each should carry, whether a kept one still
//! fits, and issuing a new one (keeping its key where it can).

use super::{
    attr, cert_sans, ensure_dir, generate_key, key_algorithm_of, key_fits, key_matches,
    parse_key_text, random_serial, read_key_text, read_pem, rfc3339, subject_dn, validity,
    write_private, write_public, Ca, CertSpec, CertificateParams, Error, ExtendedKeyUsagePurpose,
    FromDer, Inventory, IsCa, KeyAlgorithm, KeyPair, KeyUsagePurpose, Leaf, Names, Node,
    OffsetDateTime, Path, Result, San, SanType, Subject, X509Certificate,
};

/// The names a certificate of `spec` carries on `node`, in certificate order.
pub fn names(inv: &Inventory, node: Option<&Node>, spec: &CertSpec) -> Vec<San> {
    let Some(node) = node else { return Vec::new() };
    let mut names = match spec.names {
        Names::None => Vec::new(),
        Names::Node => crate::model::node_names(node),
        Names::Api => inv.api_names(node),
    };
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The SANs a certificate must carry, sorted, as [`cert_sans`] lists them.
pub(super) fn expected_sans(inv: &Inventory, node: Option<&Node>, spec: &CertSpec) -> Vec<String> {
    let mut sans: Vec<String> = names(inv, node, spec).iter().map(San::to_string).collect();
    sans.sort();
    sans.dedup();
    sans
}

pub(super) fn subject_matches(
    cert: &X509Certificate<'_>,
    spec: &CertSpec,
    node: Option<&Node>,
    subject: &Subject,
) -> bool {
    use x509_parser::oid_registry as oids;
    attr(cert, &oids::OID_X509_COMMON_NAME) == Some(cn_of(spec, node))
        && attr(cert, &oids::OID_X509_ORGANIZATION_NAME).as_deref() == spec.org
        && attr(cert, &oids::OID_X509_COUNTRY_NAME) == subject.country
        && attr(cert, &oids::OID_X509_STATE_OR_PROVINCE_NAME) == subject.state
        && attr(cert, &oids::OID_X509_LOCALITY_NAME) == subject.locality
        && attr(cert, &oids::OID_X509_ORGANIZATIONAL_UNIT) == subject.organizational_unit
}

/// Why a saved leaf certificate cannot be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LeafProblem {
    Unreadable,
    Issuer,
    Sans {
        have: Vec<String>,
        want: Vec<String>,
    },
    Subject,
    KeyMismatch,
    Algorithm(KeyAlgorithm),
    Expired(String),
    Renewal,
}

impl std::fmt::Display for LeafProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeafProblem::Unreadable => write!(f, "the saved certificate is unreadable"),
            LeafProblem::Issuer => write!(f, "its issuer is no longer the CA"),
            LeafProblem::Sans { have, want } => write!(
                f,
                "its SANs changed from {} to {}",
                have.join(","),
                want.join(",")
            ),
            LeafProblem::Subject => write!(f, "its subject no longer matches the inventory"),
            LeafProblem::KeyMismatch => write!(f, "the saved key does not match the certificate"),
            LeafProblem::Algorithm(a) => write!(f, "the key algorithm changed to {}", a.name()),
            LeafProblem::Expired(when) => write!(f, "it expired on {when}"),
            LeafProblem::Renewal => write!(f, "renewal was asked for"),
        }
    }
}

impl LeafProblem {
    /// Whether the saved key can sign the new certificate.
    pub(super) fn keeps_key(&self) -> bool {
        !matches!(
            self,
            LeafProblem::KeyMismatch | LeafProblem::Algorithm(_) | LeafProblem::Unreadable
        )
    }
}

/// The subject CN of `spec` on `node`, or of a cluster certificate (no node).
pub(super) fn cn_of(spec: &CertSpec, node: Option<&Node>) -> String {
    node.map_or_else(|| spec.cn.to_string(), |n| spec.cn_on(&n.name))
}

/// Why a saved leaf cannot be reused, or `None` when it can.
pub(super) fn leaf_problem(
    inv: &Inventory,
    node: Option<&Node>,
    spec: &CertSpec,
    ca: &Ca,
    cert_der: &[u8],
    key_path: &Path,
    key_pem: &str,
) -> Result<Option<LeafProblem>> {
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return Ok(Some(LeafProblem::Unreadable));
    };
    let ca_cert = ca.parsed();
    if cert.issuer().as_raw() != ca_cert.subject().as_raw()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Ok(Some(LeafProblem::Issuer));
    }
    let (have, want) = (cert_sans(&cert), expected_sans(inv, node, spec));
    if have != want {
        return Ok(Some(LeafProblem::Sans { have, want }));
    }
    if !subject_matches(&cert, spec, node, &inv.pki.subject) {
        return Ok(Some(LeafProblem::Subject));
    }
    if !key_matches(key_path, key_pem, &cert)? {
        return Ok(Some(LeafProblem::KeyMismatch));
    }
    if key_algorithm_of(&cert) != Some(inv.pki.key_algorithm) {
        return Ok(Some(LeafProblem::Algorithm(inv.pki.key_algorithm)));
    }
    if cert.validity().not_after.to_datetime() <= OffsetDateTime::now_utc() {
        return Ok(Some(LeafProblem::Expired(rfc3339(
            cert.validity().not_after.to_datetime(),
        ))));
    }
    Ok(None)
}

/// The key and certificate of `spec` on `node` (`pki/<node>/<name>.pem`), or with no
/// node one of the cluster's (`pki/<name>.pem`): reused while it fits, otherwise issued
/// by `ca` and reported. `renewing` reissues a fitting one under the same names, with a
/// new key when it holds `true`.
pub(super) fn leaf(
    inv: &Inventory,
    node: Option<&Node>,
    spec: &CertSpec,
    ca: &Ca,
    renewing: Option<bool>,
    say: &mut dyn FnMut(String),
) -> Result<Leaf> {
    let dir = match node {
        Some(node) => inv.pki.dir.join(&node.name),
        None => inv.pki.dir.clone(),
    };
    let (cert_name, key_name) = spec.pki_files();
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    let whose = match node {
        Some(node) => format!("{}: ", node.name),
        None => String::new(),
    };
    let what = match node {
        Some(_) => format!("{} certificate", spec.name),
        None => format!("{} certificate `{}`", spec.name, cert_path.display()),
    };

    let saved_key = if key_path.exists() {
        Some(read_key_text(&key_path)?)
    } else {
        None
    };
    let problem = match (&saved_key, cert_path.exists()) {
        (Some(key_pem), true) => {
            let (cert_pem, cert_der) = read_pem(&cert_path, &["CERTIFICATE"])?;
            let found = leaf_problem(inv, node, spec, ca, &cert_der, &key_path, key_pem)?;
            match (found, renewing.is_some()) {
                (None, false) => return Ok(Leaf { cert_pem, key_pem: key_pem.clone() }),
                (None, true) => Some(LeafProblem::Renewal),
                (Some(LeafProblem::Sans { have, want }), true) => {
                    return Err(Error::input(
                        format!("`{}`", cert_path.display()),
                        format!("renewing the {what} of `{}` would change its SANs from {} to {}", node.map_or("the cluster", |n| n.name.as_str()), have.join(","), want.join(",")),
                    )
                    .with_hint("renewal keeps a certificate's names; build without --renew to reissue it with the inventory's names"))
                }
                (Some(problem), _) => Some(problem),
            }
        }
        _ => None,
    };

    let keep_key = saved_key.filter(|pem| {
        key_fits(pem, inv.pki.key_algorithm)
            && renewing != Some(true)
            && problem.as_ref().is_none_or(LeafProblem::keeps_key)
    });
    let kept_key = keep_key.is_some();
    let (key_pem, key) = kept_or_new_key(&key_path, keep_key, inv.pki.key_algorithm)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = subject_dn(&inv.pki.subject, spec.org, &cn_of(spec, node));
    params.subject_alt_names = names(inv, node, spec)
        .into_iter()
        .map(|name| match name {
            San::Ip(ip) => Ok(SanType::IpAddress(ip)),
            San::Dns(dns) => dns
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| Error::crypto(format!("the name `{dns}`"), e)),
        })
        .collect::<Result<_>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = [
        (spec.server, ExtendedKeyUsagePurpose::ServerAuth),
        (spec.client, ExtendedKeyUsagePurpose::ClientAuth),
    ]
    .into_iter()
    .filter_map(|(on, usage)| on.then_some(usage))
    .collect();
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    validity(&mut params, inv.pki.cert_validity)?;
    // A leaf must not outlive its CA.
    let ca_end = ca.parsed().validity().not_after.to_datetime();
    if params.not_after > ca_end {
        if params.not_after - ca_end > time::Duration::days(1) {
            say(format!(
                "{whose}certificate ends with the CA on {}",
                rfc3339(ca_end)
            ));
        }
        params.not_after = ca_end;
    }
    let cert = params
        .signed_by(&key, &ca.issuer()?)
        .map_err(|e| Error::crypto(format!("signing the {what}"), e))?;

    ensure_dir(&dir)?;
    write_private(&key_path, key_pem.as_bytes())?;
    write_public(&cert_path, cert.pem().as_bytes())?;
    match problem {
        Some(problem) => {
            let key_note = if kept_key { "" } else { " (new key)" };
            say(format!("{whose}reissued the {what}{key_note}: {problem}"));
        }
        None if node.is_none() => say(format!("issued the {what}")),
        None => {
            let article = if spec.name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            say(format!("{whose}issued {article} {what}"));
        }
    }
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem,
    })
}

/// The saved key `kept` (read from `path`), parsed so it can sign, or a new one.
pub(super) fn kept_or_new_key(
    path: &Path,
    kept: Option<String>,
    alg: KeyAlgorithm,
) -> Result<(String, KeyPair)> {
    match kept {
        Some(pem) => {
            let key = parse_key_text(path, &pem)?;
            Ok((pem, key))
        }
        None => {
            let key = generate_key(alg)?;
            Ok((key.serialize_pem(), key))
        }
    }
}
