//! Rules that tie the components' sections to the cluster and the nodes: the service
//! range the API server takes, the API address in its serving certificate, and the
//! rows' keys in `[[nodes]]`.

use super::{
    component, BTreeMap, Error, Inventory, IpAddr, IpNet, KubeVersion, Range, RawNode, Result, San,
    SectionCheck, Validator,
};

/// Whether the API server of `version` takes `net` as `--service-cluster-ip-range`, as
/// a (message, hint) pair when it does not. Its own rules (v1.20 and on):
/// `validateMaxCIDRRange` in its cmd/…/app/options/validation.go refuses more
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
                "`{net}` is larger than {} {version} takes: an {family} service range needs a prefix of /{} or longer",
                component::api_server_name(),
                bits - MAX_HOST_BITS
            ),
            hint,
        ));
    }
    if host_bits < MIN_ADDRESSES.trailing_zeros() as u8 {
        return Err((
            format!(
                "`{net}` holds {} address(es); {} needs at least {MIN_ADDRESSES} (an {family} prefix of /{} or shorter)",
                1u32 << host_bits,
                component::api_server_name(),
                bits - MIN_ADDRESSES.trailing_zeros() as u8
            ),
            hint,
        ));
    }
    Ok(())
}

/// The host of a URL [`check_https_url`] accepted, without brackets.
pub(super) fn host_of_url(url: &str) -> Option<&str> {
    let authority = url.strip_prefix("https://")?.split('/').next()?;
    match authority.strip_prefix('[') {
        Some(inner) => inner.split(']').next(),
        None => authority.split(':').next(),
    }
}

impl Validator<'_> {
    /// With a component serving the API built, the `apiserver` the others reach must be
    /// a name its serving certificate carries, or their TLS check fails on every master.
    pub(super) fn apiserver_in_certificate(
        &self,
        inv: &Inventory,
        span: Option<Range<usize>>,
    ) -> Result<()> {
        let serving = inv.components.iter().find(|s| s.component.serves_api);
        let (Some(serving), Some(span)) = (serving, span) else {
            return Ok(());
        };
        let name = serving.component.name;
        for node in &inv.nodes {
            let url = inv.apiserver_for(node);
            let Some(host) = host_of_url(&url) else {
                continue;
            };
            let wanted = match host.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip.to_canonical()),
                Err(_) => San::Dns(host.to_ascii_lowercase()),
            };
            let names = inv.api_names(node);
            if !names.contains(&wanted) {
                let names: Vec<String> = names.iter().map(San::to_string).collect();
                return Err(Error::input(
                    self.at(span, "cluster.apiserver"),
                    format!(
                        "`{host}` is not a name of {name}'s serving certificate, which on `{}` holds {}",
                        node.name,
                        names.join(", ")
                    ),
                )
                .with_hint(format!("add `{host}` to `extra-sans` under [{name}] (a load balancer's name or address), or remove `apiserver` so that the other components talk to their own master's API server")));
            }
        }
        Ok(())
    }

    /// By row name, the nodes whose member joins a formed cluster, from the rows'
    /// [`NodeState`] keys.
    pub(super) fn joining(&self, raw: &[RawNode]) -> Result<BTreeMap<&'static str, Vec<String>>> {
        let mut joining: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for c in component::all() {
            let Some(state) = c.node_state else { continue };
            let mut joins = Vec::new();
            for (i, node) in raw.iter().enumerate() {
                let Some(value) = node.states.get(c.name) else {
                    continue;
                };
                match value.get_ref().as_str() {
                    v if v == state.bootstraps => {}
                    v if v == state.joins => joins.push(node.name.get_ref().clone()),
                    other => {
                        return Err(self
                            .err(
                                value,
                                &format!("nodes[{i}].{}", state.key),
                                format!("unknown value `{other}`"),
                            )
                            .with_hint(state.hint))
                    }
                }
            }
            if !joins.is_empty() && joins.len() == raw.len() {
                return Err(Error::input(
                    self.whole_file("nodes"),
                    format!(
                        "every node has `{} = \"{}\"`: no member is left to bootstrap or to join",
                        state.key, state.joins
                    ),
                ));
            }
            joining.insert(c.name, joins);
        }
        Ok(joining)
    }
}
