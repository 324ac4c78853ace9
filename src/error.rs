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
            _ => None,
        }
    }

    /// 2 for input the user must fix, 1 for failures while doing the work.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Toml { .. } | Error::Pki { .. } => 2,
            Error::Template { .. }
            | Error::Io(_)
            | Error::Crypto { .. }
            | Error::Registry { .. } => 1,
        }
    }
}
