//! `kube-bundle certs`: what is in `pki/` and when it expires, like kubeadm's
//! `certs check-expiration`. Read-only; it never issues or renews anything.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::component::{self, ADMIN};
use crate::error::{Error, Result};
use crate::model::Inventory;
use crate::pki;

#[derive(Debug, Serialize)]
pub struct CertRow {
    pub name: String,
    pub node: Option<String>,
    pub path: String,
    /// RFC 3339; `None` for a bare key or a missing file.
    pub expires: Option<String>,
    pub residual: Option<String>,
    pub issuer: Option<String>,
    /// Its own issuer: a trust anchor (the CAs).
    pub self_signed: bool,
    pub key: String,
    /// Expires within the warning window (or has expired, or is missing).
    pub attention: bool,
}

pub fn list(inv: &Inventory, warn_within: Duration) -> Result<Vec<CertRow>> {
    let now = OffsetDateTime::now_utc();
    let warn = warn_window(now, warn_within)?;
    let ca_path = match &inv.pki.import_ca {
        Some((cert, _)) => cert.clone(),
        None => inv.pki.dir.join("ca.pem"),
    };
    let mut rows = vec![cert_row("ca", None, &ca_path, now, warn)?];
    if inv.pki.service_account_key == crate::model::ServiceAccountKey::Dedicated {
        let path = inv.pki.dir.join("sa.pub");
        let key = fs_err::read_to_string(&path)
            .ok()
            .and_then(|t| pem::parse(t).ok())
            .and_then(|p| {
                SubjectPublicKeyInfo::from_der(p.contents())
                    .ok()
                    .map(|(_, spki)| key_name(&spki))
            });
        rows.push(CertRow {
            name: "service-account key".into(),
            node: None,
            path: path.display().to_string(),
            expires: None,
            residual: None,
            issuer: None,
            self_signed: false,
            attention: key.is_none(),
            key: key.unwrap_or_else(|| "missing".into()),
        });
    }
    if inv.pki.csr_signing == crate::model::CsrSigning::Signer
        && inv.components.iter().any(|s| s.component.signs_csrs)
    {
        let files = pki::SignerFiles::of(inv);
        rows.push(cert_row("csr-signer", None, &files.cert, now, warn)?);
        // Trusted by the API server until `build --drop-previous-csr-signer`.
        if files.previous.exists() {
            let mut row = cert_row("csr-signer-previous", None, &files.previous, now, warn)?;
            // Dropped, not renewed: an expired one needs no attention.
            row.attention = false;
            rows.push(row);
        }
    }
    for ca in component::cas(inv) {
        if !ca.root_serves(&inv.pki) {
            let path = inv.pki.dir.join(ca.pki_files().0);
            rows.push(cert_row(ca.stem, None, &path, now, warn)?);
        }
    }
    if inv.serves_api() {
        let path = inv.pki.dir.join(ADMIN.pki_files().0);
        rows.push(cert_row(ADMIN.name, None, &path, now, warn)?);
    }
    for node in &inv.nodes {
        for settings in &inv.components {
            // With the certificates a row carries because another row is built.
            for spec in inv.certs(settings.component) {
                let path = inv.pki.dir.join(&node.name).join(spec.pki_files().0);
                rows.push(cert_row(spec.name, Some(&node.name), &path, now, warn)?);
            }
        }
    }
    Ok(rows)
}

fn key_name(spki: &SubjectPublicKeyInfo<'_>) -> String {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => format!("ecdsa-p{}", point.key_size()),
        _ => "other".into(),
    }
}

fn cert_row(
    name: &str,
    node: Option<&str>,
    path: &Path,
    now: OffsetDateTime,
    warn: time::Duration,
) -> Result<CertRow> {
    let missing = || CertRow {
        name: name.into(),
        node: node.map(str::to_string),
        path: path.display().to_string(),
        expires: None,
        residual: None,
        issuer: None,
        self_signed: false,
        key: "missing".into(),
        attention: true,
    };
    let Ok(text) = fs_err::read_to_string(path) else {
        return Ok(missing());
    };
    let der = pem::parse(&text)
        .map_err(|e| Error::pki(format!("`{}`", path.display()), format!("is not PEM ({e})")))?;
    let (_, cert) = X509Certificate::from_der(der.contents()).map_err(|e| {
        Error::pki(
            format!("`{}`", path.display()),
            format!("is not an X.509 certificate ({e})"),
        )
    })?;
    let end = cert.validity().not_after.to_datetime();
    let left = end - now;
    let residual = if left.is_negative() {
        "expired".to_string()
    } else {
        format!("{}d", left.whole_days())
    };
    let issuer = pki::attr_of(
        cert.issuer(),
        &x509_parser::oid_registry::OID_X509_COMMON_NAME,
    )
    .unwrap_or_else(|| cert.issuer().to_string());
    Ok(CertRow {
        name: name.into(),
        node: node.map(str::to_string),
        path: path.display().to_string(),
        expires: Some(pki::rfc3339(end)),
        residual: Some(residual),
        issuer: Some(issuer),
        self_signed: pki::self_signed(&cert),
        key: key_name(cert.public_key()),
        attention: end <= now + warn,
    })
}

/// The table `certs` prints.
pub fn table(rows: &[CertRow]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            [
                r.name.clone(),
                dash(&r.node),
                dash(&r.expires),
                dash(&r.residual),
                match (&r.issuer, r.self_signed) {
                    (Some(issuer), true) => format!("{issuer} (self-signed)"),
                    _ => dash(&r.issuer),
                },
                r.key.clone(),
            ]
        })
        .collect();
    let header = [
        "CERTIFICATE",
        "NODE",
        "EXPIRES",
        "RESIDUAL TIME",
        "ISSUER",
        "KEY",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    std::iter::once(&header)
        .chain(&cells)
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("{}\n", line.join("  ").trim_end())
        })
        .collect()
}

/// `--warn-within` as a span that can be added to `now`: one that reaches past the
/// year 9999 is refused, not left to overflow.
pub(crate) fn warn_window(now: OffsetDateTime, within: Duration) -> Result<time::Duration> {
    time::Duration::try_from(within)
        .ok()
        .filter(|warn| now.checked_add(*warn).is_some())
        .ok_or_else(|| {
            Error::input(
                "--warn-within",
                match within.as_secs() {
                    s if s % 86_400 == 0 => format!("{}d reaches past the year 9999", s / 86_400),
                    s => format!("{s}s reaches past the year 9999"),
                },
            )
            .with_hint("give a window such as `30d` or `365d`")
        })
}
