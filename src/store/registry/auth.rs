//! Who the client is: the registry's bearer-token challenge, Docker's credentials file,
//! and the CA certificates it trusts.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ureq::http;

use super::transport::encode_query;
use super::{Credentials, Registry};
use crate::error::{Error, Result};

/// `Bearer realm="…",service="…",scope="…"` → ("Bearer", [(key, value)]).
pub(super) fn parse_challenge(text: &str) -> (String, Vec<(String, String)>) {
    let text = text.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_string(), params)
}

pub(super) fn read_certificates(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let bytes = fs_err::read(path)?;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&bytes)
        .filter_map(std::result::Result::ok)
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        return Err(Error::input(
            format!("--ca-file `{}`", path.display()),
            "holds no PEM certificate",
        ));
    }
    Ok(certs)
}

/// The system's CA bundle, as curl on the same machine would use it.
pub(super) fn system_certificates() -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let candidates = [
        std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
        Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
        Some(PathBuf::from("/etc/pki/tls/certs/ca-bundle.crt")),
    ];
    for path in candidates.into_iter().flatten() {
        if path.is_file() {
            return read_certificates(&path);
        }
    }
    Ok(Vec::new())
}

pub(super) fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The `auths` entry for `registry` in a docker config file: `auth` (base64 `user:pass`)
/// or `username` and `password`. Keys may carry a scheme and a path, as `docker login`
/// writes them for Docker Hub.
pub(super) fn docker_credentials(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let text = fs_err::read_to_string(path)?;
    let bad = |m: String| Error::input(format!("`{}`", path.display()), m);
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    for (key, entry) in auths {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        if host != registry {
            continue;
        }
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("auths.\"{key}\".auth is not base64: {e}")))?;
            let pair = String::from_utf8(decoded)
                .map_err(|_| bad(format!("auths.\"{key}\".auth is not UTF-8")))?;
            let (u, p) = pair
                .split_once(':')
                .ok_or_else(|| bad(format!("auths.\"{key}\".auth is not `user:password`")))?;
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
        let user = entry.get("username").and_then(|u| u.as_str());
        let pass = entry.get("password").and_then(|p| p.as_str());
        if let (Some(u), Some(p)) = (user, pass) {
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
    }
    Ok(None)
}

impl Registry {
    /// The Authorization header that answers a `WWW-Authenticate` challenge.
    pub(super) fn answer(&self, challenge: &str, what: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self.credentials.as_ref().map(|c| {
            let pair = format!("{}:{}", c.username, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.ok_or_else(|| self.no_credentials(what)),
            "bearer" => {
                let realm = params
                    .iter()
                    .find(|(k, _)| k == "realm")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        Error::registry(what, "the registry's Bearer challenge names no realm")
                    })?;
                let token_what = format!("{what}: token from {realm}");
                let server = self.allowed(&realm, &token_what)?;
                // The registry's own origin; any loopback one under --plain-http, where
                // every connection stays on this machine; or the one the user named.
                let trusted = server == self.origin
                    || self.plain_http
                    || self.token_server.as_ref() == Some(&server);
                let mut query = Vec::new();
                for (k, v) in &params {
                    if k == "service" || k == "scope" {
                        query.push(format!("{k}={}", encode_query(v)));
                    }
                }
                let url = if query.is_empty() {
                    realm.clone()
                } else {
                    let sep = if realm.contains('?') { '&' } else { '?' };
                    format!("{realm}{sep}{}", query.join("&"))
                };
                let mut req = http::Request::builder().method("GET").uri(&url);
                if let (true, Some(b)) = (trusted, &basic) {
                    req = req.header("authorization", b.as_str());
                }
                let req = req
                    .body(())
                    .map_err(|e| Error::registry(what, e.to_string()))?;
                let mut resp = self.run(req, &token_what).map_err(|f| f.error)?;
                if resp.status().as_u16() != 200 {
                    let err = self.failure_from(&token_what, &server.to_string(), resp);
                    return Err(if !trusted && basic.is_some() {
                        err.with_hint(format!(
                            "the token server `{server}` is not the registry, so it was not \
                             given the credentials; if it is the registry's own token server, \
                             pass --token-server {server}"
                        ))
                    } else {
                        err
                    });
                }
                let body = self.read_document(&mut resp, 1 << 20, &token_what)?;
                let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    Error::registry(what, format!("the token server's answer is not JSON: {e}"))
                })?;
                let token = json
                    .get("token")
                    .or_else(|| json.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| Error::registry(what, "the token server sent no token"))?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(Error::registry(
                what,
                format!("the registry asks for authentication kube-bundle does not speak: `{challenge}`"),
            )),
        }
    }

    pub(super) fn no_credentials(&self, what: &str) -> Error {
        Error::registry(what, format!("`{}` asks for credentials", self.registry)).with_hint(
            "pass --username USER --password-stdin, or log in so that ~/.docker/config.json has an `auths` entry for it",
        )
    }
}
