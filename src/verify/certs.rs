//! The certificates and keys a bundle carries: each CA, the leaf certificates the
//! component rows list (names, usages, issuer, expiry), and the keys that must match.

use super::{
    component, in_bundle, keys, pki, BTreeMap, CertSpec, Check, Component, FromDer, IssuedBy,
    KeyPair, Manifest, Names, OffsetDateTime, X509Certificate,
};

/// Every PEM block in `bytes`, wherever it starts: one that cannot be read does not hide
/// the ones after it.
pub(super) fn pem_blocks(bytes: &[u8]) -> Vec<pem::Pem> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(BEGIN.len()).position(|w| w == BEGIN) {
        let start = at + found;
        if let Ok(block) = pem::parse(&bytes[start..]) {
            blocks.push(block);
        }
        at = start + BEGIN.len();
    }
    blocks
}

pub(super) const CERT_CA: &str = "rootfs/etc/kubernetes/cert/ca.pem";

pub(super) const SIGNER_CERT: &str = "rootfs/etc/kubernetes/cert/csr-signer.pem";

pub(super) const SIGNER_KEY: &str = "rootfs/etc/kubernetes/cert/csr-signer-key.pem";

pub(super) const CERT_CA_KEY: &str = "rootfs/etc/kubernetes/cert/ca-key.pem";

pub(super) const SA_KEY: &str = "rootfs/etc/kubernetes/cert/sa.key";

pub(super) const SA_PUB: &str = "rootfs/etc/kubernetes/cert/sa.pub";

pub(super) const FRONT_PROXY_CA: &str = "rootfs/etc/kubernetes/cert/front-proxy-ca.pem";

pub(super) const CLIENT_CA: &str = "rootfs/etc/kubernetes/cert/client-ca.pem";

pub(super) fn human(d: time::Duration) -> String {
    let days = d.whole_days();
    if days * 86_400 == d.whole_seconds() {
        format!("{days}d")
    } else {
        format!("{}h", d.whole_hours())
    }
}

/// The names certificates must carry, as [`pki::cert_sans`] writes them.
#[derive(Default)]
pub(super) struct ExpectedNames {
    /// The node's name, for identities that name it.
    pub(super) node_name: String,
    /// 127.0.0.1, the node IP and the node name: every serving certificate with the
    /// node's names.
    pub(super) node: Vec<String>,
    /// What the certificates with more than the node's names must carry, by the name of
    /// the component whose `names` check gave them.
    pub(super) wider: BTreeMap<&'static str, Vec<String>>,
}

/// The name of the component that serves the Kubernetes API, for messages.
fn api_name() -> &'static str {
    component::all()
        .into_iter()
        .find(|c| c.serves_api)
        .map_or("the API server", |c| c.name)
}

/// The file name of a bundle or node path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Check<'_> {
    /// The names the node's certificates must carry, from the manifest: the node's own
    /// and those the `names` checks of the bundle's components give. A value the manifest
    /// gives that could not have come from a valid inventory is a finding.
    pub(super) fn expected_names(
        &mut self,
        manifest: &Manifest,
        components: &[&'static Component],
    ) -> ExpectedNames {
        let mut names = ExpectedNames {
            node_name: manifest.node.clone(),
            ..ExpectedNames::default()
        };
        match manifest.node_ip.parse::<std::net::IpAddr>() {
            Ok(ip) => names.node.push(format!("IP:{ip}")),
            Err(_) => self.find(
                "manifest.json",
                format!("node-ip `{}` is not an IP address", manifest.node_ip),
            ),
        }
        names.node.insert(0, "IP:127.0.0.1".to_string());
        names.node.push(format!("DNS:{}", manifest.node));
        for c in components {
            if let Some(check) = c.verify.names {
                let wider = check(self, manifest, &names.node);
                names.wider.insert(c.name, wider);
            }
        }
        names
    }

    pub(super) fn pem_der(&mut self, path: &str) -> Option<Vec<u8>> {
        let text = self.text(path)?;
        match pem::parse(&text) {
            Ok(p) if p.tag() == "CERTIFICATE" => Some(p.into_contents()),
            _ => {
                self.find(path, "is not a PEM certificate");
                None
            }
        }
    }

    pub(super) fn key(&mut self, path: &str) -> Option<KeyPair> {
        let text = self.text(path)?;
        match KeyPair::from_pem(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                self.find(path, format!("is not a usable private key ({e})"));
                None
            }
        }
    }

    /// A bundled CA certificate at `path`, checked (a CA, within its validity), as DER.
    pub(super) fn ca_cert(
        &mut self,
        path: &str,
        now: OffsetDateTime,
        warn: time::Duration,
    ) -> Option<Vec<u8>> {
        let Some(ca_der) = self.pem_der(path) else {
            if !self.bundle.files.contains_key(path) {
                self.find(path, "is missing");
            }
            return None;
        };
        let Ok((_, ca)) = X509Certificate::from_der(&ca_der) else {
            self.find(path, "is not an X.509 certificate");
            return None;
        };
        if !ca
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
        {
            self.find(path, "is not a CA certificate");
        }
        self.expiry(path, &ca, now, warn);
        Some(ca_der)
    }

    /// The aggregation layer's CA, checked, as DER. It must not be the root CA: every
    /// client certificate the root issues could then act as the front proxy and name any
    /// user in request headers.
    pub(super) fn front_proxy_ca(
        &mut self,
        root_der: &[u8],
        now: OffsetDateTime,
        warn: time::Duration,
    ) -> Option<Vec<u8>> {
        let der = self.ca_cert(FRONT_PROXY_CA, now, warn)?;
        let same_key = match (
            X509Certificate::from_der(&der),
            X509Certificate::from_der(root_der),
        ) {
            (Ok((_, fp)), Ok((_, root))) => fp.public_key().raw == root.public_key().raw,
            _ => false,
        };
        if same_key {
            self.find(
                FRONT_PROXY_CA,
                "is the root CA (same key as ca.pem): every client certificate it issues could act as the front proxy",
            );
        }
        Some(der)
    }

    /// The API server's `--client-ca-file`: the bundled CA, then the CSR signing CA when
    /// the bundle carries one, then at most the signing CA that one replaced (another
    /// CA), and nothing else.
    pub(super) fn client_ca(&mut self, ca_der: &[u8]) {
        let Some(text) = self.required(CLIENT_CA) else {
            return;
        };
        let blocks = match pem::parse_many(&text) {
            Ok(blocks) => blocks,
            Err(e) => {
                self.find(CLIENT_CA, format!("is not PEM ({e})"));
                return;
            }
        };
        let have: Vec<Vec<u8>> = blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.contents().to_vec())
            .collect();
        if have.len() != blocks.len() {
            self.find(CLIENT_CA, "holds PEM blocks that are not certificates");
        }
        let mut want = vec![ca_der.to_vec()];
        let signer = self.bundle.files.contains_key(SIGNER_CERT);
        if signer {
            match self.pem_der(SIGNER_CERT) {
                Some(der) => want.push(der),
                None => return,
            }
        }
        // The previous signing CA, trusted during a replacement's roll-out.
        let previous_ok = |der: &Vec<u8>| {
            !want.contains(der)
                && X509Certificate::from_der(der).is_ok_and(|(_, c)| {
                    c.basic_constraints()
                        .ok()
                        .flatten()
                        .is_some_and(|bc| bc.value.ca)
                })
        };
        let previous = (signer
            && have.len() == want.len() + 1
            && have[..want.len()] == want[..]
            && previous_ok(&have[want.len()]))
        .then(|| &have[want.len()]);
        if let Some(der) = previous {
            let name = X509Certificate::from_der(der)
                .ok()
                .and_then(|(_, c)| pki::attr(&c, &x509_parser::oid_registry::OID_X509_COMMON_NAME))
                .unwrap_or_default();
            self.warn(
                CLIENT_CA,
                format!("also trusts `{name}`, the signing CA csr-signer.pem replaced: {} accepts what its key signed until a build with `--drop-previous-csr-signer` is installed", api_name()),
            );
        }
        if have != want && previous.is_none() {
            self.find(
                CLIENT_CA,
                if signer {
                    "must hold ca.pem, then csr-signer.pem, then at most the signing CA it replaced, and nothing else"
                } else {
                    "must hold ca.pem alone (the bundle has no csr-signer.pem)"
                },
            );
        }
    }

    /// The bundled CA, checked, as DER.
    pub(super) fn ca(&mut self, now: OffsetDateTime, warn: time::Duration) -> Option<Vec<u8>> {
        let ca_der = self.ca_cert(CERT_CA, now, warn)?;
        let Ok((_, ca)) = X509Certificate::from_der(&ca_der) else {
            return None;
        };
        if let Some(key) = self.key(CERT_CA_KEY) {
            if pki::spki_matches(&key, &ca) {
                // It ships only for a unit that signs with it (`csr-signing = "ca"`,
                // `service-account-key = "ca"`), never beside a signing CA of its own.
                let signer = self.bundle.files.contains_key(SIGNER_CERT)
                    || self.bundle.files.contains_key(SIGNER_KEY);
                if signer || !self.units_name(component::paths::CA_KEY) {
                    self.find(
                        CERT_CA_KEY,
                        if signer {
                            "is the root CA key, in a bundle whose CSRs are signed by csr-signer.pem: nothing here needs it, and whoever reads it can sign any certificate the cluster trusts"
                        } else {
                            "is the root CA key, which no unit of this bundle uses: whoever reads it can sign any certificate the cluster trusts"
                        },
                    );
                } else {
                    self.warn(
                        CERT_CA_KEY,
                        "is the root CA key: whoever reads it on this master can sign any certificate the cluster trusts; build with `[pki] csr-signing = \"signer\"` to keep it on the build host",
                    );
                }
            } else {
                self.find(CERT_CA_KEY, "does not match ca.pem");
            }
        }
        self.csr_signer(&ca, now, warn);
        Some(ca_der)
    }

    /// Private keys of CAs, under any name: every PEM private key in every file verify
    /// reads, against every CA certificate in the bundle. Only the CSR signing CA's key
    /// belongs in a bundle (as csr-signer-key.pem); the root CA's at ca-key.pem is
    /// judged by [`Check::ca`]. An encrypted key cannot be told apart, so it is a finding
    /// too: kube-bundle never writes one.
    pub(super) fn ca_keys(&mut self) {
        let mut cas: Vec<(keys::PublicHalf, String)> = Vec::new();
        // (file, the public half, or `None` for an encrypted key)
        let mut private: Vec<(String, Option<Option<keys::PublicHalf>>)> = Vec::new();
        for (path, entry) in &self.bundle.files {
            let Some(bytes) = &entry.bytes else { continue };
            for block in pem_blocks(bytes) {
                if block.tag() == "CERTIFICATE" {
                    let Ok((_, cert)) = X509Certificate::from_der(block.contents()) else {
                        continue;
                    };
                    let is_ca = cert
                        .basic_constraints()
                        .ok()
                        .flatten()
                        .is_some_and(|bc| bc.value.ca);
                    if let (true, Some(public)) = (is_ca, keys::of_cert(&cert)) {
                        if !cas.iter().any(|(p, _)| *p == public) {
                            cas.push((public, path.clone()));
                        }
                    }
                } else if block.tag().ends_with("PRIVATE KEY") {
                    let encrypted = block.tag().starts_with("ENCRYPTED")
                        || block.headers().get("Proc-Type").is_some();
                    let public = (!encrypted).then(|| keys::of_private_block(&block));
                    private.push((path.clone(), public));
                }
            }
        }
        let own_key = |cert: &str| {
            self.bundle
                .text(cert)
                .and_then(|t| pem::parse(t).ok())
                .and_then(|b| {
                    X509Certificate::from_der(b.contents())
                        .ok()
                        .map(|(_, c)| keys::of_cert(&c))
                })
                .flatten()
        };
        let (root, signer) = (own_key(CERT_CA), own_key(SIGNER_CERT));
        let mut found = Vec::new();
        for (path, public) in private {
            let public = match public {
                None => {
                    found.push((path, "holds an encrypted private key, which kube-bundle never writes: verify cannot tell whose it is".to_string()));
                    continue;
                }
                Some(None) => continue,
                Some(Some(public)) => public,
            };
            let Some((_, ca_file)) = cas.iter().find(|(p, _)| *p == public) else {
                continue;
            };
            if (path == SIGNER_KEY && signer.as_ref() == Some(&public))
                || (path == CERT_CA_KEY && root.as_ref() == Some(&public))
            {
                continue;
            }
            let ca = ca_file.rsplit('/').next().unwrap_or(ca_file);
            found.push((
                path,
                format!("holds the private key of the CA in {ca}: with it, anyone who reads this file can sign certificates that CA's trusters accept; a CA key stays on the build host"),
            ));
        }
        for (path, message) in found {
            self.find(&path, message);
        }
    }

    /// The CSR signing CA, when the bundle carries one: a self-signed CA other than the
    /// bundled root, with its key.
    pub(super) fn csr_signer(
        &mut self,
        ca: &X509Certificate<'_>,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        if !self.bundle.files.contains_key(SIGNER_CERT)
            && !self.bundle.files.contains_key(SIGNER_KEY)
        {
            return;
        }
        let Some(der) = self
            .required(SIGNER_CERT)
            .and_then(|_| self.pem_der(SIGNER_CERT))
        else {
            return;
        };
        let Ok((_, signer)) = X509Certificate::from_der(&der) else {
            self.find(SIGNER_CERT, "is not an X.509 certificate");
            return;
        };
        if !signer
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
        {
            self.find(
                SIGNER_CERT,
                "is not a CA certificate, so it cannot sign CSRs",
            );
        }
        // Its own trust anchor, in client-ca.pem only: what its key signs must chain to
        // nothing a root-only truster (a kubeconfig, a component without one) accepts.
        if signer.public_key().raw == ca.public_key().raw {
            self.find(SIGNER_CERT, "has the root CA's key (ca.pem)");
        } else if signer.issuer().as_raw() == ca.subject().as_raw()
            && signer.verify_signature(Some(ca.public_key())).is_ok()
        {
            let trusters: Vec<&str> = component::all()
                .into_iter()
                .filter(|c| !c.kubeconfig)
                .map(|c| c.name)
                .collect();
            self.find(
                SIGNER_CERT,
                format!("is issued by the bundled CA (ca.pem), so everything that trusts ca.pem (kubeconfigs, {}) accepts what its key signs; build again: the signing CA is replaced by a self-signed one", trusters.join(", ")),
            );
        } else if !pki::self_signed(&signer) {
            self.find(
                SIGNER_CERT,
                "is not self-signed: what its key signs would chain to its issuer",
            );
        }
        self.expiry(SIGNER_CERT, &signer, now, warn);
        if !self.bundle.files.contains_key(SIGNER_KEY) {
            self.find(SIGNER_KEY, "is missing while csr-signer.pem is present");
        } else if let Some(key) = self.key(SIGNER_KEY) {
            if !pki::spki_matches(&key, &signer) {
                self.find(SIGNER_KEY, "does not match csr-signer.pem");
            }
        }
    }

    /// One certificate a component carries, by its spec: chain to the CA that issues it,
    /// validity, key, subject, usages and names.
    pub(super) fn leaf(
        &mut self,
        owner: &Component,
        spec: &CertSpec,
        issuer_der: Option<&Vec<u8>>,
        names: &ExpectedNames,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        let cert_file = in_bundle(&spec.cert_path());
        let key_file = in_bundle(&spec.key_path());
        let Some(leaf_der) = self.pem_der(&cert_file) else {
            if !self.bundle.files.contains_key(&cert_file) {
                self.find(&cert_file, "is missing");
            }
            return;
        };
        let Ok((_, leaf)) = X509Certificate::from_der(&leaf_der) else {
            self.find(&cert_file, "is not an X.509 certificate");
            return;
        };
        let (cert_name, _) = spec.pki_files();
        if let Some(Ok((_, ca))) = issuer_der.map(|der| X509Certificate::from_der(der)) {
            if leaf.issuer().as_raw() != ca.subject().as_raw()
                || leaf.verify_signature(Some(ca.public_key())).is_err()
            {
                self.find(
                    &cert_file,
                    match spec.issued_by {
                        IssuedBy::Root => "does not chain to the bundled CA".to_string(),
                        IssuedBy::Ca(ca) => format!(
                            "does not chain to the bundled {} ({})",
                            ca.what,
                            ca.pki_files().0
                        ),
                    },
                );
            }
        }
        self.expiry(&cert_file, &leaf, now, warn);
        if !self.bundle.files.contains_key(&key_file) {
            self.find(
                &key_file,
                format!("is missing while {cert_name} is present"),
            );
        } else if let Some(key) = self.key(&key_file) {
            if !pki::spki_matches(&key, &leaf) {
                self.find(&key_file, format!("does not match {cert_name}"));
            }
        }
        self.subject(&cert_file, spec, &names.node_name, &leaf);
        let ku = leaf
            .key_usage()
            .ok()
            .flatten()
            .map(|k| (k.value.digital_signature(), k.value.key_encipherment()));
        if ku != Some((true, true)) {
            self.find(
                &cert_file,
                "key usage must include digitalSignature and keyEncipherment",
            );
        }
        let eku = leaf.extended_key_usage().ok().flatten().map(|e| {
            let e = &e.value;
            let others = e.any
                || e.code_signing
                || e.email_protection
                || e.time_stamping
                || e.ocsp_signing
                || !e.other.is_empty();
            (e.server_auth, e.client_auth, others)
        });
        if eku != Some((spec.server, spec.client, false)) {
            let want: Vec<&str> = [(spec.server, "serverAuth"), (spec.client, "clientAuth")]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect();
            self.find(
                &cert_file,
                format!("extended key usage must be exactly {}", want.join(" and ")),
            );
        }
        let sans = pki::cert_sans(&leaf);
        let wanted = match spec.names {
            Names::None => return,
            Names::Node => &names.node,
            Names::Api => {
                for san in sans.iter().filter(|s| s.ends_with('.')) {
                    self.find(
                        &cert_file,
                        format!("SAN {san} ends with a dot, which clients do not match"),
                    );
                }
                names.wider.get(owner.name).unwrap_or(&names.node)
            }
        };
        for want in wanted {
            if !sans.contains(want) {
                self.find(
                    &cert_file,
                    format!("SANs lack {want} (has {})", sans.join(",")),
                );
            }
        }
    }

    /// Subject CN and O exactly as the spec gives them: one O, or none at all.
    pub(super) fn subject(
        &mut self,
        cert_file: &str,
        spec: &CertSpec,
        node: &str,
        leaf: &X509Certificate<'_>,
    ) {
        use x509_parser::oid_registry as oids;
        let want_cn = spec.cn_on(node);
        let cn = pki::attr(leaf, &oids::OID_X509_COMMON_NAME);
        let orgs: Vec<String> = leaf
            .subject()
            .iter_by_oid(&oids::OID_X509_ORGANIZATION_NAME)
            .map(|a| a.as_str().map_or_else(|_| "?".to_string(), str::to_string))
            .collect();
        let want_orgs: Vec<String> = spec
            .org
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        if cn.as_ref() == Some(&want_cn) && orgs == want_orgs {
            return;
        }
        let found = format!(
            "found CN `{}` O `{}`",
            cn.unwrap_or_default(),
            orgs.join("`, `")
        );
        let message = match spec.org {
            Some(org) if org == want_cn => {
                format!("subject CN and O must be `{want_cn}`, {found}")
            }
            Some(org) => format!("subject must be CN `{want_cn}` O `{org}`, {found}"),
            None => format!("subject must be CN `{want_cn}` with no O, {found}"),
        };
        self.find(cert_file, message);
    }

    /// The files a component carries for a server outside the bundle: a certificate it
    /// takes from another component when that one is built too ([`Component::certs_from`]),
    /// whose place it takes when the bundle does not carry the other (a server elsewhere),
    /// with the CA that server's own CA would be. Checked when any of them is present:
    /// certificates within their validity and a key that matches.
    pub(super) fn outside_pairs(
        &mut self,
        components: &[&'static Component],
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        for row in component::all() {
            for (server, spec) in row.certs_from {
                if components.iter().any(|c| c.name == *server) {
                    continue;
                }
                let IssuedBy::Ca(ca) = spec.issued_by else {
                    continue;
                };
                let ca = in_bundle(ca.node_path);
                let cert = in_bundle(&spec.cert_path());
                let key = in_bundle(&spec.key_path());
                self.outside_pair(server, &ca, &cert, &key, now, warn);
            }
        }
    }

    fn outside_pair(
        &mut self,
        server: &str,
        ca: &str,
        cert: &str,
        key: &str,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        if ![ca, cert, key]
            .iter()
            .any(|p| self.bundle.files.contains_key(*p))
        {
            return;
        }
        for path in [ca, cert] {
            if !self.bundle.files.contains_key(path) {
                self.find(
                    path,
                    format!("is missing while the other {server} files are present"),
                );
            } else if let Some(der) = self.pem_der(path) {
                match X509Certificate::from_der(&der) {
                    Ok((_, c)) => self.expiry(path, &c, now, warn),
                    Err(_) => self.find(path, "is not an X.509 certificate"),
                }
            }
        }
        let Some(key_text) = self.required(key) else {
            return;
        };
        let Some(public) = keys::of_private_pem(&key_text) else {
            self.find(key, "is not a PEM private key (PKCS#8, RSA or EC)");
            return;
        };
        let Some(der) = self
            .bundle
            .files
            .contains_key(cert)
            .then(|| self.pem_der(cert))
            .flatten()
        else {
            return;
        };
        if let Ok((_, c)) = X509Certificate::from_der(&der) {
            if keys::of_cert(&c).as_ref() != Some(&public) {
                self.find(key, format!("does not match {}", file_name(cert)));
            }
        }
    }

    pub(super) fn service_account(&mut self) {
        if self.bundle.files.contains_key(SA_KEY) || self.bundle.files.contains_key(SA_PUB) {
            match (self.key(SA_KEY), self.text(SA_PUB)) {
                (Some(key), Some(public)) if key.public_key_pem() == public => {}
                (Some(_), Some(_)) => self.find(SA_PUB, "is not the public half of sa.key"),
                (None, _) if !self.bundle.files.contains_key(SA_KEY) => {
                    self.find(SA_KEY, "is missing while sa.pub is present");
                }
                (_, None) => self.find(SA_PUB, "is missing while sa.key is present"),
                _ => {}
            }
        }
    }

    pub(super) fn expiry(
        &mut self,
        path: &str,
        cert: &X509Certificate<'_>,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        let start = cert.validity().not_before.to_datetime();
        let end = cert.validity().not_after.to_datetime();
        if start > now {
            self.find(path, format!("is not valid until {}", pki::rfc3339(start)));
        }
        if end <= now {
            self.find(path, format!("expired on {}", pki::rfc3339(end)));
        } else if end <= now + warn {
            self.find(
                path,
                format!("expires on {}, within {}", pki::rfc3339(end), human(warn)),
            );
        }
    }
}
