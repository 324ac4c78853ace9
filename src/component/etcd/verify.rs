//! etcd's own checks in `verify`: its unit makes this node's member of one cluster, and
//! the members of the bundles given together, with kube-apiserver's `--etcd-servers`,
//! form one consistent cluster.

use std::any::Any;

use super::manifest::{ManifestEtcd, PART};
use super::{paths, ETCD};
use crate::check::{exec_start_words, flag_value, in_bundle, Bundle, Report, Seen};
use crate::manifest::Manifest;
use crate::model::{Checks, Component};
use paths::inside;

pub(super) const CHECKS: Checks = Checks {
    names: None,
    files: None,
    unit: Some(unit),
    flags: None,
    cluster: Some(cluster),
};

/// One bundle's etcd member, from its unit's flags.
#[derive(Clone)]
struct Member {
    name: String,
    /// `--initial-advertise-peer-urls`.
    peer_url: String,
    /// `--advertise-client-urls`.
    client_urls: Vec<String>,
    /// `--initial-cluster`, as (name, peer URL) pairs.
    cluster: Vec<(String, String)>,
    /// `--initial-cluster-state`: `new` (bootstraps) or `existing` (joins).
    state: String,
    token: String,
}

/// What one bundle says about the etcd cluster, for the checks across bundles.
struct Record {
    /// Its member, when the unit could be read.
    member: Option<Member>,
    /// kube-apiserver's `--etcd-servers`, when the bundle carries it.
    servers: Option<Vec<String>>,
}

/// Scheme, host (without brackets) and port of a URL such as `https://[fd00::1]:2379`.
fn url_host(url: &str) -> Option<(&str, &str, &str)> {
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

/// The member of the bundle's etcd unit and, when it carries the component serving the
/// API, that unit's `--etcd-servers`.
fn unit(
    b: &mut dyn Bundle,
    manifest: &Manifest,
    components: &[&'static Component],
) -> Option<Box<dyn Any>> {
    let member = member(b, manifest);
    let servers = components
        .iter()
        .find(|c| c.serves_api)
        .and_then(|api| b.peek(&in_bundle(&api.unit_path())))
        .and_then(|text| {
            let words = exec_start_words(&text);
            let servers = flag_value(&words, "etcd-servers")?;
            Some(servers.split(',').map(str::to_string).collect())
        });
    Some(Box::new(Record { member, servers }))
}

/// etcd's unit, beyond the paths every unit is checked for: it is this node's member
/// (its name, listening and advertising on the node IP, over TLS with the bundled etcd
/// CA), its `--initial-cluster` names it with its own peer URL, and its data and WAL
/// folders are the ones manifest.json records. Returns the member for the checks across
/// bundles.
fn member(b: &mut dyn Bundle, manifest: &Manifest) -> Option<Member> {
    let c = &ETCD;
    let file = in_bundle(&c.unit_path());
    let text = b.text(&file)?;
    let words = exec_start_words(&text);
    if words.is_empty() {
        return None;
    }
    let node_ip = manifest.node_ip.parse::<std::net::IpAddr>().ok();
    let flag = |name: &str| flag_value(&words, name);
    let mut found = Vec::new();
    let dirs = manifest
        .own(PART.key)
        .and_then(|o| o.parse::<ManifestEtcd>().ok());
    match &dirs {
        None => b.find(
            "manifest.json",
            "has no `etcd` object although the bundle carries etcd: the unit's --data-dir and --wal-dir cannot be told from bundle files".into(),
        ),
        Some(dirs) => {
            for (key, want) in [("data-dir", &dirs.data_dir), ("wal-dir", &dirs.wal_dir)] {
                if let Some(unfit) = paths::unfit_folder(want) {
                    b.find("manifest.json", format!("etcd.{key}: {unfit}"));
                } else if let Some(held) = b
                    .paths()
                    .into_iter()
                    .find(|p| p.strip_prefix("rootfs").is_some_and(|p| inside(p, want)))
                {
                    b.find(
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
                b.find(
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
        ("trusted-ca-file", paths::ETCD_CA),
        ("peer-trusted-ca-file", paths::ETCD_CA),
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
                cluster.push((n.to_string(), u.to_string()));
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
        b.find(&file, message);
    }
    let client_urls = flag("advertise-client-urls")
        .unwrap_or_default()
        .split(',')
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    Some(Member {
        name,
        peer_url,
        client_urls,
        cluster,
        state,
        token,
    })
}

/// The etcd members of bundles given together form one cluster: one token, distinct
/// names, peer URLs that agree with what each member advertises, one initial cluster
/// among the members that bootstrap it (state `new`) that lists every one of them, and
/// for a member that joins (state `existing`) that cluster and itself. kube-apiserver's
/// `--etcd-servers` name its own member, and on the host of a given bundle's member the
/// client URL that member advertises. Findings name the bundle compared with.
fn cluster(seen: &[Seen], report: &mut dyn Report) {
    let rows = crate::component::all();
    let unit = in_bundle(&ETCD.unit_path());
    let apiserver_unit = rows
        .iter()
        .find(|c| c.serves_api)
        .map(|c| in_bundle(&c.unit_path()))
        .unwrap_or_default();
    let records: Vec<(&str, &Record)> = seen
        .iter()
        .filter_map(|s| Some((s.bundle, s.record?.downcast_ref::<Record>()?)))
        .collect();
    let members: Vec<(&str, &Member)> = records
        .iter()
        .filter_map(|(b, r)| r.member.as_ref().map(|m| (*b, m)))
        .collect();
    let mut find = |bundle: &str, file: &str, message: String| report.find(bundle, file, message);
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
                    member.token, reference.token, first
                ),
            );
        }
        if let Some((other, _)) = members[..i].iter().find(|(_, m)| m.name == member.name) {
            find(
                bundle,
                &unit,
                format!(
                    "--name `{}` is also {}'s: every member needs a name of its own",
                    member.name, other
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
                            other, m.peer_url
                        ),
                    );
                } else if member.state == "new" && m.state == "existing" {
                    find(
                        bundle,
                        &unit,
                        format!(
                            "--initial-cluster lists `{name}`, which joins the formed cluster later (state `existing` in {other})"
                        ),
                    );
                }
            }
        }
    }
    let sorted = |m: &Member| {
        let mut c = m.cluster.clone();
        c.sort();
        c.dedup();
        c
    };
    let bootstrap: Vec<&(&str, &Member)> =
        members.iter().filter(|(_, m)| m.state == "new").collect();
    if let Some((ref_bundle, ref_member)) = bootstrap.first() {
        let ref_cluster = sorted(ref_member);
        for (bundle, member) in &bootstrap[1..] {
            if sorted(member) != ref_cluster {
                find(
                    bundle,
                    &unit,
                    format!(
                        "--initial-cluster differs from {ref_bundle}'s: the members that bootstrap a cluster must list the same members"
                    ),
                );
            }
            if !ref_cluster.contains(&(member.name.clone(), member.peer_url.clone())) {
                find(
                    bundle,
                    &unit,
                    format!(
                        "this member bootstraps the cluster (state `new`), but {}'s --initial-cluster does not list `{}={}`",
                        ref_bundle, member.name, member.peer_url
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
                        ref_bundle
                    ),
                );
            }
        }
    }
    // The cluster as the bundles given know it: their members, with the client URLs
    // they advertise, and every member their --initial-cluster names.
    let named: Vec<(&str, &str, &str)> = members
        .iter()
        .flat_map(|(b, m)| {
            m.cluster
                .iter()
                .map(move |(n, u)| (n.as_str(), u.as_str(), *b))
        })
        .collect();
    let host_of = |url: &str| url_host(url).map(|(_, host, _)| host.to_string());
    let mut warnings = Vec::new();
    for (bundle, s) in &records {
        let Some(servers) = &s.servers else {
            continue;
        };
        let Some(own) = &s.member else { continue };
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
                            other,
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
                            from,
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
                warnings.push((
                    *bundle,
                    format!(
                        "{message} (a member that joins later? verify every bundle together to tell)"
                    ),
                ));
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
                let shown = format!("{}, the member of {}", m.client_urls.join(","), b);
                (m.name.as_str(), host_of(&m.peer_url), shown)
            })
            .collect();
        for (name, peer_url, from) in &named {
            if !required.iter().any(|(n, _, _)| n == name) {
                let url = client_url(peer_url).unwrap_or_default();
                required.push((
                    name,
                    host_of(peer_url),
                    format!("{url}, in {from}'s --initial-cluster"),
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
    for (bundle, message) in warnings {
        report.warn(bundle, &apiserver_unit, message);
    }
}
