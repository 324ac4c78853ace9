//! Kubernetes versions as the inventory states them, and which checked flag profile a
//! version maps to. It knows nothing about individual flags (see `flags`).

use std::fmt;

/// Oldest minor release with a checked flag profile.
pub const OLDEST_MINOR: u32 = 16;
/// Newest minor release with a checked flag profile; newer ones reuse it with a warning.
pub const NEWEST_MINOR: u32 = 34;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub minor: u32,
    pub patch: Option<u32>,
}

impl KubeVersion {
    /// Parses `1.20`, `1.20.2` or `v1.20.2`. Returns a message fit for the user on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bare = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let parts: Vec<&str> = bare.split('.').collect();
        let number = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (major, minor, patch) = match parts.as_slice() {
            [major, minor] => (number(major), number(minor), None),
            [major, minor, patch] => (number(major), number(minor), Some(number(patch))),
            _ => (None, None, None),
        };
        let (Some(major), Some(minor)) = (major, minor) else {
            return Err(format!(
                "`{text}` is not a Kubernetes version like `1.20.2`"
            ));
        };
        let patch = match patch {
            None => None,
            Some(Some(p)) => Some(p),
            Some(None) => {
                return Err(format!(
                    "`{text}` is not a Kubernetes version like `1.20.2`"
                ))
            }
        };
        if major != 1 {
            return Err(format!("`{text}`: only Kubernetes 1.x is supported"));
        }
        if minor < OLDEST_MINOR {
            return Err(format!(
                "Kubernetes `{text}` is older than 1.{OLDEST_MINOR}, the oldest release with a checked flag profile"
            ));
        }
        Ok(KubeVersion { minor, patch })
    }

    /// The minor release whose flag profile applies.
    pub fn profile_minor(&self) -> u32 {
        self.minor.min(NEWEST_MINOR)
    }

    /// Set when the version is newer than every checked profile.
    pub fn profile_warning(&self) -> Option<String> {
        (self.minor > NEWEST_MINOR).then(|| {
            format!(
                "Kubernetes {self} is newer than the newest checked flag profile; using the 1.{NEWEST_MINOR} profile"
            )
        })
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "1.{}.{}", self.minor, p),
            None => write!(f, "1.{}", self.minor),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!(
            KubeVersion::parse("1.20.2").unwrap(),
            KubeVersion {
                minor: 20,
                patch: Some(2)
            }
        );
        assert_eq!(KubeVersion::parse("v1.34").unwrap().minor, 34);
        assert_eq!(KubeVersion::parse("1.16.0").unwrap().to_string(), "1.16.0");
    }

    #[test]
    fn rejects_old_and_malformed_versions() {
        assert!(KubeVersion::parse("1.15.3")
            .unwrap_err()
            .contains("older than 1.16"));
        for bad in ["", "1", "1.x", "2.0", "1.20.2.1", "1..2", "1.20.-1"] {
            assert!(KubeVersion::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn newer_versions_use_the_newest_profile_with_a_warning() {
        let v = KubeVersion::parse("1.36.1").unwrap();
        assert_eq!(v.profile_minor(), 34);
        assert!(v.profile_warning().unwrap().contains("1.34 profile"));
        assert!(KubeVersion::parse("1.34.0")
            .unwrap()
            .profile_warning()
            .is_none());
    }
}
