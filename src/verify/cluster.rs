//! Checks across the bundles of one build: shared keys, the flags every master shares,
//! and one consistent etcd cluster.

use super::*;

/// One bundle's etcd member, from its unit's flags.
#[derive(Clone)]
pub(super) struct EtcdMember {
    pub(super) name: String,
    /// `--initial-advertise-peer-urls`.
    pub(super) peer_url: String,
    /// `--advertise-client-urls`.
    pub(super) client_urls: Vec<String>,
    /// `--initial-cluster`, as (name, peer URL) pairs.
    pub(super) cluster: Vec<(String, String)>,
    /// `--initial-cluster-state`: `new` (bootstraps) or `existing` (joins).
    pub(super) state: String,
    pub(super) token: String,
}

/// Every master must trust the same CAs (etcd's too), sign tokens with the same key (sa.pub
/// is checked against sa.key in each bundle) and encrypt Secrets with the same key.
pub(super) fn shared_keys(bundles: &[Bundle], findings: &mut Vec<Finding>) {
    let Some(first) = bundles.first() else { return };
    for (path, what) in [
        (CERT_CA, "CA"),
        (SA_KEY, "service-account key"),
        (SIGNER_CERT, "CSR signing CA"),
        (FRONT_PROXY_CA, "front-proxy CA"),
        (CLIENT_CA, "client CA bundle"),
        (ENCRYPTION_CONFIG, "encryption config"),
        (ETCD_CA, "etcd CA"),
    ] {
        let reference = first.files.get(path).map(|e| &e.sha256);
        for other in &bundles[1..] {
            let here = other.files.get(path).map(|e| &e.sha256);
            let message = match (here, reference) {
                (a, b) if a == b => continue,
                (None, Some(_)) => format!(
                    "is missing, but {} carries the {what}: every master must share it",
                    first.name
                ),
                (Some(_), None) => format!(
                    "the {what} is not in {}: every master must share it",
                    first.name
                ),
                _ => format!(
                    "the {what} differs from {}'s: every master must share it",
                    first.name
                ),
            };
            findings.push(Finding {
                bundle: other.name.clone(),
                file: path.to_string(),
                message,
            });
        }
    }
}

/// Every master gives [`shared_flags`] the same values: one service range, one token
/// issuer. Findings name the first bundle that carries the component.
pub(super) fn same_flags(seen: &[(&Bundle, Seen)], findings: &mut Vec<Finding>) {
    for (c, flag) in shared_flags() {
        let unit = in_bundle(&c.unit_path());
        let values: Vec<(&Bundle, &str)> = seen
            .iter()
            .flat_map(|(b, s)| {
                s.shared
                    .iter()
                    .filter(|(file, f, _)| *file == unit && *f == flag)
                    .map(move |(_, _, v)| (*b, v.as_str()))
            })
            .collect();
        let Some((first, reference)) = values.first() else {
            continue;
        };
        for (bundle, value) in &values[1..] {
            if value != reference {
                findings.push(Finding {
                    bundle: bundle.name.clone(),
                    file: unit.clone(),
                    message: escape(&format!(
                        "--{flag} is `{value}`, but `{reference}` in {}: every master must use the same",
                        first.name
                    )),
                });
            }
        }
    }
}

/// The etcd members of bundles given together form one cluster: one token, distinct
/// names, peer URLs that agree with what each member advertises, one initial cluster
/// among the members that bootstrap it (state `new`) that lists every one of them, and
/// for a member that joins (state `existing`) that cluster and itself. kube-apiserver's
/// `--etcd-servers` name its own member, and on the host of a given bundle's member the
/// client URL that member advertises. Findings name the bundle compared with.
pub(super) fn etcd_cluster(
    seen: &[(&Bundle, Seen)],
    findings: &mut Vec<Finding>,
    warnings: &mut Vec<Finding>,
) {
    let rows = component::all();
    let unit_of = |pick: fn(&Component) -> bool| {
        rows.iter()
            .find(|c| pick(c))
            .map(|c| in_bundle(&c.unit_path()))
            .unwrap_or_default()
    };
    let unit = unit_of(is_member);
    let apiserver_unit = unit_of(|c| c.serves_api);
    let members: Vec<(&Bundle, &EtcdMember)> = seen
        .iter()
        .filter_map(|(b, s)| s.etcd.as_ref().map(|m| (*b, m)))
        .collect();
    let mut find = |bundle: &Bundle, file: &str, message: String| {
        findings.push(Finding {
            bundle: bundle.name.clone(),
            file: file.to_string(),
            message: escape(&message),
        })
    };
    let Some((first, reference)) = members.first() else {
        return;
    };
    for (i, (bundle, member)) in members.iter().enumerate() {
        if i > 0 && member.token != reference.token {
            find(
                bundle,
                &unit,
                format!(
                    "--initial-cluster-token `{}` differs from `{}` in {}: the members of one cluster share it",
                    member.token, reference.token, first.name
                ),
            );
        }
        if let Some((other, _)) = members[..i].iter().find(|(_, m)| m.name == member.name) {
            find(
                bundle,
                &unit,
                format!(
                    "--name `{}` is also {}'s: every member needs a name of its own",
                    member.name, other.name
                ),
            );
        }
        for (name, url) in &member.cluster {
            for (other, m) in &members {
                if m.name != *name || std::ptr::eq(*m, *member) {
                    continue;
                }
                if m.peer_url != *url {
                    find(
                        bundle,
                        &unit,
                        format!(
                            "--initial-cluster gives `{name}` the peer URL {url}, but {} advertises {}",
                            other.name, m.peer_url
                        ),
                    );
                } else if member.state == "new" && m.state == "existing" {
                    find(
                        bundle,
                        &unit,
                        format!(
                            "--initial-cluster lists `{name}`, which joins the formed cluster later (state `existing` in {})",
                            other.name
                        ),
                    );
                }
            }
        }
    }
    let sorted = |m: &EtcdMember| {
        let mut c = m.cluster.clone();
        c.sort();
        c.dedup();
        c
    };
    let bootstrap: Vec<&(&Bundle, &EtcdMember)> =
        members.iter().filter(|(_, m)| m.state == "new").collect();
    if let Some((ref_bundle, ref_member)) = bootstrap.first() {
        let ref_cluster = sorted(ref_member);
        for (bundle, member) in &bootstrap[1..] {
            if sorted(member) != ref_cluster {
                find(
                    bundle,
                    &unit,
                    format!(
                        "--initial-cluster differs from {}'s: the members that bootstrap a cluster must list the same members",
                        ref_bundle.name
                    ),
                );
            }
            if !ref_cluster.contains(&(member.name.clone(), member.peer_url.clone())) {
                find(
                    bundle,
                    &unit,
                    format!(
                        "this member bootstraps the cluster (state `new`), but {}'s --initial-cluster does not list `{}={}`",
                        ref_bundle.name, member.name, member.peer_url
                    ),
                );
            }
        }
        for (bundle, member) in members.iter().filter(|(_, m)| m.state == "existing") {
            let missing: Vec<String> = ref_cluster
                .iter()
                .filter(|entry| !member.cluster.contains(entry))
                .map(|(n, u)| format!("{n}={u}"))
                .collect();
            if !missing.is_empty() {
                find(
                    bundle,
                    &unit,
                    format!(
                        "--initial-cluster of this joining member lacks {}, which bootstrap the cluster ({})",
                        missing.join(","),
                        ref_bundle.name
                    ),
                );
            }
        }
    }
    // The cluster as the bundles given know it: their members, with the client URLs
    // they advertise, and every member their --initial-cluster names.
    let named: Vec<(&str, &str, &Bundle)> = members
        .iter()
        .flat_map(|(b, m)| {
            m.cluster
                .iter()
                .map(move |(n, u)| (n.as_str(), u.as_str(), *b))
        })
        .collect();
    let host_of = |url: &str| url_host(url).map(|(_, host, _)| host.to_string());
    for (bundle, s) in seen {
        let Some(servers) = &s.etcd_servers else {
            continue;
        };
        let Some(own) = &s.etcd else { continue };
        if !own.client_urls.iter().any(|u| servers.contains(u)) {
            find(
                bundle,
                &apiserver_unit,
                format!(
                    "--etcd-servers does not list this node's member ({})",
                    own.client_urls.join(",")
                ),
            );
        }
        // Every member of a kube-bundle cluster serves clients on the same port.
        let client_url = |peer_url: &str| {
            let port = own
                .client_urls
                .first()
                .and_then(|u| url_host(u))
                .map(|(_, _, p)| p)?;
            let (base, _) = peer_url.rsplit_once(':')?;
            Some(format!("{base}:{port}"))
        };
        let listed: Vec<Option<String>> = servers.iter().map(|u| host_of(u)).collect();
        for (server, host) in servers.iter().zip(&listed) {
            if let Some((other, m)) = members
                .iter()
                .find(|(_, m)| host.is_some() && host_of(&m.peer_url) == *host)
            {
                if !m.client_urls.contains(server) {
                    find(
                        bundle,
                        &apiserver_unit,
                        format!(
                            "--etcd-servers lists {server}, but the member on that host ({}) advertises the client URL {}",
                            other.name,
                            m.client_urls.join(",")
                        ),
                    );
                }
                continue;
            }
            if let Some((name, peer_url, from)) = named
                .iter()
                .find(|(_, u, _)| host.is_some() && host_of(u) == *host)
            {
                let want = client_url(peer_url);
                if want.as_deref() != Some(server.as_str()) {
                    find(
                        bundle,
                        &apiserver_unit,
                        format!(
                            "--etcd-servers lists {server}, but member `{name}` ({}'s --initial-cluster) serves clients at {}",
                            from.name,
                            want.unwrap_or_default()
                        ),
                    );
                }
                continue;
            }
            // A member that joins later is in no bootstrapping member's --initial-cluster:
            // alone, a bundle cannot tell it from a wrong host.
            let message = format!(
                "--etcd-servers lists {server}, which is no member of the etcd cluster: no bundle given names it in --initial-cluster or advertises it"
            );
            if seen.len() == 1 {
                warnings.push(Finding {
                    bundle: bundle.name.clone(),
                    file: apiserver_unit.clone(),
                    message: escape(&format!(
                        "{message} (a member that joins later? verify every bundle together to tell)"
                    )),
                });
            } else {
                find(
                    bundle,
                    &apiserver_unit,
                    format!(
                        "{message}; if a member joins later, verify its bundle together with these"
                    ),
                );
            }
        }
        let mut required: Vec<(&str, Option<String>, String)> = members
            .iter()
            .map(|(b, m)| {
                let shown = format!("{}, the member of {}", m.client_urls.join(","), b.name);
                (m.name.as_str(), host_of(&m.peer_url), shown)
            })
            .collect();
        for (name, peer_url, from) in &named {
            if !required.iter().any(|(n, _, _)| n == name) {
                let url = client_url(peer_url).unwrap_or_default();
                required.push((
                    name,
                    host_of(peer_url),
                    format!("{url}, in {}'s --initial-cluster", from.name),
                ));
            }
        }
        for (name, host, shown) in required {
            if name != own.name && host.is_some() && !listed.contains(&host) {
                find(
                    bundle,
                    &apiserver_unit,
                    format!("--etcd-servers does not list member `{name}` of the etcd cluster ({shown})"),
                );
            }
        }
    }
}
