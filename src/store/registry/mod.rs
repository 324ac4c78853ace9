//! A small synchronous client for the OCI distribution API, over ureq with rustls: the
//! few calls `push` and `pull` need (HEAD and upload a blob, download a blob while checking
//! its size and digest, put and get a manifest, list tags), authentication by the
//! registry's `WWW-Authenticate` challenge (Basic, or a Bearer token from the realm it
//! names), and credentials from `--username` or `~/.docker/config.json`. Bodies stream in
//! both directions; nothing here holds a blob in memory. It knows nothing about bundles.
//!
//! Where requests and credentials may go is decided here and nowhere else:
//! - credentials and tokens go only to the registry's own origin (scheme, host and port);
//!   an upload location or a redirect elsewhere is sent none, and its own challenge is an
//!   error, never answered;
//! - a Bearer realm gets the credentials only on the registry's origin, under
//!   `--plain-http` (loopback), or when named by `--token-server`; an http realm is
//!   refused unless `--plain-http`;
//! - `--plain-http` uses no proxy, and every connection it makes (registry, realm,
//!   location, redirect) goes only to addresses that are loopback once resolved;
//! - every transfer has a low-speed floor (`--speed-limit`/`--speed-time`) and the whole
//!   command a deadline (`--max-time`); dropped connections are retried, downloads resume
//!   with a range request.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ureq::http::Response;
use ureq::unversioned::transport::DefaultConnector;
use ureq::Body;

use crate::error::{Error, Result};
use crate::store::oci::{self, Reference};

mod auth;
mod transport;

use auth::{default_docker_config, docker_credentials, read_certificates, system_certificates};
use transport::{
    content_length, content_range_start, header, join_url, loopback_only, next_link, short,
    BlobRead, Failed, LoopbackResolver, Origin, Pace, Paced,
};

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

/// How to reach a registry: the command line's `--ca-file`, `--plain-http`, credentials
/// and limits.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub ca_file: Option<PathBuf>,
    pub plain_http: bool,
    /// From `--username` and `--password-stdin`; else `docker_config` is read.
    pub credentials: Option<Credentials>,
    /// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) when not given.
    pub docker_config: Option<PathBuf>,
    /// `--token-server host[:port]`: a Bearer realm there (https) also gets the credentials.
    pub token_server: Option<String>,
    pub limits: Limits,
}

/// How slow a transfer and how long a command may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A transfer averaging fewer bytes a second than this over `speed_time` is cut.
    pub speed_limit: u64,
    /// Also the longest wait for any one read or write.
    pub speed_time: Duration,
    /// The whole push or pull, retries included.
    pub max_time: Duration,
}

/// Defaults a slow but working link passes: 1 KiB/s is far below any link that can carry
/// a bundle at all, and 4 hours moves 1.4 GiB at 100 KB/s.
pub const SPEED_LIMIT: u64 = 1024;
pub const SPEED_TIME_SECS: u64 = 30;
pub const MAX_TIME_SECS: u64 = 4 * 3600;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            speed_limit: SPEED_LIMIT,
            speed_time: Duration::from_secs(SPEED_TIME_SECS),
            max_time: Duration::from_secs(MAX_TIME_SECS),
        }
    }
}

/// Attempts per request on connection errors and 5xx, with doubling waits between them.
const ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// Redirects followed for one GET or HEAD.
const MAX_REDIRECTS: usize = 5;
/// Manifests, indexes and tag lists; token answers are smaller still.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// A body that can be produced again for a retry.
type Payload<'a> = &'a dyn Fn() -> io::Result<(Box<dyn Read + 'a>, u64)>;

pub struct Registry {
    agent: ureq::Agent,
    /// `https://host:port`
    base: String,
    origin: Origin,
    repository: String,
    registry: String,
    credentials: Option<Credentials>,
    /// The Authorization header that last worked, reused until the registry asks again.
    auth: Mutex<Option<String>>,
    plain_http: bool,
    token_server: Option<Origin>,
    limits: Limits,
    deadline: Instant,
}

impl Registry {
    pub fn connect(reference: &Reference, opts: &Options) -> Result<Registry> {
        let scheme = if opts.plain_http { "http" } else { "https" };
        let base = format!("{scheme}://{}", reference.registry);
        let origin = Origin::of(&base).ok_or_else(|| {
            Error::input(
                format!("reference `{reference}`"),
                "its registry is not a host a URL can name",
            )
        })?;
        if opts.plain_http {
            loopback_only(&origin.host, origin.port).map_err(|why| {
                Error::input(
                    "--plain-http",
                    format!(
                        "`{}` is not this machine ({why}): plain http is allowed only to a \
                         loopback registry",
                        reference.registry
                    ),
                )
                .with_hint("give the registry's CA with --ca-file and use https")
            })?;
        }
        let token_server = match &opts.token_server {
            Some(t) => Some(
                Origin::of(&format!("https://{t}"))
                    .filter(|_| !t.contains(['/', '?', '#', '@']))
                    .ok_or_else(|| {
                        Error::input(
                            "--token-server",
                            format!("`{t}` is not `host` or `host:port`"),
                        )
                    })?,
            ),
            None => None,
        };
        let roots = match &opts.ca_file {
            Some(path) => read_certificates(path)?,
            None => system_certificates()?,
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(provider)
            .build();
        let limits = opts.limits;
        let mut config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .https_only(!opts.plain_http)
            // Redirects are followed here, so that no credential follows one elsewhere.
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_per_read(Some(limits.speed_time))
            .timeout_per_write(Some(limits.speed_time))
            .user_agent(concat!("kube-bundle/", env!("CARGO_PKG_VERSION")));
        if opts.plain_http {
            // A proxy would carry the credentials and the bundles off this machine in
            // clear text.
            config = config.proxy(None);
        }
        let config = config.build();
        let agent = if opts.plain_http {
            ureq::Agent::with_parts(config, DefaultConnector::new(), LoopbackResolver::default())
        } else {
            ureq::Agent::new_with_config(config)
        };
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
        let now = Instant::now();
        Ok(Registry {
            agent,
            base,
            origin,
            repository: reference.repository.clone(),
            registry: reference.registry.clone(),
            credentials,
            auth: Mutex::new(None),
            plain_http: opts.plain_http,
            token_server,
            limits,
            // Ten years is as good as no limit, and cannot overflow the clock.
            deadline: now + limits.max_time.min(Duration::from_secs(10 * 365 * 86_400)),
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
        let paced = || -> io::Result<(Box<dyn Read + '_>, u64)> {
            let (inner, len) = payload()?;
            Ok((
                Box::new(Paced {
                    inner,
                    pace: Pace::new(self.limits),
                }),
                len,
            ))
        };
        // A failed PUT loses the upload session, so a retry starts from the POST.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let start = self.url("blobs/uploads/");
            let resp = self.send("POST", &start, &[], None, &what)?;
            if resp.status().as_u16() != 202 {
                return Err(self.failure(&what, resp));
            }
            let location = header(&resp, "location")
                .ok_or_else(|| Error::registry(&what, "the registry gave no upload location"))?;
            let mut url = join_url(&start, &location);
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("digest=");
            url.push_str(digest);
            match self.send_tries(
                "PUT",
                &url,
                &[("content-type", "application/octet-stream".into())],
                Some(&paced),
                &what,
                1,
            ) {
                Ok(resp) if resp.status().as_u16() == 201 => return Ok(()),
                Ok(resp) if resp.status().as_u16() >= 500 && attempt < ATTEMPTS => {
                    if !self.pause(attempt) {
                        return Err(self.failure(&what, resp));
                    }
                }
                Ok(resp) => return Err(self.failure(&what, resp)),
                Err(Failed { retry: true, .. }) if attempt < ATTEMPTS && self.pause(attempt) => {}
                Err(f) => return Err(f.error),
            }
        }
    }

    /// Puts a manifest or index at a tag or digest; returns its digest.
    pub fn put_manifest(&self, target: &str, media_type: &str, bytes: &[u8]) -> Result<String> {
        let digest = crate::digest::sha256_digest(bytes);
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

    /// A manifest or index: (media type, bytes), at most [`MAX_DOCUMENT`] bytes. With a
    /// digest target the bytes are checked.
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
        let bytes = self.read_document(&mut resp, MAX_DOCUMENT, &what)?;
        if target.starts_with("sha256:") && crate::digest::sha256_digest(&bytes) != target {
            return Err(Error::registry(
                what,
                "the manifest does not match its digest".to_string(),
            ));
        }
        Ok((media_type, bytes))
    }

    /// Every tag of the repository, following the registry's `Link` pages.
    pub fn tags(&self) -> Result<Vec<String>> {
        let what = format!(
            "listing the tags of `{}/{}`",
            self.registry, self.repository
        );
        let mut url = self.url("tags/list?n=1000");
        let mut all = Vec::new();
        for _ in 0..1000 {
            let mut resp = self.send("GET", &url, &[], None, &what)?;
            if resp.status().as_u16() != 200 {
                return Err(self.failure(&what, resp));
            }
            let next = header(&resp, "link").and_then(|l| next_link(&l));
            let body = self.read_document(&mut resp, MAX_DOCUMENT, &what)?;
            let list: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| Error::registry(&what, format!("the answer is not JSON: {e}")))?;
            if let Some(tags) = list.get("tags").and_then(|t| t.as_array()) {
                all.extend(tags.iter().filter_map(|t| t.as_str()).map(str::to_string));
            }
            match next {
                Some(link) => url = join_url(&url, &link),
                None => return Ok(all),
            }
        }
        Err(Error::registry(what, "more than 1000 pages of tags"))
    }

    /// Streams a blob into `out`, checking its size and digest; `progress` gets byte counts.
    /// A dropped or stalled connection is retried, resuming with a range request; the
    /// registry is never read past `size` bytes. A failure to write `out` is returned as
    /// [`Error::Io`] at once, for the caller to name its file.
    pub fn download_blob(
        &self,
        digest: &str,
        size: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let what = format!("downloading blob {}", short(digest));
        let url = self.url(&format!("blobs/{digest}"));
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let range = [("range", format!("bytes={got}-"))];
            let headers: &[(&str, String)] = if got > 0 { &range } else { &[] };
            let mut resp = self.send("GET", &url, headers, None, &what)?;
            // A registry that ignores the range sends the whole blob again: what is
            // already written is skipped.
            let skip = match resp.status().as_u16() {
                200 => got,
                206 if got > 0 && content_range_start(&resp) == Some(got) => 0,
                _ => return Err(self.failure(&what, resp)),
            };
            match self.read_blob(&mut resp, skip, size, &mut got, &mut hasher, out, progress) {
                Ok(()) => break,
                Err(BlobRead::Dropped(_)) if attempt < ATTEMPTS && self.pause(attempt) => {}
                Err(BlobRead::Dropped(why) | BlobRead::Refused(why)) => {
                    return Err(Error::registry(&what, why))
                }
                Err(BlobRead::Write(e)) => return Err(e.into()),
            }
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

    /// Reads one response body into `out` after skipping `skip` bytes, up to `size` in all.
    #[allow(clippy::too_many_arguments)]
    fn read_blob(
        &self,
        resp: &mut Response<Body>,
        mut skip: u64,
        size: u64,
        got: &mut u64,
        hasher: &mut Sha256,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> std::result::Result<(), BlobRead> {
        let mut reader = resp.body_mut().as_reader();
        let mut pace = Pace::new(self.limits);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                BlobRead::Dropped(match e.kind() {
                    io::ErrorKind::TimedOut => self.io_message(&e),
                    _ => format!("the connection ended after {got} of {size} bytes: {e}"),
                })
            })?;
            if n == 0 {
                if *got < size {
                    return Err(BlobRead::Dropped(format!(
                        "the connection ended after {got} of {size} bytes"
                    )));
                }
                return Ok(());
            }
            pace.tick(n as u64).map_err(BlobRead::Dropped)?;
            let mut chunk = &buf[..n];
            if skip > 0 {
                let drop = skip.min(chunk.len() as u64) as usize;
                chunk = &chunk[drop..];
                skip -= drop as u64;
            }
            if *got + chunk.len() as u64 > size {
                return Err(BlobRead::Refused(format!(
                    "the registry sent more than the {size} bytes the manifest gives the blob: \
                     the stored blob is damaged or was changed"
                )));
            }
            hasher.update(chunk);
            out.write_all(chunk).map_err(BlobRead::Write)?;
            *got += chunk.len() as u64;
            progress(chunk.len() as u64);
        }
    }

    /// A small body (a manifest, a token, a tag list), at most `limit` bytes, kept to the
    /// low-speed rule.
    fn read_document(&self, resp: &mut Response<Body>, limit: u64, what: &str) -> Result<Vec<u8>> {
        let mut reader = resp.body_mut().as_reader();
        let mut pace = Pace::new(self.limits);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 14];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::registry(what, self.io_message(&e)))?;
            if n == 0 {
                return Ok(out);
            }
            if (out.len() + n) as u64 > limit {
                return Err(Error::registry(
                    what,
                    format!("the answer is larger than {limit} bytes"),
                ));
            }
            out.extend_from_slice(&buf[..n]);
            pace.tick(n as u64).map_err(|m| Error::registry(what, m))?;
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::auth::parse_challenge;
    use super::transport::registry_message;
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
    fn locations_join_like_a_browser() {
        let base = "https://reg.example:5000/v2/k8s/cp/blobs/uploads/?x=1";
        for (location, want) in [
            ("https://other.example/u/1", "https://other.example/u/1"),
            ("//other.example:81/u", "https://other.example:81/u"),
            (
                "/v2/k8s/cp/blobs/uploads/abc?_state=s",
                "https://reg.example:5000/v2/k8s/cp/blobs/uploads/abc?_state=s",
            ),
            (
                "abc",
                "https://reg.example:5000/v2/k8s/cp/blobs/uploads/abc",
            ),
        ] {
            assert_eq!(join_url(base, location), want, "{location}");
        }
        assert_eq!(
            next_link(r#"</v2/k8s/cp/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/k8s/cp/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn origins_and_loopback_go_by_address() {
        let o = Origin::of("https://REG.example/v2/").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (true, "reg.example", 443)
        );
        let o = Origin::of("http://[::1]:5000/x").unwrap();
        assert_eq!((o.https, o.host.as_str(), o.port), (false, "::1", 5000));
        assert_eq!(o.to_string(), "[::1]:5000");
        assert!(Origin::of("ftp://reg.example/").is_none());
        for host in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "::ffff:127.0.0.1",
            "localhost",
        ] {
            assert_eq!(loopback_only(host, 80), Ok(()), "{host}");
        }
        for host in [
            "10.0.0.1",
            "0.0.0.0",
            "::ffff:10.0.0.1",
            "127.0.0.1.invalid",
        ] {
            assert!(loopback_only(host, 80).is_err(), "{host}");
        }
    }

    #[test]
    fn the_low_speed_floor_is_an_average_over_a_window() {
        let limits = Limits {
            speed_limit: 1000,
            speed_time: Duration::from_millis(50),
            max_time: Duration::from_secs(60),
        };
        let mut pace = Pace::new(limits);
        assert!(pace.tick(10).is_ok(), "the window has not passed yet");
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            pace.tick(1000).is_ok(),
            "1010 bytes in 60 ms is above 1000/s"
        );
        std::thread::sleep(Duration::from_millis(60));
        let err = pace.tick(10).unwrap_err();
        assert!(err.contains("slower than 1000 bytes/s"), "{err}");
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
