//! `[kube-apiserver]`: the keys its section takes beside the standard ones (extra SANs,
//! the node-port range, an external etcd), and the settings they give.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::component::paths;
use crate::error::{Error, Result};
use crate::model::{
    is_host_name, Component, ComponentSettings, Copied, OwnSettings, RawSection, San, SectionCheck,
    SectionContext, StandardKeys,
};

pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";

#[derive(Debug, Clone)]
pub struct ApiServerSettings {
    /// A load balancer's name or VIP, in every node's serving certificate.
    pub extra_sans: Vec<San>,
    /// `--service-node-port-range`, as `FIRST-LAST`.
    pub node_port_range: String,
    pub etcd_servers: Vec<String>,
    /// An external etcd's CA and the apiserver's client certificate and key for it.
    pub etcd_tls: Option<EtcdTls>,
}

#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl OwnSettings for ApiServerSettings {}

/// `[kube-apiserver]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawApiServer {
    binary: Option<Spanned<String>>,
    binary_check: Option<bool>,
    secure_port: Option<Spanned<i64>>,
    #[serde(default)]
    extra_sans: Vec<Spanned<String>>,
    service_node_port_range: Option<Spanned<String>>,
    etcd_servers: Option<Spanned<Vec<Spanned<String>>>>,
    etcd_ca: Option<Spanned<String>>,
    etcd_cert: Option<Spanned<String>>,
    etcd_key: Option<Spanned<String>>,
    #[serde(default)]
    extra_args: BTreeMap<String, Spanned<toml::Value>>,
}

/// `settings` with `own` kept on them, and its extra SANs in the serving certificate.
fn with_own(mut settings: ComponentSettings, own: ApiServerSettings) -> ComponentSettings {
    settings.extra_sans = own.extra_sans.clone();
    if let Some(tls) = &own.etcd_tls {
        for (path, private, from) in [
            (paths::ETCD_CA, false, &tls.ca),
            (paths::ETCD_CLIENT_CERT, false, &tls.cert),
            (paths::ETCD_CLIENT_KEY, true, &tls.key),
        ] {
            settings.copied.push(Copied {
                path,
                private,
                from: from.clone(),
            });
        }
    }
    settings.own = Some(std::sync::Arc::new(own));
    settings
}

impl RawSection for RawApiServer {
    fn validate(
        self: Box<Self>,
        c: &'static Component,
        check: &dyn SectionCheck,
        context: &mut SectionContext<'_>,
    ) -> Result<ComponentSettings> {
        let raw = *self;
        let cluster = &*context.cluster;
        let nodes = context.nodes;
        let with_etcd = context.builds(super::super::ETCD.name);

        let section = c.name;
        let settings = check.standard(
            c,
            StandardKeys {
                binary: raw.binary,
                binary_check: raw.binary_check,
                secure_port: raw.secure_port,
                extra_args: raw.extra_args,
            },
            &cluster.version,
            None,
        )?;
        let mut extra_sans = Vec::new();
        for (i, san) in raw.extra_sans.iter().enumerate() {
            let field = format!("{section}.extra-sans[{i}]");
            let text = san.get_ref().as_str();
            let parsed = match text.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip.to_canonical()),
                Err(_) if text.ends_with('.') => {
                    return Err(check.error(san.span(), &field, format!("`{text}` ends with a dot"))
                        .with_hint(format!(
                            "certificates name hosts without the trailing dot: `{}`",
                            text.trim_end_matches('.')
                        )))
                }
                Err(_) if is_host_name(text) => San::Dns(text.to_ascii_lowercase()),
                Err(_) => {
                    return Err(check.error(san.span(), &field, format!("`{text}` is neither an IP address nor a DNS name"))
                        .with_hint("list a load balancer's name (`lb.example.com`) or address (`10.0.0.100`), without scheme or port"))
                }
            };
            if !extra_sans.contains(&parsed) {
                extra_sans.push(parsed);
            }
        }
        let service_ip = cluster.kubernetes_service_ip();
        if let Some(node) = nodes.iter().find(|n| n.ip == service_ip) {
            return Err(Error::input(
                check.whole_file("cluster.service-cidr"),
                format!(
                    "the `kubernetes` service takes the range's first IP, {service_ip}, which is node `{}`'s address",
                    node.name
                ),
            )
            .with_hint("pick a service range that no master's address falls in, such as `10.254.0.0/16`"));
        }
        let node_port_range = match raw.service_node_port_range {
            None => DEFAULT_NODE_PORT_RANGE.to_string(),
            Some(r) => {
                let parsed = r
                    .get_ref()
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
                    .filter(|(a, b)| *a > 0 && a <= b);
                let Some((first, last)) = parsed else {
                    return Err(check.error(
                        r.span(),
                        &format!("{section}.service-node-port-range"),
                        format!("`{}` is not a port range like `30000-32767`", r.get_ref()),
                    ));
                };
                format!("{first}-{last}")
            }
        };
        if with_etcd {
            let given = [
                ("etcd-servers", raw.etcd_servers.as_ref().map(Spanned::span)),
                ("etcd-ca", raw.etcd_ca.as_ref().map(Spanned::span)),
                ("etcd-cert", raw.etcd_cert.as_ref().map(Spanned::span)),
                ("etcd-key", raw.etcd_key.as_ref().map(Spanned::span)),
            ];
            if let Some((key, Some(span))) = given.into_iter().find(|(_, s)| s.is_some()) {
                return Err(Error::input(
                    check.at(span, &format!("{section}.{key}")),
                    "is set by kube-bundle when the inventory has `[etcd]`",
                )
                .with_hint("remove it: the apiservers use the bundled etcd members, its CA and a client certificate from pki/"));
            }
            return Ok(with_own(
                settings,
                ApiServerSettings {
                    extra_sans,
                    node_port_range,
                    etcd_servers: Vec::new(),
                    etcd_tls: None,
                },
            ));
        }
        let Some(servers) = raw.etcd_servers else {
            return Err(Error::input(
                check.whole_file(&format!("{section}.etcd-servers")),
                "is required: kube-apiserver keeps its state in etcd",
            )
            .with_hint(
                "list the etcd client URLs, e.g. `etcd-servers = [\"https://10.0.0.11:2379\"]`",
            ));
        };
        if servers.get_ref().is_empty() {
            return Err(check.error(
                servers.span(),
                &format!("{section}.etcd-servers"),
                "lists no etcd server".into(),
            ));
        }
        let mut etcd_servers = Vec::new();
        let mut any_https = false;
        for (i, url) in servers.get_ref().iter().enumerate() {
            let field = format!("{section}.etcd-servers[{i}]");
            let text = url.get_ref();
            let rest = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
                (Some(rest), _) => {
                    any_https = true;
                    rest
                }
                (None, Some(rest)) => rest,
                _ => {
                    return Err(check.error(
                        url.span(),
                        &field,
                        format!("`{text}` is not an http or https URL"),
                    ))
                }
            };
            let host_port = rest.trim_end_matches('/');
            let ok = !host_port.contains(['/', '?', '#', '@', ',', ' '])
                && crate::model::check_https_url(&format!("https://{host_port}")).is_ok()
                && host_port
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(check
                    .error(
                        url.span(),
                        &field,
                        format!("`{text}` is not an etcd client URL like `https://10.0.0.11:2379`"),
                    )
                    .with_hint("write scheme, host and port, nothing more"));
            }
            etcd_servers.push(format!(
                "{}{host_port}",
                if text.starts_with("https") {
                    "https://"
                } else {
                    "http://"
                }
            ));
        }
        let file =
            |value: &Option<Spanned<String>>, key: &str| -> Result<Option<PathBuf>> {
                let Some(v) = value else { return Ok(None) };
                let path = check.relative(v.get_ref());
                match fs_err::metadata(&path) {
                Ok(m) if m.is_file() => Ok(Some(path)),
                _ => Err(check.error(v.span(),
                    &format!("{section}.{key}"),
                    format!("`{}` is not a readable file", path.display()),
                )
                .with_hint(
                    "point it at the PEM file of your etcd cluster, relative to the inventory",
                )),
            }
            };
        let ca = file(&raw.etcd_ca, "etcd-ca")?;
        let cert = file(&raw.etcd_cert, "etcd-cert")?;
        let key = file(&raw.etcd_key, "etcd-key")?;
        let etcd_tls = match (ca, cert, key) {
            (Some(ca), Some(cert), Some(key)) => Some(EtcdTls { ca, cert, key }),
            (None, None, None) if !any_https => None,
            (None, None, None) => {
                return Err(Error::input(
                    check.whole_file(&format!("{section}.etcd-ca")),
                    "is required with https etcd servers",
                )
                .with_hint("set `etcd-ca`, `etcd-cert` and `etcd-key`: the etcd CA and the apiserver's client certificate and key for it"))
            }
            _ => {
                return Err(Error::input(
                    check.whole_file(&format!("{section}.etcd-ca")),
                    "`etcd-ca`, `etcd-cert` and `etcd-key` go together",
                )
                .with_hint("set all three, or none for plain-http etcd servers"))
            }
        };
        Ok(with_own(
            settings,
            ApiServerSettings {
                extra_sans,
                node_port_range,
                etcd_servers,
                etcd_tls,
            },
        ))
    }
}
