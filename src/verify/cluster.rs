//! Checks across the bundles of one build: shared keys and the flags every master
//! shares. A component's own checks across bundles are its row's (`verify.cluster`).

use super::{
    component, escape, in_bundle, shared_flags, Bundle, Finding, Seen, CERT_CA, CLIENT_CA,
    FRONT_PROXY_CA, SA_KEY, SIGNER_CERT,
};

const ENCRYPTION_CONFIG: &str = "rootfs/etc/kubernetes/encryption-config.yaml";

/// Every master must trust the same CAs (the components' own too), sign tokens with the
/// same key (sa.pub is checked against sa.key in each bundle) and encrypt Secrets with the
/// same key.
pub(super) fn shared_keys(bundles: &[Bundle], findings: &mut Vec<Finding>) {
    let Some(first) = bundles.first() else { return };
    let mut shared: Vec<(String, &str)> = [
        (CERT_CA, "CA"),
        (SA_KEY, "service-account key"),
        (SIGNER_CERT, "CSR signing CA"),
        (FRONT_PROXY_CA, "front-proxy CA"),
        (CLIENT_CA, "client CA bundle"),
        (ENCRYPTION_CONFIG, "encryption config"),
    ]
    .map(|(path, what)| (path.to_string(), what))
    .to_vec();
    shared.extend(
        component::CAS
            .into_iter()
            .filter(|ca| **ca != component::FRONT_PROXY_CA)
            .map(|ca| (in_bundle(ca.node_path), ca.what)),
    );
    for (path, what) in &shared {
        let path = path.as_str();
        let reference = first.files.get(path).map(|e| &e.sha256);
        for other in &bundles[1..] {
            let here = other.files.get(path).map(|e| &e.sha256);
            let message = match (here, reference) {
                (a, b) if a == b => continue,
                (None, Some(_)) => format!(
                    "is missing, but {} carries the {what}: every master must share it",
                    first.name
                ),
                (Some(_), None) => format!(
                    "the {what} is not in {}: every master must share it",
                    first.name
                ),
                _ => format!(
                    "the {what} differs from {}'s: every master must share it",
                    first.name
                ),
            };
            findings.push(Finding {
                bundle: other.name.clone(),
                file: path.to_string(),
                message,
            });
        }
    }
}

/// Every master gives [`shared_flags`] the same values: one service range, one token
/// issuer. Findings name the first bundle that carries the component.
pub(super) fn same_flags(seen: &[(&Bundle, Seen)], findings: &mut Vec<Finding>) {
    for (c, flag) in shared_flags() {
        let unit = in_bundle(&c.unit_path());
        let values: Vec<(&Bundle, &str)> = seen
            .iter()
            .flat_map(|(b, s)| {
                s.shared
                    .iter()
                    .filter(|(file, f, _)| *file == unit && *f == flag)
                    .map(move |(_, _, v)| (*b, v.as_str()))
            })
            .collect();
        let Some((first, reference)) = values.first() else {
            continue;
        };
        for (bundle, value) in &values[1..] {
            if value != reference {
                findings.push(Finding {
                    bundle: bundle.name.clone(),
                    file: unit.clone(),
                    message: escape(&format!(
                        "--{flag} is `{value}`, but `{reference}` in {}: every master must use the same",
                        first.name
                    )),
                });
            }
        }
    }
}
