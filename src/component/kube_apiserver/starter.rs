//! kube-apiserver's section of the inventory `init` writes, with the tutorial's
//! NODE_PORT_RANGE.

use crate::error::{Error, Result};
use crate::model::{Starter, StarterEnv};

use super::DEFAULT_NODE_PORT_RANGE;

pub(super) const STARTER: Starter = Starter {
    vars: &["NODE_PORT_RANGE"],
    section,
};

fn section(env: &dyn StarterEnv, _kubernetes_version: &str) -> Result<String> {
    let range = env.scalar("NODE_PORT_RANGE")?;
    if let Some(range) = &range {
        let ok = range
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
            .is_some_and(|(a, b)| a > 0 && a <= b);
        if !ok {
            return Err(Error::input(
                env.at("NODE_PORT_RANGE"),
                format!("`{range}` is not a port range like `30000-32767`"),
            ));
        }
    }
    let range = range.as_deref().unwrap_or(DEFAULT_NODE_PORT_RANGE);
    Ok(format!(
        r#"
# kube-apiserver on every master, as the tutorial's chapter 05-2, talking to the etcd
# members above. For an etcd of your own, remove [etcd] and set `etcd-servers`, and
# `etcd-ca`, `etcd-cert` and `etcd-key` for its CA and the apiserver's client pair.
[kube-apiserver]
# binary = "/opt/k8s/bin/kube-apiserver"            # carried in each bundle when set
secure-port = 6443
# extra-sans = ["lb.example.com"]                     # a load balancer's name or VIP
service-node-port-range = {range}
[kube-apiserver.extra-args]
# v = 4
"#,
        range = toml::Value::String(range.to_string()),
    ))
}
