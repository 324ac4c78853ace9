//! The files that run the components: units (flags, guards, shared values), kubeconfigs,
//! component configs and the encryption config, each read against its component's row.

use super::*;

/// Flags whose value every master must share, as (component, flag), from the rows'
/// [`Component::shared_flags`]: one service range, one token issuer.
pub(super) fn shared_flags() -> Vec<(&'static Component, &'static str)> {
    component::all()
        .into_iter()
        .flat_map(|c| c.shared_flags.iter().map(move |flag| (c, *flag)))
        .collect()
}

pub(super) const ENCRYPTION_CONFIG: &str = "rootfs/etc/kubernetes/encryption-config.yaml";

/// Whether `c` is an etcd member, whose unit the member checks read.
pub(super) fn is_member(c: &Component) -> bool {
    c.start.waits_for_quorum
}

/// The value a command line gives `--<name>`: the last `--<name>=value` or `--<name>`
/// (`true`, a boolean flag set bare), as Go's flag packages take it.
pub(super) fn flag_value<'a>(words: &'a [String], name: &str) -> Option<&'a str> {
    words.iter().rev().find_map(|w| {
        let rest = w.strip_prefix("--")?.strip_prefix(name)?;
        match rest.strip_prefix('=') {
            Some(value) => Some(value),
            None => rest.is_empty().then_some("true"),
        }
    })
}

/// Scheme, host (without brackets) and port of a URL such as `https://[fd00::1]:2379`.
pub(super) fn url_host(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, port) = v6.split_once(']')?;
            (host, port.strip_prefix(':')?)
        }
        None => authority.rsplit_once(':')?,
    };
    (!host.is_empty() && !port.is_empty()).then_some((scheme, host, port))
}

/// A unit's `WorkingDirectory=`, if it has one.
pub(super) fn working_directory(unit: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.trim().strip_prefix("WorkingDirectory="))
        .map(|d| d.trim().trim_end_matches('/').to_string())
}

/// The ExecStart command line of a unit, split into words (continuations joined,
/// double quotes removed).
pub(super) fn exec_start_words(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let Some(line) = joined
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))
    else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[derive(Deserialize)]
pub(super) struct EncryptionConfig {
    #[serde(rename = "apiVersion", default)]
    pub(super) api_version: String,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) resources: Vec<EncryptionResource>,
}

#[derive(Deserialize)]
pub(super) struct EncryptionResource {
    #[serde(default)]
    pub(super) resources: Vec<String>,
    #[serde(default)]
    pub(super) providers: Vec<EncryptionProvider>,
}

/// One provider; only aescbc is read, the others (identity, secretbox...) are left be.
#[derive(Deserialize)]
pub(super) struct EncryptionProvider {
    pub(super) aescbc: Option<AesCbc>,
}

#[derive(Deserialize)]
pub(super) struct AesCbc {
    #[serde(default)]
    pub(super) keys: Vec<AesKey>,
}

#[derive(Deserialize)]
pub(super) struct AesKey {
    pub(super) secret: String,
}

#[derive(Deserialize)]
pub(super) struct ComponentConfig {
    #[serde(rename = "apiVersion", default)]
    pub(super) api_version: String,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(rename = "clientConnection", default)]
    pub(super) client_connection: ClientConnection,
    #[serde(rename = "leaderElection", default)]
    pub(super) leader_election: LeaderElection,
}

#[derive(Deserialize, Default)]
pub(super) struct ClientConnection {
    #[serde(default)]
    pub(super) kubeconfig: String,
}

#[derive(Deserialize, Default)]
pub(super) struct LeaderElection {
    #[serde(rename = "leaderElect")]
    pub(super) leader_elect: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct Kubeconfig {
    #[serde(default)]
    pub(super) clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    pub(super) users: Vec<NamedUser>,
    #[serde(default)]
    pub(super) contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default)]
    pub(super) current_context: String,
}

#[derive(Deserialize)]
pub(super) struct Named<T> {
    pub(super) name: String,
    pub(super) cluster: T,
}

#[derive(Deserialize)]
pub(super) struct ClusterEntry {
    pub(super) server: String,
    #[serde(rename = "certificate-authority-data")]
    pub(super) certificate_authority_data: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct NamedUser {
    pub(super) name: String,
    pub(super) user: UserEntry,
}

#[derive(Deserialize)]
pub(super) struct UserEntry {
    #[serde(rename = "client-certificate-data")]
    pub(super) client_certificate_data: Option<String>,
    #[serde(rename = "client-key-data")]
    pub(super) client_key_data: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct NamedContext {
    pub(super) name: String,
    pub(super) context: ContextEntry,
}

#[derive(Deserialize)]
pub(super) struct ContextEntry {
    pub(super) cluster: String,
    pub(super) user: String,
}

impl Check<'_> {
    /// A component's flags that decide who may do what ([`Component::guards`]) hold
    /// kube-bundle's values, and the API server's service range is the one its serving
    /// certificate was made for.
    pub(super) fn guards(&mut self, c: &Component, manifest: Option<&Manifest>) {
        if c.guards.is_empty() && !c.serves_api {
            return;
        }
        let file = in_bundle(&c.unit_path());
        let Some(text) = self.bundle.text(&file) else {
            return;
        };
        let words = exec_start_words(&text);
        if words.is_empty() {
            return;
        }
        for (flag, want, risk) in c.guards {
            let have = flag_value(&words, flag);
            if have != Some(*want) {
                self.find(
                    &file,
                    format!(
                        "--{flag} is `{}`, not kube-bundle's `{want}`: {risk}",
                        have.unwrap_or("unset")
                    ),
                );
            }
        }
        if !c.serves_api {
            return;
        }
        let service_ip = manifest
            .and_then(|m| m.apiserver.as_ref())
            .map(|a| a.service_ip.clone());
        let range = flag_value(&words, "service-cluster-ip-range");
        match range.map(|r| (r, r.parse::<ipnet::IpNet>())) {
            None => self.find(&file, "--service-cluster-ip-range is not set"),
            Some((r, Err(_))) => self.find(
                &file,
                format!("--service-cluster-ip-range `{r}` is not a CIDR"),
            ),
            Some((r, Ok(net))) => {
                let first = crate::model::first_ip(&net).to_string();
                if let Some(ip) = service_ip.filter(|ip| *ip != first) {
                    self.find(
                        &file,
                        format!("--service-cluster-ip-range `{r}` gives the `kubernetes` service {first}, but manifest.json's apiserver.service-ip (the serving certificate's) is {ip}"),
                    );
                }
            }
        }
    }

    /// Records the values of [`shared_flags`] for the checks across bundles, and finds
    /// components of this bundle that disagree on one.
    pub(super) fn shared_flags(&mut self, components: &[&'static Component]) {
        let mut seen: Vec<(String, &'static str, String)> = Vec::new();
        for (row, flag) in shared_flags() {
            let Some(c) = components.iter().find(|c| *c == &row) else {
                continue;
            };
            let file = in_bundle(&c.unit_path());
            let Some(text) = self.bundle.text(&file) else {
                continue;
            };
            let value = flag_value(&exec_start_words(&text), flag)
                .unwrap_or("unset")
                .to_string();
            if let Some((other, _, v)) = seen.iter().find(|(_, f, v)| *f == flag && *v != value) {
                let message = format!(
                    "--{flag} is `{value}`, but {} of this bundle gives `{v}`: they must agree",
                    other.rsplit('/').next().unwrap_or(other)
                );
                self.find(&file, message);
            }
            seen.push((file, flag, value));
        }
        self.seen.shared = seen;
    }

    /// Whether a flag of any unit in the bundle names `node_path`.
    pub(super) fn units_name(&self, node_path: &str) -> bool {
        let units = in_bundle(&format!("{}/", component::paths::UNIT_DIR));
        self.bundle
            .files
            .keys()
            .filter(|p| p.starts_with(&units) && p.ends_with(".service"))
            .filter_map(|p| self.bundle.text(p))
            .any(|unit| {
                exec_start_words(&unit)
                    .iter()
                    .any(|w| w.split_once('=').is_some_and(|(_, v)| v == node_path))
            })
    }

    /// kube-apiserver's EncryptionConfiguration: the kind and apiVersion its release
    /// reads, Secrets encrypted first with aescbc, every aescbc key 32 bytes.
    pub(super) fn encryption_config(&mut self, manifest: Option<&Manifest>) {
        use base64::Engine;
        let file = ENCRYPTION_CONFIG;
        let Some(text) = self.required(file) else {
            return;
        };
        let config: EncryptionConfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(file, format!("is not an EncryptionConfiguration ({e})"));
                return;
            }
        };
        if config.kind != "EncryptionConfiguration" {
            self.find(
                file,
                format!("kind `{}` is not EncryptionConfiguration", config.kind),
            );
        }
        if let Some(version) = manifest.and_then(|m| KubeVersion::parse(&m.kubernetes_version).ok())
        {
            let want = crate::component::encryption_config_api(&version);
            if config.api_version != want {
                self.find(
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
            None => self.find(file, "does not list the `secrets` resource"),
            Some(r) if r.providers.first().is_none_or(|p| p.aescbc.is_none()) => self.find(
                file,
                "the first provider for secrets is not aescbc: Secrets would be written unencrypted",
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
                        Ok(bytes) if bytes.len() != pki::ENCRYPTION_KEY_BYTES => {
                            findings.push(format!(
                                "{at}[{k}].secret decodes to {} bytes; an aescbc key here is {}",
                                bytes.len(),
                                pki::ENCRYPTION_KEY_BYTES
                            ))
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
        for message in findings {
            self.find(file, message);
        }
    }

    pub(super) fn kubeconfig(&mut self, c: &Component) {
        let file = in_bundle(&c.kubeconfig_path());
        let cert_file = in_bundle(&c.cert_path());
        let key_file = in_bundle(&c.key_path());
        let Some(text) = self.required(&file) else {
            return;
        };
        let config: Kubeconfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(&file, format!("is not a kubeconfig ({e})"));
                return;
            }
        };
        let Some(context) = config
            .contexts
            .iter()
            .find(|c| c.name == config.current_context)
        else {
            self.find(
                &file,
                format!(
                    "current-context `{}` is not defined",
                    config.current_context
                ),
            );
            return;
        };
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.context.cluster);
        let user = config.users.iter().find(|u| u.name == context.context.user);
        let (Some(cluster), Some(user)) = (cluster, user) else {
            self.find(
                &file,
                "the current context names a cluster or user that is not defined",
            );
            return;
        };
        if !cluster.cluster.server.starts_with("https://") {
            self.find(
                &file,
                format!("server `{}` is not https", cluster.cluster.server),
            );
        }
        let pairs = [
            (
                &cluster.cluster.certificate_authority_data,
                CERT_CA,
                "certificate-authority-data",
            ),
            (
                &user.user.client_certificate_data,
                cert_file.as_str(),
                "client-certificate-data",
            ),
            (
                &user.user.client_key_data,
                key_file.as_str(),
                "client-key-data",
            ),
        ];
        for (data, bundled, field) in pairs {
            let decoded = data
                .as_deref()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok());
            let bundled_bytes = self.bundle.files.get(bundled).and_then(|e| e.bytes.clone());
            if decoded.is_none() || decoded != bundled_bytes {
                self.find(
                    &file,
                    format!(
                        "{field} is not the bundled {}",
                        bundled.rsplit('/').next().unwrap_or(bundled)
                    ),
                );
            }
        }
    }

    pub(super) fn unit(&mut self, c: &Component, manifest: &Manifest) {
        let file = in_bundle(&c.unit_path());
        let Some(text) = self.required(&file) else {
            return;
        };
        let words = exec_start_words(&text);
        if words.is_empty() {
            self.find(&file, "has no ExecStart");
            return;
        }
        // etcd has no --bind-address: its listen URLs are checked by `etcd_unit`.
        if c.binds_node_ip {
            let bind = words.iter().find_map(|w| w.strip_prefix("--bind-address="));
            if bind != Some(manifest.node_ip.as_str()) {
                self.find(
                    &file,
                    format!(
                        "--bind-address is `{}`, not the node IP {}",
                        bind.unwrap_or("unset"),
                        manifest.node_ip
                    ),
                );
            }
        }
        // etcd's data and WAL folders are node folders it fills itself, accepted when
        // they are the ones manifest.json records.
        let data_dirs: Vec<(String, &str)> = match &manifest.etcd {
            Some(ManifestEtcd { data_dir, wal_dir }) if is_member(c) => c
                .data_dirs
                .iter()
                .map(|key| format!("--{key}"))
                .zip([data_dir.as_str(), wal_dir.as_str()])
                .collect(),
            _ => Vec::new(),
        };
        let mut named: Vec<&str> = vec![words[0].as_str()];
        named.extend(
            words
                .iter()
                .filter_map(|w| w.split_once('='))
                .filter(|(flag, value)| !data_dirs.iter().any(|(f, v)| f == flag && v == value))
                .map(|(_, value)| value)
                .filter(|v| v.starts_with('/')),
        );
        // The component's own folder (`<k8s-dir>/<component>`, the unit's working
        // directory) holds what it writes at run time, such as the audit log. It and
        // `<k8s-dir>` must pass the build's rule for such folders; etcd's is its data
        // dir, checked with manifest.json's.
        let work_dir = working_directory(&text).filter(|dir| {
            c.data_dirs.is_empty() && {
                let k8s_dir = match dir.rsplit_once('/') {
                    Some(("", _)) => "/",
                    Some((parent, _)) => parent,
                    None => dir.as_str(),
                };
                let unfit = component::paths::unfit_folder(dir)
                    .or_else(|| component::paths::unfit_folder(k8s_dir));
                if let Some(unfit) = &unfit {
                    self.find(&file, format!("WorkingDirectory: {unfit}"));
                }
                unfit.is_none() && dir.rsplit('/').next() == Some(c.name)
            }
        });
        let under_work_dir = |path: &str| {
            work_dir.as_deref().is_some_and(|dir| {
                path.strip_prefix(dir)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|rest| {
                        !rest.is_empty()
                            && !rest
                                .split('/')
                                .any(|p| p == ".." || p == "." || p.is_empty())
                    })
            })
        };
        for path in named {
            let in_bundle = self.bundle.files.contains_key(&format!("rootfs{path}"));
            if !in_bundle && !manifest.external.iter().any(|e| e == path) && !under_work_dir(path) {
                self.find(
                    &file,
                    format!(
                        "names `{path}`, which is neither in the bundle nor listed as external"
                    ),
                );
            }
        }
    }

    /// etcd's unit, beyond the paths `unit` checks: it is this node's member (its name,
    /// listening and advertising on the node IP, over TLS with the bundled etcd CA), its
    /// `--initial-cluster` names it with its own peer URL, and its data and WAL folders
    /// are the ones manifest.json records. Returns the member for the checks across
    /// bundles.
    pub(super) fn etcd_unit(&mut self, c: &Component, manifest: &Manifest) -> Option<EtcdMember> {
        let file = in_bundle(&c.unit_path());
        let text = self.text(&file)?;
        let words = exec_start_words(&text);
        if words.is_empty() {
            return None;
        }
        let node_ip = manifest.node_ip.parse::<std::net::IpAddr>().ok();
        let flag = |name: &str| flag_value(&words, name);
        let mut found = Vec::new();
        match &manifest.etcd {
            None => self.find(
                "manifest.json",
                "has no `etcd` object although the bundle carries etcd: the unit's --data-dir and --wal-dir cannot be told from bundle files",
            ),
            Some(dirs) => {
                for (key, want) in [("data-dir", &dirs.data_dir), ("wal-dir", &dirs.wal_dir)] {
                    if let Some(unfit) = component::paths::unfit_folder(want) {
                        self.find("manifest.json", format!("etcd.{key}: {unfit}"));
                    } else if let Some(held) = self
                        .bundle
                        .files
                        .keys()
                        .find(|p| p.strip_prefix("rootfs").is_some_and(|p| inside(p, want)))
                    {
                        self.find(
                            "manifest.json",
                            format!("etcd.{key} `{want}` holds `{held}`, a file of the bundle: etcd's data needs a folder of its own"),
                        );
                    }
                    let have = flag(key);
                    if have != Some(want.as_str()) {
                        found.push(format!(
                            "--{key} is `{}`, not manifest.json's etcd.{key} `{want}`",
                            have.unwrap_or("unset")
                        ));
                    }
                }
                if inside(&dirs.data_dir, &dirs.wal_dir) || inside(&dirs.wal_dir, &dirs.data_dir)
                {
                    self.find(
                        "manifest.json",
                        format!(
                            "etcd.data-dir `{}` and etcd.wal-dir `{}` overlap",
                            dirs.data_dir, dirs.wal_dir
                        ),
                    );
                }
            }
        }
        let name = flag("name").unwrap_or_default().to_string();
        if name != manifest.node {
            found.push(format!(
                "--name is `{name}`, not the node name `{}`",
                manifest.node
            ));
        }
        let on_node = |url: &str| {
            url_host(url).is_some_and(|(scheme, host, _)| {
                scheme == "https" && host.parse().ok() == node_ip && node_ip.is_some()
            })
        };
        for key in [
            "listen-client-urls",
            "advertise-client-urls",
            "listen-peer-urls",
            "initial-advertise-peer-urls",
        ] {
            let urls = flag(key).unwrap_or_default();
            if !urls.split(',').any(on_node) {
                found.push(format!(
                    "--{key} is `{urls}`, which names no https URL on the node IP {}",
                    manifest.node_ip
                ));
            }
        }
        let cert = c.cert_path();
        let key = c.key_path();
        for (name, want) in [
            ("cert-file", cert.as_str()),
            ("key-file", key.as_str()),
            ("peer-cert-file", cert.as_str()),
            ("peer-key-file", key.as_str()),
            ("trusted-ca-file", component::paths::ETCD_CA),
            ("peer-trusted-ca-file", component::paths::ETCD_CA),
        ] {
            if flag(name) != Some(want) {
                found.push(format!(
                    "--{name} is `{}`, not the bundled `{want}`",
                    flag(name).unwrap_or("unset")
                ));
            }
        }
        for name in ["client-cert-auth", "peer-client-cert-auth"] {
            if !words.iter().any(|w| {
                w.strip_prefix("--")
                    .is_some_and(|w| w == name || w == format!("{name}=true"))
            }) {
                found.push(format!(
                    "--{name} is not set: etcd would take clients without a certificate of its CA"
                ));
            }
        }
        let peer_url = flag("initial-advertise-peer-urls")
            .unwrap_or_default()
            .to_string();
        let mut cluster = Vec::new();
        for entry in flag("initial-cluster").unwrap_or_default().split(',') {
            match entry.split_once('=') {
                Some((n, u)) if !n.is_empty() && url_host(u).is_some() => {
                    cluster.push((n.to_string(), u.to_string()))
                }
                _ => found.push(format!(
                    "--initial-cluster entry `{entry}` is not `name=https://ip:port`"
                )),
            }
        }
        let own: Vec<&str> = cluster
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, u)| u.as_str())
            .collect();
        if own.is_empty() {
            found.push(format!(
                "--initial-cluster does not name this member `{name}` (with its peer URL {peer_url})"
            ));
        } else if !own.contains(&peer_url.as_str()) {
            found.push(format!(
                "--initial-cluster gives `{name}` the peer URL {}, not its --initial-advertise-peer-urls {peer_url}",
                own.join(",")
            ));
        }
        let state = flag("initial-cluster-state").unwrap_or("new").to_string();
        if state != "new" && state != "existing" {
            found.push(format!(
                "--initial-cluster-state is `{state}`, neither `new` nor `existing`"
            ));
        }
        let token = flag("initial-cluster-token")
            .unwrap_or_default()
            .to_string();
        if token.is_empty() {
            found.push(
                "--initial-cluster-token is not set: members of another cluster could join this one"
                    .to_string(),
            );
        }
        for message in found {
            self.find(&file, message);
        }
        let client_urls = flag("advertise-client-urls")
            .unwrap_or_default()
            .split(',')
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        Some(EtcdMember {
            name,
            peer_url,
            client_urls,
            cluster,
            state,
            token,
        })
    }

    /// kube-apiserver's `--etcd-servers`, in a bundle with etcd.
    pub(super) fn etcd_servers(&mut self, api: &Component) -> Option<Vec<String>> {
        let text = self.bundle.text(&in_bundle(&api.unit_path()))?;
        let words = exec_start_words(&text);
        let servers = flag_value(&words, "etcd-servers")?;
        Some(servers.split(',').map(str::to_string).collect())
    }

    /// The `--config` file of a component that has one: an apiVersion the bundle's
    /// release accepts, leader election on, and the bundled kubeconfig.
    pub(super) fn config_file(&mut self, c: &Component, manifest: &Manifest) {
        let Some(path) = c.config_path() else { return };
        let file = in_bundle(&path);
        let Some(text) = self.required(&file) else {
            return;
        };
        let config: ComponentConfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(&file, format!("is not a {} configuration ({e})", c.name));
                return;
            }
        };
        let Some(spec) = &c.config else { return };
        if let Ok(version) = KubeVersion::parse(&manifest.kubernetes_version) {
            let want = (spec.api_version)(&version);
            if config.api_version != want {
                self.find(
                    &file,
                    format!(
                        "apiVersion `{}` is not the one {} {version} reads (`{want}`)",
                        config.api_version, c.name
                    ),
                );
            }
        }
        if config.kind != spec.kind {
            self.find(
                &file,
                format!("kind `{}` is not {}", config.kind, spec.kind),
            );
        }
        let kubeconfig = c.kubeconfig_path();
        if config.client_connection.kubeconfig != kubeconfig {
            self.find(
                &file,
                format!(
                    "clientConnection.kubeconfig is `{}`, not the bundled `{kubeconfig}`",
                    config.client_connection.kubeconfig
                ),
            );
        }
        if config.leader_election.leader_elect != Some(true) {
            self.find(
                &file,
                "leaderElection.leaderElect is not true: every master would schedule",
            );
        }
    }
}
