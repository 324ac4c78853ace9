//! kube-apiserver's own checks in `verify`: the names its serving certificate carries,
//! from its object in manifest.json; its EncryptionConfiguration; and its service range,
//! which must be the one its serving certificate was made for.

use base64::Engine;
use serde::Deserialize;

use super::manifest::{ManifestApiServer, PART};
use super::{encryption_config_api, paths};
use crate::check::{flag_value, in_bundle, Bundle};
use crate::manifest::Manifest;
use crate::model::{Checks, ENCRYPTION_KEY_BYTES};
use crate::version::KubeVersion;

pub(super) const CHECKS: Checks = Checks {
    names: Some(serving_names),
    files: Some(encryption_config),
    unit: None,
    flags: Some(service_range),
    cluster: None,
};

/// Everything the serving certificate must carry, from the manifest: the node's names,
/// the `kubernetes` service's names and IP, and the extra SANs. A value the manifest gives
/// that could not have come from a valid inventory is a finding.
fn serving_names(b: &mut dyn Bundle, manifest: &Manifest, node: &[String]) -> Vec<String> {
    let mut api = node.to_vec();
    api.extend(
        ["kubernetes", "kubernetes.default", "kubernetes.default.svc"].map(|n| format!("DNS:{n}")),
    );
    let Some(ManifestApiServer {
        service_ip,
        dns_domain,
        extra_sans,
    }) = manifest.own(PART.key).and_then(|o| o.parse().ok())
    else {
        b.find(
            "manifest.json",
            "has no `apiserver` object although the bundle carries kube-apiserver: the serving certificate's service IP, DNS-domain and extra names cannot be checked".into(),
        );
        return api;
    };
    match service_ip.parse::<std::net::IpAddr>() {
        Ok(ip) => api.push(format!("IP:{ip}")),
        Err(_) => b.find(
            "manifest.json",
            format!("apiserver.service-ip `{service_ip}` is not an IP address"),
        ),
    }
    if dns_domain.is_empty() || dns_domain.ends_with('.') {
        b.find(
            "manifest.json",
            format!("apiserver.dns-domain `{dns_domain}` is not a DNS domain like `cluster.local`"),
        );
    } else {
        api.push(format!("DNS:kubernetes.default.svc.{dns_domain}"));
    }
    for (i, san) in extra_sans.iter().enumerate() {
        match san.parse::<std::net::IpAddr>() {
            Ok(ip) => api.push(format!("IP:{}", ip.to_canonical())),
            Err(_) if san.is_empty() || san.ends_with('.') => b.find(
                "manifest.json",
                format!(
                    "apiserver.extra-sans[{i}] `{san}` is not a DNS name without a trailing dot"
                ),
            ),
            Err(_) => api.push(format!("DNS:{}", san.to_ascii_lowercase())),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    api.retain(|n| seen.insert(n.clone()));
    api
}

/// The service range the unit gives is the one its serving certificate was made for.
fn service_range(b: &mut dyn Bundle, manifest: Option<&Manifest>, file: &str, words: &[String]) {
    let service_ip = manifest
        .and_then(|m| m.own(PART.key))
        .and_then(|o| o.parse::<ManifestApiServer>().ok())
        .map(|a| a.service_ip);
    let range = flag_value(words, "service-cluster-ip-range");
    match range.map(|r| (r, r.parse::<ipnet::IpNet>())) {
        None => b.find(file, "--service-cluster-ip-range is not set".into()),
        Some((r, Err(_))) => b.find(
            file,
            format!("--service-cluster-ip-range `{r}` is not a CIDR"),
        ),
        Some((r, Ok(net))) => {
            let first = crate::model::first_ip(&net).to_string();
            if let Some(ip) = service_ip.filter(|ip| *ip != first) {
                b.find(
                    file,
                    format!("--service-cluster-ip-range `{r}` gives the `kubernetes` service {first}, but manifest.json's apiserver.service-ip (the serving certificate's) is {ip}"),
                );
            }
        }
    }
}

#[derive(Deserialize)]
struct EncryptionConfig {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<EncryptionResource>,
}

#[derive(Deserialize)]
struct EncryptionResource {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<EncryptionProvider>,
}

/// One provider; only aescbc is read, the others (identity, secretbox...) are left be.
#[derive(Deserialize)]
struct EncryptionProvider {
    aescbc: Option<AesCbc>,
}

#[derive(Deserialize)]
struct AesCbc {
    #[serde(default)]
    keys: Vec<AesKey>,
}

#[derive(Deserialize)]
struct AesKey {
    secret: String,
}

/// The EncryptionConfiguration, in a bundle that carries kube-apiserver or the file: the
/// kind and apiVersion its release reads, Secrets encrypted first with aescbc, every
/// aescbc key 32 bytes.
fn encryption_config(b: &mut dyn Bundle, manifest: Option<&Manifest>, carried: bool) {
    let file = in_bundle(paths::ENCRYPTION_CONFIG);
    let file = file.as_str();
    if !carried && !b.has(file) {
        return;
    }
    let Some(text) = b.required(file) else {
        return;
    };
    let config: EncryptionConfig = match yaml_serde::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            b.find(file, format!("is not an EncryptionConfiguration ({e})"));
            return;
        }
    };
    if config.kind != "EncryptionConfiguration" {
        b.find(
            file,
            format!("kind `{}` is not EncryptionConfiguration", config.kind),
        );
    }
    if let Some(version) = manifest.and_then(|m| KubeVersion::parse(&m.kubernetes_version).ok()) {
        let want = encryption_config_api(&version);
        if config.api_version != want {
            b.find(
                file,
                format!(
                    "apiVersion `{}` is not the one kube-apiserver {version} reads (`{want}`)",
                    config.api_version
                ),
            );
        }
    }
    let secrets = config
        .resources
        .iter()
        .find(|r| r.resources.iter().any(|n| n == "secrets"));
    match secrets {
        None => b.find(file, "does not list the `secrets` resource".into()),
        Some(r) if r.providers.first().is_none_or(|p| p.aescbc.is_none()) => b.find(
            file,
            "the first provider for secrets is not aescbc: Secrets would be written unencrypted"
                .into(),
        ),
        Some(_) => {}
    }
    let mut findings = Vec::new();
    for (i, resource) in config.resources.iter().enumerate() {
        for (j, provider) in resource.providers.iter().enumerate() {
            let Some(aescbc) = &provider.aescbc else {
                continue;
            };
            let at = format!("resources[{i}].providers[{j}].aescbc.keys");
            if aescbc.keys.is_empty() {
                findings.push(format!("{at} is empty"));
            }
            for (k, key) in aescbc.keys.iter().enumerate() {
                match base64::engine::general_purpose::STANDARD.decode(key.secret.trim()) {
                    Err(e) => findings.push(format!("{at}[{k}].secret is not base64 ({e})")),
                    Ok(bytes) if bytes.len() != ENCRYPTION_KEY_BYTES => findings.push(format!(
                        "{at}[{k}].secret decodes to {} bytes; an aescbc key here is {}",
                        bytes.len(),
                        ENCRYPTION_KEY_BYTES
                    )),
                    Ok(_) => {}
                }
            }
        }
    }
    for message in findings {
        b.find(file, message);
    }
}
