//! The files that run the components: units (flags, guards, shared values), kubeconfigs
//! and component configs, each read against its component's row; the checks a row has of
//! its own (`verify` in the row) run from here at their places.

use super::{
    component, exec_start_words, flag_value, in_bundle, Check, Component, Deserialize, Engine,
    KubeVersion, Manifest, CERT_CA,
};

/// Flags whose value every master must share, as (component, flag), from the rows'
/// [`Component::shared_flags`]: one service range, one token issuer.
pub(super) fn shared_flags() -> Vec<(&'static Component, &'static str)> {
    component::all()
        .into_iter()
        .flat_map(|c| c.shared_flags.iter().map(move |flag| (c, *flag)))
        .collect()
}

/// A unit's `WorkingDirectory=`, if it has one.
pub(super) fn working_directory(unit: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.trim().strip_prefix("WorkingDirectory="))
        .map(|d| d.trim().trim_end_matches('/').to_string())
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
    /// kube-bundle's values; then its row's own check of its flags, if any.
    pub(super) fn guards(&mut self, c: &Component, manifest: Option<&Manifest>) {
        if c.guards.is_empty() && c.verify.flags.is_none() {
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
        if let Some(check) = c.verify.flags {
            check(self, manifest, &file, &words);
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
        // A component that does not bind with --bind-address has its listen addresses
        // checked by its row's own unit check.
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
        // Data folders are node folders the component fills itself, accepted when they
        // are the ones its object in manifest.json records under their section keys.
        let own = c.manifest.as_ref().and_then(|part| manifest.own(part.key));
        let data_dirs: Vec<(String, &str)> = own
            .map(|own| {
                c.data_dirs
                    .iter()
                    .filter_map(|key| Some((format!("--{key}"), own.str(key)?)))
                    .collect()
            })
            .unwrap_or_default();
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
        // `<k8s-dir>` must pass the build's rule for such folders; a component with data
        // dirs works in the first, checked with manifest.json's.
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
