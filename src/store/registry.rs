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
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use ureq::http::{self, Response, Uri};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Body;

use crate::error::{Error, Result};
use crate::store::oci::{self, Reference};

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

/// Where a URL points: what credentials are scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    /// Lowercase, without the brackets of an IPv6 address.
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &str) -> Option<Origin> {
        let uri: Uri = url.parse().ok()?;
        let https = match uri.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let host = uri
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Origin { https, host, port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Loopback by address: `127.0.0.0/8`, `::1`, and IPv4 loopback written as IPv6.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Ok when every address `host` resolves to is this machine's; else why not.
fn loopback_only(host: &str, port: u16) -> std::result::Result<(), String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return match is_loopback(ip) {
            true => Ok(()),
            false => Err(format!("`{host}` is not a loopback address")),
        };
    }
    let addrs: Vec<IpAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("`{host}` does not resolve ({e})"))?
        .map(|a| a.ip())
        .collect();
    let outside: Vec<String> = addrs
        .iter()
        .filter(|ip| !is_loopback(**ip))
        .map(|ip| ip.to_string())
        .collect();
    if addrs.is_empty() {
        Err(format!("`{host}` resolves to no address"))
    } else if !outside.is_empty() {
        Err(format!("`{host}` resolves to {}", outside.join(", ")))
    } else {
        Ok(())
    }
}

/// The resolver under `--plain-http`: a name whose addresses are not all loopback is never
/// connected to, whatever its spelling, and the check is on the very addresses used.
#[derive(Debug, Default)]
struct LoopbackResolver(DefaultResolver);

impl Resolver for LoopbackResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.0.resolve(uri, config, timeout)?;
        let outside: Vec<String> = addrs
            .iter()
            .filter(|a| !is_loopback(a.ip()))
            .map(|a| a.ip().to_string())
            .collect();
        if outside.is_empty() {
            return Ok(addrs);
        }
        Err(ureq::Error::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "`{}` resolves to {}, which is not this machine: with --plain-http only \
                 loopback addresses are used",
                uri.host().unwrap_or(""),
                outside.join(", ")
            ),
        )))
    }
}

/// The low-speed rule: a window of at least `speed_time` in which fewer than
/// `speed_limit` bytes a second moved ends the transfer.
struct Pace {
    limits: Limits,
    since: Instant,
    bytes: u64,
}

impl Pace {
    fn new(limits: Limits) -> Pace {
        Pace {
            limits,
            since: Instant::now(),
            bytes: 0,
        }
    }

    fn tick(&mut self, n: u64) -> std::result::Result<(), String> {
        self.bytes += n;
        let elapsed = self.since.elapsed();
        if elapsed < self.limits.speed_time {
            return Ok(());
        }
        if u128::from(self.bytes) * 1000 < u128::from(self.limits.speed_limit) * elapsed.as_millis()
        {
            return Err(slow_message(self.limits));
        }
        self.since = Instant::now();
        self.bytes = 0;
        Ok(())
    }
}

fn slow_message(limits: Limits) -> String {
    format!(
        "the transfer was slower than {} bytes/s for {} s (--speed-limit, --speed-time)",
        limits.speed_limit,
        limits.speed_time.as_secs()
    )
}

/// A request body that keeps to the low-speed rule.
struct Paced<R> {
    inner: R,
    pace: Pace,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pace
            .tick(n as u64)
            .map_err(|m| io::Error::new(io::ErrorKind::TimedOut, m))?;
        Ok(n)
    }
}

/// How reading a blob's body ended early.
enum BlobRead {
    /// The connection dropped or stalled: worth resuming.
    Dropped(String),
    /// The registry sent what no attempt can make right.
    Refused(String),
    /// Writing the local copy failed.
    Write(io::Error),
}

/// A failed request: whether another attempt may help.
struct Failed {
    error: Error,
    retry: bool,
}

impl Failed {
    fn stop(error: Error) -> Failed {
        Failed {
            error,
            retry: false,
        }
    }
}

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
            .map_err(|f| f.error)
    }

    /// [`Registry::send`] with `attempts` tries on connection errors and 5xx. Only the
    /// registry's own challenge is answered.
    fn send_tries(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: Option<Payload<'_>>,
        what: &str,
        attempts: u32,
    ) -> std::result::Result<Response<Body>, Failed> {
        let mut attempt = 0;
        let mut answered = false;
        loop {
            attempt += 1;
            let (resp, origin) = match self.follow(method, url, headers, payload, what) {
                Ok(r) => r,
                Err(f) if f.retry && attempt < attempts && self.pause(attempt) => continue,
                Err(f) => return Err(f),
            };
            let status = resp.status().as_u16();
            if status == 401 && origin != self.origin {
                return Err(Failed::stop(
                    Error::registry(
                        what,
                        format!(
                            "`{origin}`, which is not the registry `{}`, asks for credentials: \
                             kube-bundle gives them only to the registry",
                            self.origin
                        ),
                    )
                    .with_hint(
                        "the registry sent this request to another host (an upload location \
                         or a redirect); such a host must not need the registry's credentials",
                    ),
                ));
            }
            if status == 401 && !answered {
                answered = true;
                let challenge = header(&resp, "www-authenticate").unwrap_or_default();
                let new = self.answer(&challenge, what).map_err(Failed::stop)?;
                *self.auth.lock().expect("auth header") = Some(new);
                attempt -= 1;
                continue;
            }
            if (status >= 500 || status == 429) && attempt < attempts && self.pause(attempt) {
                continue;
            }
            return Ok(resp);
        }
    }

    /// One request, following redirects of a GET or HEAD; returns the answer and the
    /// origin that gave it. The Authorization header goes only to the registry's origin.
    fn follow(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: Option<Payload<'_>>,
        what: &str,
    ) -> std::result::Result<(Response<Body>, Origin), Failed> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let origin = self.allowed(&url, what).map_err(Failed::stop)?;
            let auth = if origin == self.origin {
                self.auth.lock().expect("auth header").clone()
            } else {
                None
            };
            let mut req = http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            if let Some(a) = &auth {
                req = req.header("authorization", a.as_str());
            }
            let build = |e: http::Error| Failed::stop(Error::registry(what, e.to_string()));
            let result = match payload {
                Some(make) => {
                    let (mut reader, len) = make().map_err(|e| Failed::stop(e.into()))?;
                    let req = req
                        .header("content-length", len.to_string())
                        .body(ureq::SendBody::from_reader(&mut reader))
                        .map_err(build)?;
                    self.run(req, what)
                }
                None if method == "POST" || method == "PUT" => {
                    let req = req
                        .header("content-length", "0")
                        .body(ureq::SendBody::none())
                        .map_err(build)?;
                    self.run(req, what)
                }
                None => self.run(req.body(()).map_err(build)?, what),
            };
            let resp = result?;
            let status = resp.status().as_u16();
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            if !redirect || !(method == "GET" || method == "HEAD") {
                return Ok((resp, origin));
            }
            let location = header(&resp, "location").ok_or_else(|| {
                Failed::stop(Error::registry(
                    what,
                    format!("a {status} redirect without a location"),
                ))
            })?;
            url = join_url(&url, &location);
        }
        Err(Failed::stop(Error::registry(
            what,
            format!("more than {MAX_REDIRECTS} redirects"),
        )))
    }

    /// Whether a request may go to `url`: https unless `--plain-http`, and under
    /// `--plain-http` only to this machine. Returns the URL's origin.
    fn allowed(&self, url: &str, what: &str) -> Result<Origin> {
        // Upload locations carry long opaque state in their query.
        let shown = url.split('?').next().unwrap_or(url);
        let origin = Origin::of(url).ok_or_else(|| {
            Error::registry(
                what,
                format!("refusing `{shown}`: not an http or https URL"),
            )
        })?;
        if origin == self.origin {
            return Ok(origin);
        }
        if !origin.https && !self.plain_http {
            return Err(Error::registry(
                what,
                format!("refusing `{shown}`: the registry is reached over https, and this is plain http"),
            ));
        }
        if self.plain_http {
            loopback_only(&origin.host, origin.port).map_err(|why| {
                Error::registry(
                    what,
                    format!("refusing `{shown}`: {why}, and --plain-http stays on this machine"),
                )
            })?;
        }
        Ok(origin)
    }

    /// Runs a request within what is left of `--max-time`.
    fn run<B: ureq::AsSendBody>(
        &self,
        req: http::Request<B>,
        what: &str,
    ) -> std::result::Result<Response<Body>, Failed> {
        let Some(left) = self.remaining() else {
            return Err(Failed::stop(self.out_of_time(what)));
        };
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(left))
            .build();
        self.agent
            .run(req)
            .map_err(|e| self.transport_error(what, &e))
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Waits before attempt `attempt + 1`; false when `--max-time` would pass first.
    fn pause(&self, attempt: u32) -> bool {
        let wait = FIRST_WAIT * 2u32.pow(attempt.saturating_sub(1).min(6));
        match self.remaining() {
            Some(left) if left > wait => {
                std::thread::sleep(wait);
                true
            }
            _ => false,
        }
    }

    fn out_of_time(&self, what: &str) -> Error {
        Error::registry(what, self.out_of_time_message())
    }

    fn out_of_time_message(&self) -> String {
        format!(
            "gave up after {} s, the limit --max-time sets for the whole command",
            self.limits.max_time.as_secs()
        )
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

    fn no_credentials(&self, what: &str) -> Error {
        Error::registry(what, format!("`{}` asks for credentials", self.registry)).with_hint(
            "pass --username USER --password-stdin, or log in so that ~/.docker/config.json has an `auths` entry for it",
        )
    }

    /// A body read that failed: a stall says which limit ended it.
    fn io_message(&self, e: &io::Error) -> String {
        if e.kind() != io::ErrorKind::TimedOut {
            return e.to_string();
        }
        let global = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<ureq::Error>())
            .is_some_and(|i| matches!(i, ureq::Error::Timeout(ureq::Timeout::Global)));
        if global {
            self.out_of_time_message()
        } else {
            format!(
                "no data for {} s (--speed-time): {e}",
                self.limits.speed_time.as_secs()
            )
        }
    }

    fn transport_error(&self, what: &str, e: &ureq::Error) -> Failed {
        let text = e.to_string();
        match e {
            ureq::Error::Timeout(ureq::Timeout::Global) => {
                return Failed::stop(self.out_of_time(what))
            }
            ureq::Error::Timeout(_) => {
                return Failed {
                    error: Error::registry(
                        what,
                        format!(
                            "{}: no answer within {} s (--speed-time): {text}",
                            self.base,
                            self.limits.speed_time.as_secs()
                        ),
                    ),
                    retry: true,
                }
            }
            _ => {}
        }
        // rustls reading a plain-http answer as a TLS record: the registry speaks http.
        if text.contains("InvalidContentType") || text.contains("corrupt message") {
            return Failed::stop(
                Error::registry(what, format!("{}: {text}", self.base)).with_hint(
                    "the registry answered in plain http: a registry on this machine takes \
                     --plain-http, any other one needs https",
                ),
            );
        }
        let tls = matches!(e, ureq::Error::Rustls(_) | ureq::Error::Tls(_))
            || text.contains("certificate")
            || text.contains("UnknownIssuer");
        let err = Error::registry(what, format!("{}: {text}", self.base));
        if tls {
            return Failed::stop(err.with_hint(
                "the registry's certificate is not trusted: pass its CA with --ca-file",
            ));
        }
        let refused = match e {
            ureq::Error::Io(io) => io.kind() == io::ErrorKind::PermissionDenied,
            ureq::Error::RequireHttpsOnly(_)
            | ureq::Error::BadUri(_)
            | ureq::Error::Http(_)
            | ureq::Error::InvalidProxyUrl => true,
            _ => false,
        };
        Failed {
            error: err,
            retry: !refused,
        }
    }

    /// An unexpected status as an error carrying the registry's own message.
    fn failure(&self, what: &str, resp: Response<Body>) -> Error {
        self.failure_from(what, &self.registry, resp)
    }

    /// An unexpected status from `who` as an error carrying its own message.
    fn failure_from(&self, what: &str, who: &str, mut resp: Response<Body>) -> Error {
        let status = resp.status();
        let body = self
            .read_document(&mut resp, 64 << 10, what)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let message = registry_message(&body).unwrap_or_else(|| {
            format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
        });
        let err = Error::registry(what, format!("{who}: {message}"));
        match status.as_u16() {
            401 => err.with_hint(
                "check the user name and password (--username/--password-stdin or ~/.docker/config.json)",
            ),
            403 => err.with_hint("the user may not push or pull this repository"),
            _ => err,
        }
    }
}

/// `location` (absolute, `//host/…`, `/path` or relative) against the URL it came from.
fn join_url(base: &str, location: &str) -> String {
    if location.starts_with("http://")
        || location.starts_with("https://")
        || location.contains("://")
    {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(auth_path) = location.strip_prefix("//") {
        return format!("{scheme}://{auth_path}");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority.len()..].split('?').next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{scheme}://{authority}{dir}{location}")
}

/// The `rel="next"` target of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next")
            .then(|| target.to_string())
    })
}

/// The first byte a `206` answer holds: `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-range")?
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
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
