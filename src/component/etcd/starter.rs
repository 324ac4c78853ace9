//! etcd's section of the inventory `init` writes, from the tutorial's ETCD_* variables.

use crate::error::{Error, Result};
use crate::model::{Starter, StarterEnv};

use super::{DEFAULT_DATA_DIR, DEFAULT_WAL_DIR};

pub(super) const STARTER: Starter = Starter {
    vars: &[
        "ETCD_ENDPOINTS",
        "ETCD_NODES",
        "ETCD_DATA_DIR",
        "ETCD_WAL_DIR",
    ],
    section,
};

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `(host, port)` of a member URL in `var`.
fn url_parts(env: &dyn StarterEnv, var: &str, url: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::input(
            env.at(var),
            format!("`{url}` is not a URL like `https://10.0.0.11:2379`"),
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// The one port every member uses in `var`.
fn one_port(env: &dyn StarterEnv, var: &str, ports: &[u16]) -> Result<Option<u16>> {
    match ports.first() {
        Some(first) if ports.iter().all(|p| p == first) => Ok(Some(*first)),
        Some(_) => Err(Error::input(
            env.at(var),
            format!("uses several ports ({ports:?}); every member listens on the same one"),
        )),
        None => Ok(None),
    }
}

/// etcd's members are the masters: ETCD_NODES (`name=https://ip:2380,…`) and
/// ETCD_ENDPOINTS (`https://ip:2379,…`) must name the same nodes and IPs.
fn section(env: &dyn StarterEnv, kubernetes_version: &str) -> Result<String> {
    let node_names: Vec<&str> = env.nodes().iter().map(|(n, _)| n.as_str()).collect();
    let node_ips: Vec<&str> = env.nodes().iter().map(|(_, ip)| ip.as_str()).collect();
    let mut client_port = None;
    let mut peer_port = None;
    if let Some(endpoints) = env.scalar("ETCD_ENDPOINTS")? {
        let parts = endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|u| url_parts(env, "ETCD_ENDPOINTS", u))
            .collect::<Result<Vec<_>>>()?;
        let ips: Vec<&str> = parts.iter().map(|(h, _)| h.as_str()).collect();
        if ips != node_ips {
            return Err(Error::input(
                env.at("ETCD_ENDPOINTS"),
                format!(
                    "names the IPs {} but NODE_IPS is ({})",
                    ips.join(" "),
                    node_ips.join(" ")
                ),
            )
            .with_hint("etcd runs on every master: list one endpoint per NODE_IPS entry, in the same order"));
        }
        let ports: Vec<u16> = parts.iter().map(|(_, p)| *p).collect();
        client_port = one_port(env, "ETCD_ENDPOINTS", &ports)?;
    }
    if let Some(members) = env.scalar("ETCD_NODES")? {
        let mut names = Vec::new();
        let mut ips = Vec::new();
        let mut ports = Vec::new();
        for member in members.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, url)) = member.split_once('=') else {
                return Err(Error::input(
                    env.at("ETCD_NODES"),
                    format!("`{member}` is not `name=https://ip:2380`"),
                ));
            };
            let (host, port) = url_parts(env, "ETCD_NODES", url)?;
            names.push(name.to_string());
            ips.push(host);
            ports.push(port);
        }
        if names != node_names || ips != node_ips {
            let pairs = |names: &[&str], ips: &[&str]| {
                names
                    .iter()
                    .zip(ips)
                    .map(|(n, i)| format!("{n}={i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
            return Err(Error::input(
                env.at("ETCD_NODES"),
                format!(
                    "names the members {} but NODE_NAMES and NODE_IPS are {}",
                    pairs(&names, &ips),
                    pairs(&node_names, &node_ips)
                ),
            )
            .with_hint("etcd runs on every master: one member per node, with its name and IP, in the same order"));
        }
        peer_port = one_port(env, "ETCD_NODES", &ports)?;
    }
    let data_dir = env.scalar("ETCD_DATA_DIR")?;
    let wal_dir = env.scalar("ETCD_WAL_DIR")?;
    Ok(format!(
        r#"
# etcd on every master, as the tutorial's chapter 04: one member per node.
[etcd]
version = {etcd_version}                              # the etcd release you carry: 3.4, 3.5 or 3.6
# binary = "/opt/k8s/bin/etcd"                        # carried in each bundle when set
# etcdctl = "/opt/k8s/bin/etcdctl"                    # for install.sh's snapshots and checks
client-port = {client_port}
peer-port = {peer_port}
data-dir = {data_dir}
wal-dir = {wal_dir}                    # best on another disk than the data
cluster-token = "etcd-cluster-0"
[etcd.extra-args]
# snapshot-count = 50000
"#,
        etcd_version = toml_str(release_for(kubernetes_version)),
        client_port = client_port.unwrap_or(2379),
        peer_port = peer_port.unwrap_or(2380),
        data_dir = toml_str(data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR)),
        wal_dir = toml_str(wal_dir.as_deref().unwrap_or(DEFAULT_WAL_DIR)),
    ))
}

/// The etcd release kubeadm pairs with a Kubernetes release: 3.4 up to 1.21, 3.5 from
/// 1.22, 3.6 from 1.34.
fn release_for(kubernetes_version: &str) -> &'static str {
    match crate::version::KubeVersion::parse(kubernetes_version).map(|v| v.minor) {
        Ok(..=21) => "3.4",
        Ok(22..=33) => "3.5",
        Ok(_) => "3.6",
        Err(_) => "3.5",
    }
}
