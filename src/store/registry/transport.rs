//! How a request travels: loopback-only plain HTTP, paced reads that give up on a stalled
//! peer, retries with backoff inside the time budget, redirects kept to allowed origins,
//! and errors that say what the registry or the network did.

use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ureq::http::{self, Response, Uri};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;
use ureq::Body;

use super::{Limits, Payload, Registry, ATTEMPTS, FIRST_WAIT, MAX_REDIRECTS};
use crate::error::{Error, Result};

/// Where a URL points: what credentials are scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) https: bool,
    /// Lowercase, without the brackets of an IPv6 address.
    pub(super) host: String,
    pub(super) port: u16,
}

impl Origin {
    pub(super) fn of(url: &str) -> Option<Origin> {
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
pub(super) fn loopback_only(host: &str, port: u16) -> std::result::Result<(), String> {
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
        .map(std::string::ToString::to_string)
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
pub(super) struct LoopbackResolver(DefaultResolver);

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
pub(super) struct Pace {
    pub(super) limits: Limits,
    pub(super) since: Instant,
    pub(super) bytes: u64,
}

impl Pace {
    pub(super) fn new(limits: Limits) -> Pace {
        Pace {
            limits,
            since: Instant::now(),
            bytes: 0,
        }
    }

    pub(super) fn tick(&mut self, n: u64) -> std::result::Result<(), String> {
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
pub(super) struct Paced<R> {
    pub(super) inner: R,
    pub(super) pace: Pace,
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
pub(super) enum BlobRead {
    /// The connection dropped or stalled: worth resuming.
    Dropped(String),
    /// The registry sent what no attempt can make right.
    Refused(String),
    /// Writing the local copy failed.
    Write(io::Error),
}

/// A failed request: whether another attempt may help.
pub(super) struct Failed {
    pub(super) error: Error,
    pub(super) retry: bool,
}

impl Failed {
    pub(super) fn stop(error: Error) -> Failed {
        Failed {
            error,
            retry: false,
        }
    }
}

/// `location` (absolute, `//host/…`, `/path` or relative) against the URL it came from.
pub(super) fn join_url(base: &str, location: &str) -> String {
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
pub(super) fn next_link(link: &str) -> Option<String> {
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
pub(super) fn content_range_start(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-range")?
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `{"errors":[{"code":"…","message":"…"}]}` as `CODE: message; …`.
pub(super) fn registry_message(body: &str) -> Option<String> {
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

pub(super) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) fn content_length(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.parse().ok())
}

pub(super) fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

pub(super) fn encode_query(v: &str) -> String {
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

impl Registry {
    /// One request with authentication and retries. `payload` is produced anew per attempt.
    pub(super) fn send(
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
    pub(super) fn send_tries(
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
    pub(super) fn follow(
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
    pub(super) fn allowed(&self, url: &str, what: &str) -> Result<Origin> {
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
    pub(super) fn run<B: ureq::AsSendBody>(
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

    pub(super) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Waits before attempt `attempt + 1`; false when `--max-time` would pass first.
    pub(super) fn pause(&self, attempt: u32) -> bool {
        let wait = FIRST_WAIT * 2u32.pow(attempt.saturating_sub(1).min(6));
        match self.remaining() {
            Some(left) if left > wait => {
                std::thread::sleep(wait);
                true
            }
            _ => false,
        }
    }

    pub(super) fn out_of_time(&self, what: &str) -> Error {
        Error::registry(what, self.out_of_time_message())
    }

    pub(super) fn out_of_time_message(&self) -> String {
        format!(
            "gave up after {} s, the limit --max-time sets for the whole command",
            self.limits.max_time.as_secs()
        )
    }

    /// A body read that failed: a stall says which limit ended it.
    pub(super) fn io_message(&self, e: &io::Error) -> String {
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

    pub(super) fn transport_error(&self, what: &str, e: &ureq::Error) -> Failed {
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
    pub(super) fn failure(&self, what: &str, resp: Response<Body>) -> Error {
        self.failure_from(what, &self.registry, resp)
    }

    /// An unexpected status from `who` as an error carrying its own message.
    pub(super) fn failure_from(&self, what: &str, who: &str, mut resp: Response<Body>) -> Error {
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
