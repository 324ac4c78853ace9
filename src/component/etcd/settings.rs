//! `[etcd]`: the keys an etcd member's section takes beside the standard ones, and the
//! settings they give.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::component::paths;
use crate::error::{Error, Result};
use crate::model::{
    url_host, Component, ComponentSettings, Node, OwnSettings, RawSection, SectionCheck,
    SectionContext, StandardKeys,
};

pub const DEFAULT_DATA_DIR: &str = "/data/k8s/etcd/data";
pub const DEFAULT_WAL_DIR: &str = "/data/k8s/etcd/wal";
pub const DEFAULT_CLUSTER_TOKEN: &str = "etcd-cluster-0";

/// The etcd releases with a checked flag profile, as minor numbers of 3.x.
pub const ETCD_MINORS: [u32; 3] = [4, 5, 6];

#[derive(Debug, Clone)]
pub struct EtcdSettings {
    /// Minor release of 3.x: 4, 5 or 6.
    pub minor: u32,
    /// An etcdctl to carry as `/opt/k8s/bin/etcdctl`.
    pub etcdctl: Option<PathBuf>,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: String,
    pub wal_dir: String,
    pub cluster_token: String,
    /// Nodes whose member joins a formed cluster (`etcd-state = "existing"`), in
    /// inventory order; the others bootstrap it.
    pub joining: Vec<String>,
}

impl EtcdSettings {
    /// `--initial-cluster` of `node`: the bootstrapping members, and for a joining one
    /// also every member joined before it, in inventory order, then itself, which is what
    /// `etcdctl member add` asks for. A member added later never changes the bundles of
    /// those before it.
    pub fn initial_cluster(&self, nodes: &[Node], node: &Node) -> String {
        let joins = |n: &Node| self.joining.contains(&n.name);
        let upto = nodes
            .iter()
            .position(|n| n.name == node.name)
            .unwrap_or(nodes.len());
        nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| !joins(n) || (joins(node) && *i <= upto))
            .map(|(_, n)| format!("{}={}", n.name, self.peer_url(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn peer_url(&self, node: &Node) -> String {
        format!("https://{}:{}", url_host(node.ip), self.peer_port)
    }

    pub fn client_url(&self, node: &Node) -> String {
        format!("https://{}:{}", url_host(node.ip), self.client_port)
    }

    /// Every member's client URL, `node`'s own first: kube-apiserver's `--etcd-servers`.
    pub fn servers_for(&self, nodes: &[Node], node: &Node) -> Vec<String> {
        let mut urls = vec![self.client_url(node)];
        urls.extend(
            nodes
                .iter()
                .filter(|n| n.name != node.name)
                .map(|n| self.client_url(n)),
        );
        urls
    }
}

impl OwnSettings for EtcdSettings {}

/// `[etcd]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawEtcd {
    binary: Option<Spanned<String>>,
    binary_check: Option<bool>,
    etcdctl: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    client_port: Option<Spanned<i64>>,
    peer_port: Option<Spanned<i64>>,
    data_dir: Option<Spanned<String>>,
    wal_dir: Option<Spanned<String>>,
    cluster_token: Option<Spanned<String>>,
    #[serde(default)]
    extra_args: BTreeMap<String, Spanned<toml::Value>>,
}

impl RawSection for RawEtcd {
    fn validate(
        self: Box<Self>,
        c: &'static Component,
        check: &dyn SectionCheck,
        context: &mut SectionContext<'_>,
    ) -> Result<ComponentSettings> {
        let raw = *self;
        let Some(version) = raw.version else {
            return Err(Error::input(check.whole_file("etcd.version"), "is required")
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
                check.error(
                    version.span(),
                    "etcd.version",
                    format!("etcd `{}` has no flag profile", version.get_ref()),
                )
                .with_hint("kube-bundle knows etcd 3.4, 3.5 and 3.6; write `3.4`, `3.5` or `3.6` (a patch release like `3.4.23` is fine)")
            })?;
        let shown = format!("3.{minor}");
        let mut settings = check.standard(
            c,
            StandardKeys {
                binary: raw.binary,
                binary_check: raw.binary_check,
                secure_port: raw.client_port,
                extra_args: raw.extra_args,
            },
            &context.cluster.version,
            Some((minor, &shown)),
        )?;
        let nodes = context.nodes;
        if nodes.len().is_multiple_of(2) {
            let n = nodes.len();
            context.warnings.push(format!(
                "{} lists {n} etcd members: a quorum is {}, so the cluster survives the loss of {} member(s), no more than with {}; an odd number is what etcd recommends",
                context.path.display(),
                n / 2 + 1,
                (n - 1) / 2,
                n - 1
            ));
        }
        let client_port = settings.secure_port;
        let peer_port = check.port(raw.peer_port, "etcd.peer-port", 2380)?;
        let etcdctl = check.executable(raw.etcdctl, "etcd.etcdctl", "etcdctl")?;
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
                        return Err(check.error(
                            d.span(),
                            &format!("etcd.{key}"),
                            "must be an absolute folder below `/` without `..`, spaces, quotes, `$` or wildcards".into(),
                        ));
                    }
                    let dir = text.trim_end_matches('/').to_string();
                    if let Some(message) = paths::unfit_folder(&dir) {
                        return Err(check
                            .error(d.span(), &format!("etcd.{key}"), message)
                            .with_hint(
                            "keep etcd's data in a folder of its own, such as /data/k8s/etcd/data",
                        ));
                    }
                    Ok(dir)
                }
            }
        };
        let data_dir = dir(raw.data_dir, "data-dir", DEFAULT_DATA_DIR)?;
        let wal_dir = dir(raw.wal_dir, "wal-dir", DEFAULT_WAL_DIR)?;
        let inside = paths::inside;
        if inside(&wal_dir, &data_dir) || inside(&data_dir, &wal_dir) {
            return Err(Error::input(
                check.whole_file("etcd.wal-dir"),
                format!("`{wal_dir}` and the data dir `{data_dir}` overlap"),
            )
            .with_hint("give the WAL a folder of its own beside the data dir, as the tutorial's /data/k8s/etcd/{data,wal}"));
        }
        // No other component's work dir may hold etcd's data, or be held by it: an
        // uninstall --purge of that component would take the data with it. (The folders
        // install.sh writes into are `unfit_folder`'s.)
        let owned: Vec<(String, String)> = crate::component::all()
            .iter()
            .filter(|c| c.data_dirs.is_empty())
            .map(|c| {
                (
                    c.work_dir(&context.cluster.k8s_dir),
                    format!("{}'s work dir", c.name),
                )
            })
            .collect();
        for (key, path) in [("data-dir", &data_dir), ("wal-dir", &wal_dir)] {
            for (other, what) in &owned {
                if inside(path, other) || inside(other, path) {
                    return Err(Error::input(
                        check.whole_file(&format!("etcd.{key}")),
                        format!("`{path}` overlaps {what} `{other}`"),
                    )
                    .with_hint(
                        "keep etcd's data in a folder of its own, such as /data/k8s/etcd/data",
                    ));
                }
            }
        }
        let cluster_token = check.plain_name(
            raw.cluster_token,
            "etcd.cluster-token",
            DEFAULT_CLUSTER_TOKEN,
        )?;
        let joining = context.joining.to_vec();
        debug_assert!(joining.iter().all(|j| nodes.iter().any(|n| &n.name == j)));
        settings.extra_ports = vec![peer_port];
        settings.data_dirs = vec![data_dir.clone(), wal_dir.clone()];
        settings.release = Some(minor);
        if let Some(etcdctl) = &etcdctl {
            settings.tools.push(("etcdctl", etcdctl.clone()));
        }
        settings.own = Some(std::sync::Arc::new(EtcdSettings {
            minor,
            etcdctl,
            client_port,
            peer_port,
            data_dir,
            wal_dir,
            cluster_token,
            joining,
        }));
        Ok(settings)
    }
}
