//! The library's error type. Every variant names the file or field at fault and, where the
//! user can act, carries a hint; this module must not print anything or pick exit codes
//! beyond [`Error::exit_code`].

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory (or another input file) is malformed or asks for something invalid.
    #[error("{location}: {message}")]
    Input {
        location: String,
        message: String,
        hint: Option<String>,
    },

    /// TOML syntax or type error; the toml crate's message carries line and column.
    #[error("`{}`: {source}", path.display())]
    Toml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },

    /// Certificates or keys that exist but cannot be used.
    #[error("{location}: {message}")]
    Pki {
        location: String,
        message: String,
        hint: Option<String>,
    },

    #[error("template `{name}`: {message}")]
    Template { name: String, message: String },

    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// An I/O failure while doing `action` to `path`, for paths the user knows (a
    /// bundle in `dist/`) where the failing call only knew a staging name.
    #[error("{action} `{}`: {}", path.display(), innermost(source))]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Another build holds pki/ or the output folder.
    #[error("`{}` is in use by another kube-bundle build (waited {waited}s for it)", path.display())]
    Locked { path: PathBuf, waited: u64 },

    #[error("{what}: {message}")]
    Crypto { what: String, message: String },

    /// A registry refused a request or could not be reached; `message` is the registry's.
    #[error("{what}: {message}")]
    Registry {
        what: String,
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    pub fn input(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            location: location.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn pki(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Pki {
            location: location.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn registry(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Registry {
            what: what.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn crypto(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Crypto {
            what: what.into(),
            message: err.to_string(),
        }
    }

    /// Names the action and path of an I/O failure; other errors are returned unchanged.
    pub fn doing(self, action: &'static str, path: impl Into<PathBuf>) -> Self {
        match self {
            Error::Io(source) => Error::File {
                action,
                path: path.into(),
                source,
            },
            other => other,
        }
    }

    /// Adds a `hint:` line to input, PKI and registry errors; other variants are returned unchanged.
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        if let Error::Input { hint, .. } | Error::Pki { hint, .. } | Error::Registry { hint, .. } =
            &mut self
        {
            *hint = Some(text.into());
        }
        self
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. } | Error::Pki { hint, .. } | Error::Registry { hint, .. } => {
                hint.as_deref()
            }
            Error::Locked { .. } => {
                Some("run one build at a time; a build that was killed has already let go")
            }
            _ => None,
        }
    }

    /// 2 for input the user must fix, 1 for failures while doing the work.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Toml { .. } | Error::Pki { .. } => 2,
            Error::Template { .. }
            | Error::Io(_)
            | Error::File { .. }
            | Error::Locked { .. }
            | Error::Crypto { .. }
            | Error::Registry { .. } => 1,
        }
    }
}

/// The last error in a chain: the operating system's own words (`No space left on device`).
fn innermost(err: &std::io::Error) -> String {
    let mut last: &dyn std::error::Error = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
