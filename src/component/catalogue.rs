//! Which flags each release of a component has: the per-component catalogues
//! (`kcm-flags.tsv`, `ks-flags.tsv`, one row per flag with the first and last minor release
//! that has it and a source), and the check `extra-args` must pass. Depends only on the
//! component rows and versions, so validation can use it without reaching into later
//! stages.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::component::Component;
use crate::version::{KubeVersion, OLDEST_MINOR};

/// First and last minor release that has a flag; `None` last means still present.
#[derive(Debug, Clone, Copy)]
struct Lifetime {
    first: u32,
    last: Option<u32>,
}

type Catalogue = BTreeMap<&'static str, Lifetime>;

fn parse(text: &'static str) -> Catalogue {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next()?;
            let first = cols
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(OLDEST_MINOR);
            let last = cols.next().and_then(|c| c.parse().ok());
            Some((name, Lifetime { first, last }))
        })
        .collect()
}

/// `c`'s catalogue, parsed once per row.
fn catalogue(c: &Component) -> &'static Catalogue {
    static CATALOGUES: Mutex<BTreeMap<&'static str, &'static Catalogue>> =
        Mutex::new(BTreeMap::new());
    let mut all = CATALOGUES.lock().unwrap_or_else(PoisonError::into_inner);
    all.entry(c.name)
        .or_insert_with(|| Box::leak(Box::new(parse(c.catalogue))))
}

/// Whether `version` of `c` has `--name`, as a user-facing (message, hint) pair when it
/// does not. `section` is the component's inventory section, for the hint.
pub fn check_extra_arg(
    c: &Component,
    name: &str,
    version: &KubeVersion,
) -> Result<(), (String, String)> {
    check_flag(c, name, version.profile_minor(), &version.to_string())
}

/// [`check_extra_arg`] for a component versioned by itself (etcd): `minor` is the minor
/// release of its `series`, `shown` how the inventory names the version.
pub fn check_flag(
    c: &Component,
    name: &str,
    minor: u32,
    shown: &str,
) -> Result<(), (String, String)> {
    let version = shown;
    let series = c.version_series;
    if let Some((_, key)) = c.managed_flags.iter().find(|(flag, _)| *flag == name) {
        let hint = if key.is_empty() {
            format!(
                "kube-bundle writes `--{name}` for {}; it cannot be overridden",
                c.name
            )
        } else {
            format!("set `{}.{key}` instead", c.name)
        };
        return Err((format!("`--{name}` is set by kube-bundle"), hint));
    }
    let Some(life) = catalogue(c).get(name) else {
        return Err((
            format!("{} has no flag `--{name}`", c.name),
            format!("check the spelling against `{} --help` of {version}; names are written without leading dashes", c.name),
        ));
    };
    if minor < life.first {
        return Err((
            format!(
                "`--{name}` does not exist in {} {version}; it was added in {series}{}",
                c.name, life.first
            ),
            if series == "1." {
                "remove it or raise `cluster.kubernetes-version`".into()
            } else {
                format!("remove it or raise `{}.version`", c.name)
            },
        ));
    }
    if let Some(last) = life.last.filter(|last| minor > *last) {
        return Err((
            format!(
                "`--{name}` does not exist in {} {version}; it was removed after {series}{last}",
                c.name
            ),
            "remove it from `extra-args`".into(),
        ));
    }
    Ok(())
}

/// Every catalogue flag of `c` present in one minor release.
pub fn known_in(c: &Component, minor: u32) -> impl Iterator<Item = &'static str> {
    catalogue(c)
        .iter()
        .filter(move |(_, l)| l.first <= minor && l.last.is_none_or(|last| minor <= last))
        .map(|(name, _)| *name)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use crate::component::{KUBE_CONTROLLER_MANAGER as KCM, KUBE_SCHEDULER as KS};

    fn v(s: &str) -> KubeVersion {
        KubeVersion::parse(s).unwrap()
    }

    #[test]
    fn lifetimes_follow_the_reference_table() {
        assert!(check_extra_arg(&KCM, "port", &v("1.21")).is_ok());
        assert!(check_extra_arg(&KCM, "port", &v("1.24"))
            .unwrap_err()
            .0
            .contains("removed after 1.23"));
        assert!(
            check_extra_arg(&KCM, "cluster-signing-duration", &v("1.18"))
                .unwrap_err()
                .0
                .contains("added in 1.19")
        );
        assert!(check_extra_arg(&KCM, "no-such-flag", &v("1.20"))
            .unwrap_err()
            .0
            .contains("kube-controller-manager has no flag"));
        assert!(check_extra_arg(&KCM, "secure-port", &v("1.20"))
            .unwrap_err()
            .1
            .contains("kube-controller-manager.secure-port"));
        // The scheduler's own history: insecure flags gone in 1.24, policy flags in 1.23.
        assert!(check_extra_arg(&KS, "address", &v("1.23")).is_ok());
        assert!(check_extra_arg(&KS, "address", &v("1.24")).is_err());
        assert!(check_extra_arg(&KS, "policy-config-file", &v("1.22")).is_ok());
        assert!(check_extra_arg(&KS, "policy-config-file", &v("1.23")).is_err());
        assert!(check_extra_arg(&KS, "config", &v("1.20"))
            .unwrap_err()
            .1
            .contains("cannot be overridden"));
        // A controller-manager flag is not a scheduler flag.
        assert!(check_extra_arg(&KS, "cluster-signing-duration", &v("1.20")).is_err());
    }

    #[test]
    fn every_catalogue_row_parses() {
        for c in crate::component::ALL {
            let rows = c
                .catalogue
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .count();
            assert_eq!(catalogue(c).len(), rows, "{}", c.name);
            for line in c.catalogue.lines().skip(1).filter(|l| !l.trim().is_empty()) {
                let cols: Vec<&str> = line.split('\t').collect();
                assert_eq!(cols.len(), 4, "{}: {line}", c.name);
                assert!(cols[1].parse::<u32>().is_ok(), "{}: {line}", c.name);
                assert!(
                    !cols[3].trim().is_empty(),
                    "{}: {line} has no source",
                    c.name
                );
            }
        }
    }
}
