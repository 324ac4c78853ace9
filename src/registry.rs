//! A small synchronous client for the OCI distribution API, over ureq with rustls: the
//! few calls `push` and `pull` need (HEAD and upload a blob, download a blob while checking
//! its digest, put and get a manifest), authentication by the registry's
//! `WWW-Authenticate` challenge (Basic, or a Bearer token from the realm it names), retries
//! with backoff on connection errors and 5xx, and credentials from `--username` or
//! `~/.docker/config.json`. Bodies stream in both directions; nothing here holds a blob in
//! memory. It knows nothing about bundles.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use ureq::http::{self, Response};
use ureq::Body;

use crate::error::{Error, Result};
use crate::oci::{self, Reference};

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

/// How to reach a registry: the command line's `--ca-file`, `--plain-http` and credentials.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub ca_file: Option<PathBuf>,
    pub plain_http: bool,
    /// From `--username` and `--password-stdin`; else `docker_config` is read.
    pub credentials: Option<Credentials>,
    /// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) when not given.
    pub docker_config: Option<PathBuf>,
}

/// Attempts per request on connection errors and 5xx, with doubling waits between them.
const ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(500);

/// A body that can be produced again for a retry.
type Payload<'a> = &'a dyn Fn() -> io::Result<(Box<dyn Read + 'a>, u64)>;

pub struct Registry {
    agent: ureq::Agent,
    /// `https://host:port`
    base: String,
    repository: String,
    registry: String,
    credentials: Option<Credentials>,
    /// The Authorization header that last worked, reused until the registry asks again.
    auth: Mutex<Option<String>>,
}

impl Registry {
    pub fn connect(reference: &Reference, opts: &Options) -> Result<Registry> {
        if opts.plain_http && !reference.is_loopback() {
            return Err(Error::input(
                "--plain-http",
                format!(
                    "`{}` is not this machine: plain http is allowed only to a loopback registry",
                    reference.registry
                ),
            )
            .with_hint("give the registry's CA with --ca-file and use https"));
        }
        let roots = match &opts.ca_file {
            Some(path) => read_certificates(path)?,
            None => system_certificates()?,
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(provider)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .https_only(!opts.plain_http)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .timeout_per_write(Some(Duration::from_secs(120)))
            .user_agent(concat!("kube-bundle/", env!("CARGO_PKG_VERSION")))
            .build();
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => {
                let path = opts.docker_config.clone().or_else(default_docker_config);
                match path {
                    Some(p) if p.exists() => docker_credentials(&p, &reference.registry)?,
                    _ => None,
                }
            }
        };
        let scheme = if opts.plain_http { "http" } else { "https" };
        Ok(Registry {
            agent: ureq::Agent::new_with_config(config),
            base: format!("{scheme}://{}", reference.registry),
            repository: reference.repository.clone(),
            registry: reference.registry.clone(),
            credentials,
            auth: Mutex::new(None),
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    /// `GET /v2/`: checks that the registry answers and the credentials are good, while
    /// its answer still carries its message (a HEAD's cannot).
    pub fn check(&self) -> Result<()> {
        let what = format!("connecting to `{}`", self.registry);
        let resp = self.send("GET", &format!("{}/v2/", self.base), &[], None, &what)?;
        match resp.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.failure(&what, resp)),
        }
    }

    /// The blob's size when the registry has it.
    pub fn blob_size(&self, digest: &str) -> Result<Option<u64>> {
        let what = format!("checking blob {}", short(digest));
        let resp = self.send(
            "HEAD",
            &self.url(&format!("blobs/{digest}")),
            &[],
            None,
            &what,
        )?;
        match resp.status().as_u16() {
            200 => Ok(Some(content_length(&resp).unwrap_or(0))),
            404 => Ok(None),
            _ => Err(self.failure(&what, resp)),
        }
    }

    /// Uploads a blob in one PUT, streaming from `payload`; the registry checks the digest.
    pub fn upload_blob(&self, digest: &str, payload: Payload<'_>) -> Result<()> {
        let what = format!("uploading blob {}", short(digest));
        // A failed PUT loses the upload session, so a retry starts from the POST.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self.send("POST", &self.url("blobs/uploads/"), &[], None, &what)?;
            if resp.status().as_u16() != 202 {
                return Err(self.failure(&what, resp));
            }
            let location = header(&resp, "location")
                .ok_or_else(|| Error::registry(&what, "the registry gave no upload location"))?;
            let mut url = if location.starts_with("http://") || location.starts_with("https://") {
                location
            } else {
                format!("{}{location}", self.base)
            };
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("digest=");
            url.push_str(digest);
            match self.send_tries(
                "PUT",
                &url,
                &[("content-type", "application/octet-stream".into())],
                Some(payload),
                &what,
                1,
            ) {
                Ok(resp) if resp.status().as_u16() == 201 => return Ok(()),
                Ok(resp) if resp.status().as_u16() >= 500 && attempt < ATTEMPTS => {
                    std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt - 1));
                }
                Ok(resp) => return Err(self.failure(&what, resp)),
                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                    std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt - 1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts a manifest or index at a tag or digest; returns its digest.
    pub fn put_manifest(&self, target: &str, media_type: &str, bytes: &[u8]) -> Result<String> {
        let digest = oci::sha256_digest(bytes);
        let what = format!("putting manifest `{target}`");
        let payload = || -> io::Result<(Box<dyn Read + '_>, u64)> {
            Ok((Box::new(bytes), bytes.len() as u64))
        };
        let resp = self.send(
            "PUT",
            &self.url(&format!("manifests/{target}")),
            &[("content-type", media_type.to_string())],
            Some(&payload),
            &what,
        )?;
        if resp.status().as_u16() != 201 {
            return Err(self.failure(&what, resp));
        }
        if let Some(d) = header(&resp, "docker-content-digest") {
            if d != digest {
                return Err(Error::registry(
                    what,
                    format!("the registry stored it as {d}, expected {digest}"),
                ));
            }
        }
        Ok(digest)
    }

    /// A manifest or index: (media type, bytes). With a digest target the bytes are checked.
    pub fn get_manifest(&self, target: &str) -> Result<(String, Vec<u8>)> {
        let what = format!(
            "reading `{}/{}` at `{target}`",
            self.registry, self.repository
        );
        let accept = format!("{}, {}", oci::MEDIA_INDEX, oci::MEDIA_MANIFEST);
        let mut resp = self.send(
            "GET",
            &self.url(&format!("manifests/{target}")),
            &[("accept", accept)],
            None,
            &what,
        )?;
        if resp.status().as_u16() != 200 {
            return Err(self.failure(&what, resp));
        }
        let media_type = header(&resp, "content-type").unwrap_or_default();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .map_err(|e| Error::registry(&what, e.to_string()))?;
        if target.starts_with("sha256:") && oci::sha256_digest(&bytes) != target {
            return Err(Error::registry(
                what,
                "the manifest does not match its digest".to_string(),
            ));
        }
        Ok((media_type, bytes))
    }

    /// Streams a blob into `out`, checking its size and digest; `progress` gets byte counts.
    pub fn download_blob(
        &self,
        digest: &str,
        size: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let what = format!("downloading blob {}", short(digest));
        let mut resp = self.send(
            "GET",
            &self.url(&format!("blobs/{digest}")),
            &[],
            None,
            &what,
        )?;
        if resp.status().as_u16() != 200 {
            return Err(self.failure(&what, resp));
        }
        let mut reader = resp.body_mut().as_reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::registry(&what, e.to_string()))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            if got > size {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            progress(n as u64);
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if got != size || actual != digest {
            return Err(Error::registry(
                what,
                format!(
                    "the registry sent {got} bytes with digest {actual}, expected {size} bytes \
                     with {digest}: the stored blob is damaged or was changed"
                ),
            ));
        }
        Ok(())
    }

    /// One request with authentication and retries. `payload` is produced anew per attempt.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: Option<Payload<'_>>,
        what: &str,
    ) -> Result<Response<Body>> {
        self.send_tries(method, url, headers, payload, what, ATTEMPTS)
    }

    /// [`Registry::send`] with `attempts` tries on connection errors and 5xx.
    fn send_tries(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: Option<Payload<'_>>,
        what: &str,
        attempts: u32,
    ) -> Result<Response<Body>> {
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            attempt += 1;
            let auth = self.auth.lock().expect("auth header").clone();
            let mut req = http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            if let Some(a) = &auth {
                req = req.header("authorization", a.as_str());
            }
            let result = match payload {
                Some(make) => {
                    let (mut reader, len) = make()?;
                    let req = req
                        .header("content-length", len.to_string())
                        .body(ureq::SendBody::from_reader(&mut reader))
                        .map_err(|e| Error::registry(what, e.to_string()))?;
                    self.agent.run(req)
                }
                None if method == "POST" || method == "PUT" => {
                    let req = req
                        .header("content-length", "0")
                        .body(ureq::SendBody::none())
                        .map_err(|e| Error::registry(what, e.to_string()))?;
                    self.agent.run(req)
                }
                None => {
                    let req = req
                        .body(())
                        .map_err(|e| Error::registry(what, e.to_string()))?;
                    self.agent.run(req)
                }
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = self.transport_error(what, &e);
                    if attempt < attempts && retryable(&err) {
                        std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt - 1));
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status().as_u16();
            if status == 401 && !authenticated {
                authenticated = true;
                let challenge = header(&resp, "www-authenticate").unwrap_or_default();
                let new = self.answer(&challenge, what)?;
                *self.auth.lock().expect("auth header") = Some(new);
                attempt -= 1;
                continue;
            }
            if (status >= 500 || status == 429) && attempt < attempts {
                std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt - 1));
                continue;
            }
            return Ok(resp);
        }
    }

    /// The Authorization header that answers a `WWW-Authenticate` challenge.
    fn answer(&self, challenge: &str, what: &str) -> Result<String> {
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
                if let Some(b) = &basic {
                    req = req.header("authorization", b.as_str());
                }
                let req = req
                    .body(())
                    .map_err(|e| Error::registry(what, e.to_string()))?;
                let mut resp = self
                    .agent
                    .run(req)
                    .map_err(|e| self.transport_error(&format!("{what}: token from {realm}"), &e))?;
                if resp.status().as_u16() != 200 {
                    return Err(self.failure(&format!("{what}: token from {realm}"), resp));
                }
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_string()
                    .map_err(|e| Error::registry(what, e.to_string()))?;
                let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
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

    fn no_credentials(&self, what: &str) -> Error {
        Error::registry(what, format!("`{}` asks for credentials", self.registry)).with_hint(
            "pass --username USER --password-stdin, or log in so that ~/.docker/config.json has an `auths` entry for it",
        )
    }

    fn transport_error(&self, what: &str, e: &ureq::Error) -> Error {
        let text = e.to_string();
        let tls = matches!(e, ureq::Error::Rustls(_) | ureq::Error::Tls(_))
            || text.contains("certificate")
            || text.contains("UnknownIssuer");
        let err = Error::registry(what, format!("{}: {text}", self.base));
        if tls {
            err.with_hint("the registry's certificate is not trusted: pass its CA with --ca-file")
        } else {
            err
        }
    }

    /// An unexpected status as an error carrying the registry's own message.
    fn failure(&self, what: &str, mut resp: Response<Body>) -> Error {
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let message = registry_message(&body).unwrap_or_else(|| {
            format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
        });
        let err = Error::registry(what, format!("{}: {message}", self.registry));
        match status.as_u16() {
            401 => err.with_hint(
                "check the user name and password (--username/--password-stdin or ~/.docker/config.json)",
            ),
            403 => err.with_hint("the user may not push or pull this repository"),
            _ => err,
        }
    }
}

/// Whether a failure is worth another attempt: the connection, not the request, failed.
fn retryable(e: &Error) -> bool {
    match e {
        Error::Registry { message, hint, .. } => {
            hint.is_none()
                && !message.contains("certificate")
                && !message.contains("asks for credentials")
        }
        Error::Io(_) => true,
        _ => false,
    }
}

/// `{"errors":[{"code":"…","message":"…"}]}` as `CODE: message; …`.
fn registry_message(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let errors = json.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            match e.get("detail") {
                Some(d) if !d.is_null() => format!("{code}: {msg} ({d})"),
                _ => format!("{code}: {msg}"),
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.parse().ok())
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

fn encode_query(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Bearer realm="…",service="…",scope="…"` → ("Bearer", [(key, value)]).
pub fn parse_challenge(text: &str) -> (String, Vec<(String, String)>) {
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

fn read_certificates(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let bytes = fs_err::read(path)?;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&bytes)
        .filter_map(|c| c.ok())
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
fn system_certificates() -> Result<Vec<ureq::tls::Certificate<'static>>> {
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

fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The `auths` entry for `registry` in a docker config file: `auth` (base64 `user:pass`)
/// or `username` and `password`. Keys may carry a scheme and a path, as `docker login`
/// writes them for Docker Hub.
pub fn docker_credentials(path: &Path, registry: &str) -> Result<Option<Credentials>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:k8s/cp:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:k8s/cp:pull,push".into()),
            ]
        );
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p, vec![("realm".into(), "Registry Realm".into())]);
    }

    #[test]
    fn registry_errors_keep_the_registry_words() {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        assert_eq!(
            registry_message(body).unwrap(),
            "UNAUTHORIZED: authentication required"
        );
        assert_eq!(registry_message("<html>"), None);
    }

    #[test]
    fn docker_config_auths_match_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://other.example/v1/":{"auth":"eDp5"},"reg.example:5000":{"auth":"dXNlcjpwYTpzcw=="}}}"#,
        )
        .unwrap();
        let c = docker_credentials(&path, "reg.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        let c = docker_credentials(&path, "other.example").unwrap().unwrap();
        assert_eq!(c.username, "x");
        assert!(docker_credentials(&path, "none.example").unwrap().is_none());
    }
}
