//! The sections of the inventory that belong to one component (`[kube-apiserver]`,
//! `[etcd]`) and the rules that tie them to the cluster and the nodes.

use super::*;

pub(super) fn check_apiserver(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("`{url}` is not an https URL"));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{url}` contains white space"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path.contains('{') || path.contains('}') {
        return Err(format!(
            "`{url}`: `{NODE_IP_PLACEHOLDER}` may stand only for the host"
        ));
    }
    if authority.contains(['?', '#', '@']) || path.contains(['?', '#']) {
        return Err(format!(
            "`{url}` has a query, fragment or user part; kubeconfigs take `https://HOST:PORT`"
        ));
    }
    let probe = authority.replace(NODE_IP_PLACEHOLDER, "127.0.0.1");
    if probe.contains('{') || probe.contains('}') {
        return Err(format!(
            "`{url}`: the only placeholder allowed is `{NODE_IP_PLACEHOLDER}`"
        ));
    }
    let (host, port) = match probe.strip_prefix('[') {
        Some(inner) => {
            let Some((host, after)) = inner.split_once(']') else {
                return Err(format!("`{url}` has an unclosed `[`"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("`{url}`: `[{host}]` is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("`{url}` has text after `]`")),
                },
            }
        }
        None => match probe.split_once(':') {
            Some((host, port)) => {
                if !is_host_name(host) {
                    return Err(format!("`{url}` has no valid host"));
                }
                (host, Some(port))
            }
            None => {
                if !is_host_name(&probe) {
                    return Err(format!("`{url}` has no valid host"));
                }
                (probe.as_str(), None)
            }
        },
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("`{url}` has a bad port `{port}`"));
        }
    }
    Ok(())
}

/// Whether kube-apiserver `version` takes `net` as `--service-cluster-ip-range`, as a
/// (message, hint) pair when it does not. Its own rules (v1.20 and on):
/// `validateMaxCIDRRange` in cmd/kube-apiserver/app/options/validation.go refuses more
/// than 20 host bits (`maxCIDRBits = 20`: a prefix of /12 or longer for IPv4, /108 for
/// IPv6), unless both MultiCIDRServiceAllocator and DisableAllocatorDualWrite are on,
/// which 1.34 makes the default; `ServiceIPRange` in pkg/controlplane/services.go refuses
/// a range of fewer than 8 addresses ("the service cluster IP range must be at least 8 IP
/// addresses").
pub(super) fn check_service_range(
    net: &IpNet,
    version: &KubeVersion,
) -> Result<(), (String, String)> {
    const MAX_HOST_BITS: u8 = 20;
    const MIN_ADDRESSES: u32 = 8;
    let bits = net.max_prefix_len();
    let host_bits = bits - net.prefix_len();
    let family = if bits == 32 { "IPv4" } else { "IPv6" };
    let hint = format!(
        "pick a range such as `{}`",
        if bits == 32 {
            "10.254.0.0/16"
        } else {
            "fd00:10:96::/112"
        }
    );
    if host_bits > MAX_HOST_BITS && version.profile_minor() < 34 {
        return Err((
            format!(
                "`{net}` is larger than kube-apiserver {version} takes: an {family} service range needs a prefix of /{} or longer",
                bits - MAX_HOST_BITS
            ),
            hint,
        ));
    }
    if host_bits < MIN_ADDRESSES.trailing_zeros() as u8 {
        return Err((
            format!(
                "`{net}` holds {} address(es); kube-apiserver needs at least {MIN_ADDRESSES} (an {family} prefix of /{} or shorter)",
                1u32 << host_bits,
                bits - MIN_ADDRESSES.trailing_zeros() as u8
            ),
            hint,
        ));
    }
    Ok(())
}

/// The host of a URL [`check_apiserver`] accepted, without brackets.
pub(super) fn host_of_url(url: &str) -> Option<&str> {
    let authority = url.strip_prefix("https://")?.split('/').next()?;
    match authority.strip_prefix('[') {
        Some(inner) => inner.split(']').next(),
        None => authority.split(':').next(),
    }
}

impl Validator<'_> {
    /// With kube-apiserver built, the `apiserver` the controller-manager and scheduler
    /// reach must be a name its serving certificate carries, or their TLS check fails on
    /// every master.
    pub(super) fn apiserver_in_certificate(
        &self,
        inv: &Inventory,
        span: Option<Range<usize>>,
    ) -> Result<()> {
        let (Some(_), Some(span)) = (&inv.apiserver, span) else {
            return Ok(());
        };
        for node in &inv.nodes {
            let url = inv.apiserver_for(node);
            let Some(host) = host_of_url(&url) else {
                continue;
            };
            let wanted = match host.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip.to_canonical()),
                Err(_) => San::Dns(host.to_ascii_lowercase()),
            };
            let names = inv.apiserver_names(node);
            if !names.contains(&wanted) {
                let names: Vec<String> = names.iter().map(San::to_string).collect();
                return Err(Error::input(
                    self.at(span, "cluster.apiserver"),
                    format!(
                        "`{host}` is not a name of kube-apiserver's serving certificate, which on `{}` holds {}",
                        node.name,
                        names.join(", ")
                    ),
                )
                .with_hint(format!("add `{host}` to `extra-sans` under [kube-apiserver] (a load balancer's name or address), or remove `apiserver` so that each controller-manager and scheduler talks to its own master's apiserver")));
            }
        }
        Ok(())
    }

    /// The nodes whose etcd member joins a formed cluster, from `etcd-state`.
    pub(super) fn joining(&self, raw: &[RawNode]) -> Result<Vec<String>> {
        let mut joining = Vec::new();
        for (i, node) in raw.iter().enumerate() {
            let Some(state) = &node.etcd_state else {
                continue;
            };
            match state.get_ref().as_str() {
                "new" => {}
                "existing" => joining.push(node.name.get_ref().clone()),
                other => {
                    return Err(self
                        .err(state, &format!("nodes[{i}].etcd-state"), format!("unknown value `{other}`"))
                        .with_hint("`new` for a member that bootstraps the cluster (the default), `existing` for one added to a formed cluster with `etcdctl member add`"))
                }
            }
        }
        if !joining.is_empty() && joining.len() == raw.len() {
            return Err(Error::input(
                self.whole_file("nodes"),
                "every node has `etcd-state = \"existing\"`: no member is left to bootstrap or to join",
            ));
        }
        Ok(joining)
    }

    /// `[etcd]`: its component settings and its own.
    pub(super) fn etcd(
        &self,
        c: &'static Component,
        raw: RawEtcd,
        cluster: &Cluster,
        joining: Vec<String>,
        nodes: &[Node],
    ) -> Result<(ComponentSettings, EtcdSettings)> {
        let Some(version) = raw.version else {
            return Err(Error::input(self.whole_file("etcd.version"), "is required")
                .with_hint("set the etcd release the bundles carry: `3.4`, `3.5` or `3.6` (`etcd --version` says it)"));
        };
        let minor = version
            .get_ref()
            .trim_start_matches('v')
            .strip_prefix("3.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|m| m.parse::<u32>().ok())
            .filter(|m| ETCD_MINORS.contains(m))
            .ok_or_else(|| {
                self.err(
                    &version,
                    "etcd.version",
                    format!("etcd `{}` has no flag profile", version.get_ref()),
                )
                .with_hint("kube-bundle knows etcd 3.4, 3.5 and 3.6; write `3.4`, `3.5` or `3.6` (a patch release like `3.4.23` is fine)")
            })?;
        let shown = format!("3.{minor}");
        let mut settings = self.component_of(
            c,
            RawComponent {
                binary: raw.binary,
                binary_check: raw.binary_check,
                secure_port: raw.client_port,
                extra_args: raw.extra_args,
            },
            &cluster.version,
            Some((minor, &shown)),
        )?;
        let client_port = settings.secure_port;
        let peer_port = self.port(raw.peer_port, "etcd.peer-port", 2380)?;
        let etcdctl = self.executable(raw.etcdctl, "etcd.etcdctl", "etcdctl")?;
        let dir = |value: Option<Spanned<String>>, key: &str, default: &str| -> Result<String> {
            match value {
                None => Ok(default.to_string()),
                Some(d) => {
                    let text = d.get_ref();
                    let ok = text.starts_with('/')
                        && text.trim_end_matches('/').len() > 1
                        && !text.split('/').any(|part| part == ".." || part == ".")
                        && !text.chars().any(|c| {
                            c.is_whitespace() || c.is_control() || "\"'\\$%`*?[]".contains(c)
                        });
                    if !ok {
                        return Err(self.err(
                            &d,
                            &format!("etcd.{key}"),
                            "must be an absolute folder below `/` without `..`, spaces, quotes, `$` or wildcards",
                        ));
                    }
                    let dir = text.trim_end_matches('/').to_string();
                    if let Some(message) = component::paths::unfit_folder(&dir) {
                        return Err(self.err(&d, &format!("etcd.{key}"), message).with_hint(
                            "keep etcd's data in a folder of its own, such as /data/k8s/etcd/data",
                        ));
                    }
                    Ok(dir)
                }
            }
        };
        let data_dir = dir(raw.data_dir, "data-dir", DEFAULT_ETCD_DATA_DIR)?;
        let wal_dir = dir(raw.wal_dir, "wal-dir", DEFAULT_ETCD_WAL_DIR)?;
        let inside = component::paths::inside;
        if inside(&wal_dir, &data_dir) || inside(&data_dir, &wal_dir) {
            return Err(Error::input(
                self.whole_file("etcd.wal-dir"),
                format!("`{wal_dir}` and the data dir `{data_dir}` overlap"),
            )
            .with_hint("give the WAL a folder of its own beside the data dir, as the tutorial's /data/k8s/etcd/{data,wal}"));
        }
        // No other component's work dir may hold etcd's data, or be held by it: an
        // uninstall --purge of that component would take the data with it. (The folders
        // install.sh writes into are `unfit_folder`'s.)
        let owned: Vec<(String, String)> = component::all()
            .iter()
            .filter(|c| c.data_dirs.is_empty())
            .map(|c| {
                (
                    c.work_dir(&cluster.k8s_dir),
                    format!("{}'s work dir", c.name),
                )
            })
            .collect();
        for (key, path) in [("data-dir", &data_dir), ("wal-dir", &wal_dir)] {
            for (other, what) in &owned {
                if inside(path, other) || inside(other, path) {
                    return Err(Error::input(
                        self.whole_file(&format!("etcd.{key}")),
                        format!("`{path}` overlaps {what} `{other}`"),
                    )
                    .with_hint(
                        "keep etcd's data in a folder of its own, such as /data/k8s/etcd/data",
                    ));
                }
            }
        }
        let cluster_token = self.plain_name(
            raw.cluster_token,
            "etcd.cluster-token",
            DEFAULT_ETCD_CLUSTER_TOKEN,
        )?;
        debug_assert!(joining.iter().all(|j| nodes.iter().any(|n| &n.name == j)));
        settings.extra_ports = vec![peer_port];
        settings.data_dirs = vec![data_dir.clone(), wal_dir.clone()];
        Ok((
            settings,
            EtcdSettings {
                minor,
                etcdctl,
                client_port,
                peer_port,
                data_dir,
                wal_dir,
                cluster_token,
                joining,
            },
        ))
    }

    /// `[kube-apiserver]`: its component settings and its own.
    pub(super) fn apiserver(
        &self,
        c: &'static Component,
        raw: RawApiServer,
        cluster: &Cluster,
        nodes: &[Node],
        with_etcd: bool,
    ) -> Result<(ComponentSettings, ApiServerSettings)> {
        let section = c.name;
        let settings = self.component(
            c,
            RawComponent {
                binary: raw.binary,
                binary_check: raw.binary_check,
                secure_port: raw.secure_port,
                extra_args: raw.extra_args,
            },
            &cluster.version,
        )?;
        let mut extra_sans = Vec::new();
        for (i, san) in raw.extra_sans.iter().enumerate() {
            let field = format!("{section}.extra-sans[{i}]");
            let text = san.get_ref().as_str();
            let parsed = match text.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip.to_canonical()),
                Err(_) if text.ends_with('.') => {
                    return Err(self
                        .err(san, &field, format!("`{text}` ends with a dot"))
                        .with_hint(format!(
                            "certificates name hosts without the trailing dot: `{}`",
                            text.trim_end_matches('.')
                        )))
                }
                Err(_) if is_host_name(text) => San::Dns(text.to_ascii_lowercase()),
                Err(_) => {
                    return Err(self
                        .err(san, &field, format!("`{text}` is neither an IP address nor a DNS name"))
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
                self.whole_file("cluster.service-cidr"),
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
                    return Err(self.err(
                        &r,
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
                    self.at(span, &format!("{section}.{key}")),
                    "is set by kube-bundle when the inventory has `[etcd]`",
                )
                .with_hint("remove it: the apiservers use the bundled etcd members, its CA and a client certificate from pki/"));
            }
            return Ok((
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
                self.whole_file(&format!("{section}.etcd-servers")),
                "is required: kube-apiserver keeps its state in etcd",
            )
            .with_hint(
                "list the etcd client URLs, e.g. `etcd-servers = [\"https://10.0.0.11:2379\"]`",
            ));
        };
        if servers.get_ref().is_empty() {
            return Err(self.err(
                &servers,
                &format!("{section}.etcd-servers"),
                "lists no etcd server",
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
                    return Err(self.err(
                        url,
                        &field,
                        format!("`{text}` is not an http or https URL"),
                    ))
                }
            };
            let host_port = rest.trim_end_matches('/');
            let ok = !host_port.contains(['/', '?', '#', '@', ',', ' '])
                && check_apiserver(&format!("https://{host_port}")).is_ok()
                && host_port
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(self
                    .err(
                        url,
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
        let file = |value: &Option<Spanned<String>>, key: &str| -> Result<Option<PathBuf>> {
            let Some(v) = value else { return Ok(None) };
            let path = self.relative(v.get_ref());
            match fs_err::metadata(&path) {
                Ok(m) if m.is_file() => Ok(Some(path)),
                _ => Err(self
                    .err(
                        v,
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
                    self.whole_file(&format!("{section}.etcd-ca")),
                    "is required with https etcd servers",
                )
                .with_hint("set `etcd-ca`, `etcd-cert` and `etcd-key`: the etcd CA and the apiserver's client certificate and key for it"))
            }
            _ => {
                return Err(Error::input(
                    self.whole_file(&format!("{section}.etcd-ca")),
                    "`etcd-ca`, `etcd-cert` and `etcd-key` go together",
                )
                .with_hint("set all three, or none for plain-http etcd servers"))
            }
        };
        Ok((
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
