//! `push` and `pull` against registries that misbehave on purpose: scripted servers on
//! loopback (127.0.0.2 stands for another host) that answer by rules (challenges of their
//! own, upload locations and redirects elsewhere, endless, dripping, silent or cut bodies,
//! documents that lie), mostly in front of a real docker-registry whose answers they relay.
//! Each test is a reproduction of part 4 of the adversarial review, with its safe outcome.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::common::*;
use crate::registry::{
    assert_fails, binary_bytes, kube_bundle_stdin, layers, make_tls, project_with_binary, Registry,
    PASSWORD, REPO, USER,
};

/// One request a scripted server got.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn get(target: &str) -> Seen {
        Seen {
            method: "GET".into(),
            target: target.into(),
            headers: vec![(
                "Accept".into(),
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
                    .into(),
            )],
            body: Vec::new(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path() == path
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
    }
}

enum Reply {
    Send(Answer),
    /// A 200 whose body never ends.
    Endless,
    /// The answer's body one byte at a time, with this pause between bytes.
    Drip(Answer, Duration),
    /// The answer at this many bytes a second.
    Throttle(Answer, usize),
    /// Nothing, ever; the connection stays open until the client leaves.
    Silent,
    /// Headers for the whole body, the first `n` bytes of it, then the connection closes.
    Cut(Answer, usize),
}

type Rule = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A server on `host` (127.0.0.1 or 127.0.0.2), plain or TLS, that answers every request by
/// its rule and records what it got. One request a connection.
struct Scripted {
    host: &'static str,
    port: u16,
    tls: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    /// `tls`: a folder `make_tls` filled (server.pem, server-key.pem).
    fn start(
        host: &'static str,
        tls: Option<&Path>,
        rule: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Scripted {
        let listener = TcpListener::bind((host, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = tls.map(server_config);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::new(rule);
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (rule, log, config) = (rule.clone(), log.clone(), config.clone());
                std::thread::spawn(move || match config {
                    Some(c) => {
                        let tls = rustls::ServerConnection::new(c).unwrap();
                        serve(&mut rustls::StreamOwned::new(tls, conn), &*rule, &log);
                    }
                    None => serve(&mut { conn }, &*rule, &log),
                });
            }
        });
        Scripted {
            host,
            port,
            tls: tls.is_some(),
            seen,
        }
    }

    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    fn reference(&self, tag: &str) -> String {
        format!("{}/{REPO}:{tag}", self.authority())
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn server_config(dir: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn serve(stream: &mut (impl Read + Write), rule: &Rule, log: &Mutex<Vec<Seen>>) {
    let Some(req) = read_request(stream) else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    let head_only = req.method == "HEAD";
    match rule(&req) {
        Reply::Send(a) => {
            let _ = write_head(stream, &a, a.body.len(), head_only)
                .and_then(|()| stream.write_all(if head_only { &[] } else { &a.body }))
                .and_then(|()| stream.flush());
        }
        Reply::Endless => {
            let a = Answer::new(200, &[("Content-Type", "application/octet-stream")], "");
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
            let _ = a;
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let zeros = vec![0u8; 1 << 16];
            while stream.write_all(&zeros).is_ok() {}
        }
        Reply::Drip(a, every) => {
            if write_head(stream, &a, a.body.len(), false).is_err() {
                return;
            }
            for b in &a.body {
                if stream
                    .write_all(&[*b])
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(every);
            }
        }
        Reply::Throttle(a, rate) => {
            if write_head(stream, &a, a.body.len(), false).is_err() {
                return;
            }
            for chunk in a.body.chunks((rate / 10).max(1)) {
                if stream
                    .write_all(chunk)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Reply::Silent => {
            let mut buf = [0u8; 1024];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        }
        Reply::Cut(a, n) => {
            let _ = write_head(stream, &a, a.body.len(), false)
                .and_then(|()| stream.write_all(&a.body[..n]))
                .and_then(|()| stream.flush());
        }
    }
}

fn write_head(w: &mut impl Write, a: &Answer, len: usize, head_only: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", a.status);
    let upstream_length = a.header("content-length").is_some() && head_only;
    for (k, v) in &a.headers {
        let k_lower = k.to_ascii_lowercase();
        if k_lower == "connection"
            || k_lower == "transfer-encoding"
            || (k_lower == "content-length" && !upstream_length)
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !upstream_length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    w.write_all(head.as_bytes())
}

fn read_request(stream: &mut impl Read) -> Option<Seen> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let headers = read_headers(&mut r)?;
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

fn read_headers(r: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some(headers);
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
}

/// `req` sent to the plain registry on `port`, and its whole answer.
fn relay(port: u16, req: &Seen) -> Answer {
    let mut up = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n",
        req.method, req.target
    );
    for (k, v) in &req.headers {
        let k_lower = k.to_ascii_lowercase();
        if !["host", "connection", "authorization", "content-length"].contains(&k_lower.as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", req.body.len()));
    up.write_all(head.as_bytes()).unwrap();
    up.write_all(&req.body).unwrap();
    let mut r = BufReader::new(up);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let status: u16 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = read_headers(&mut r).unwrap();
    let mut a = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if req.method == "HEAD" {
        return a;
    }
    if a.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            a.body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut a.body).unwrap();
    }
    a
}

/// The registry's Location made to point at `elsewhere` (`scheme://host:port`), path kept.
fn moved_to(location: &str, elsewhere: &str) -> String {
    let path = match location.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => location,
    };
    format!("{elsewhere}{path}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

fn challenge(header: &str) -> Answer {
    Answer::new(
        401,
        &[
            ("WWW-Authenticate", header),
            ("Content-Type", "application/json"),
        ],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
    )
}

/// Every variable through which curl and ureq take a proxy.
const PROXY_VARIABLES: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// kube-bundle with `args`, the password on standard input, `env` added, run through bash
/// so that `shell` (a umask, a ulimit) comes first.
fn kube_bundle_env(
    project: &Project,
    shell: &str,
    args: &[&str],
    stdin: &str,
    env: &[(&str, String)],
) -> std::process::Child {
    let mut cmd = Command::new(tool("bash"));
    cmd.arg("-c")
        .arg(format!("{shell}\nexec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(args)
        .current_dir(project.dir.path())
        .env("HOME", project.dir.path())
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in PROXY_VARIABLES.into_iter().chain(["no_proxy", "NO_PROXY"]) {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

fn run_env(project: &Project, shell: &str, args: &[&str], stdin: &str) -> Output {
    kube_bundle_env(project, shell, args, stdin, &[])
        .wait_with_output()
        .unwrap()
}

/// [`run_env`] that must succeed.
fn pull_ok(project: &Project, shell: &str, args: &[&str], stdin: &str) {
    let out = run_env(project, shell, args, stdin);
    assert!(out.status.success(), "{args:?}:\n{}", stderr(&out));
}

/// A plain docker-registry (no auth) with the project's dist pushed at `v1`, and the
/// push report.
fn pushed(project: &Project) -> (Registry, serde_json::Value) {
    let reg = Registry::start_with(false);
    let report = push_plain(project, &reg.reference("v1")).0;
    (reg, report)
}

/// `push --plain-http` of the project's dist that must succeed: its report and stderr.
pub(crate) fn push_plain(project: &Project, reference: &str) -> (serde_json::Value, String) {
    let out = kube_bundle_stdin(
        project,
        &[
            "push",
            "--allow-plain-secrets",
            "--plain-http",
            "--output",
            "json",
            reference,
        ],
        "",
    );
    assert!(out.status.success(), "push failed:\n{}", stderr(&out));
    (serde_json::from_str(&stdout(&out)).unwrap(), stderr(&out))
}

/// A manifest or index the registry holds, by tag or digest.
fn document(reg: &Registry, target: &str) -> serde_json::Value {
    let a = relay(
        reg.port,
        &Seen::get(&format!("/v2/{REPO}/manifests/{target}")),
    );
    assert_eq!(a.status, 200, "{target}");
    serde_json::from_slice(&a.body).unwrap()
}

/// Documents a scripted registry serves in place of the real one's.
#[derive(Default, Clone)]
struct Documents(Vec<(String, Vec<u8>)>);

impl Documents {
    /// Serves `doc` at `target` (a tag) and at its digest; returns (digest, size).
    fn put(&mut self, target: Option<&str>, doc: &serde_json::Value) -> (String, usize) {
        let bytes = serde_json::to_vec(doc).unwrap();
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        for t in target.into_iter().chain([digest.as_str()]) {
            self.0
                .push((format!("/v2/{REPO}/manifests/{t}"), bytes.clone()));
        }
        (digest, bytes.len())
    }

    fn answer(&self, req: &Seen) -> Option<Answer> {
        let (_, bytes) = self.0.iter().find(|(p, _)| req.path() == p)?;
        let media = serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["mediaType"]
            .as_str()
            .unwrap()
            .to_string();
        Some(Answer::new(
            200,
            &[
                ("Content-Type", &media),
                (
                    "Docker-Content-Digest",
                    &format!("sha256:{}", sha256_hex(bytes)),
                ),
            ],
            bytes.clone(),
        ))
    }
}

/// Serves `docs`, relays everything else to the registry on `upstream`.
fn serving(upstream: u16, docs: Documents) -> impl Fn(&Seen) -> Reply + Send + Sync {
    move |req| Reply::Send(docs.answer(req).unwrap_or_else(|| relay(upstream, req)))
}

fn blob_path(digest: &str) -> String {
    format!("/v2/{REPO}/blobs/{digest}")
}

fn pull_args<'a>(out: &'a str, reference: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["pull", "--plain-http", "-o", out];
    args.extend_from_slice(extra);
    args.push(reference);
    args
}

/// Every entry under `dir` (not following links), with its mode and kind.
fn listing(dir: &Path) -> Vec<(String, u32, &'static str)> {
    let mut all: Vec<_> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let kind = if m.file_type().is_symlink() {
                "link"
            } else if m.is_dir() {
                "dir"
            } else {
                "file"
            };
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
                kind,
            )
        })
        .collect();
    all.sort();
    all
}

fn bundle_name(project: &Project, node: &str) -> String {
    project
        .tarball(node)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string()
}

/// A folder with a CA and a server certificate for 127.0.0.1 and 127.0.0.2, and the CA.
fn certificates() -> (tempfile::TempDir, PathBuf) {
    let certs = tempfile::tempdir().unwrap();
    make_tls(certs.path());
    let ca = certs.path().join("ca.pem");
    (certs, ca)
}

/// H2: an upload location or a redirect to another host gets no credentials, and its own
/// challenge is not answered; over TLS and plain http alike. A redirect target that needs
/// no credentials (a CDN) still works.
#[test]
fn credentials_go_only_to_the_registry_that_challenged() {
    let project = project_with_binary(&binary_bytes(600_000, 4));
    let (upstream, _) = pushed(&project);
    let (certs, ca) = certificates();
    let up = upstream.port;
    for tls in [false, true] {
        let dir = tls.then_some(certs.path());
        let mode: Vec<&str> = if tls {
            vec!["--ca-file", ca.to_str().unwrap()]
        } else {
            vec!["--plain-http"]
        };
        // "Another host" with a challenge of its own, and a token realm beside it.
        let realm = Arc::new(Mutex::new(String::new()));
        let other = Scripted::start("127.0.0.2", dir, {
            let realm = realm.clone();
            move |req| {
                if req.path() == "/token" {
                    return Reply::Send(Answer::new(200, &[], r#"{"token":"stolen"}"#));
                }
                let realm = realm.lock().unwrap().clone();
                Reply::Send(challenge(&format!(
                    "Bearer realm=\"{realm}\",service=\"other\""
                )))
            }
        });
        *realm.lock().unwrap() = format!("{}/token", other.url());
        let cdn = Scripted::start("127.0.0.2", dir, move |req| Reply::Send(relay(up, req)));
        let (other_url, cdn_url) = (other.url(), cdn.url());
        let redirect_to = Arc::new(Mutex::new(other_url.clone()));
        let target = redirect_to.clone();
        let front = Scripted::start("127.0.0.1", dir, move |req| {
            if req.header("authorization") != Some(basic().as_str()) {
                return Reply::Send(challenge("Basic realm=\"registry\""));
            }
            if req.method == "HEAD" && req.path().contains("/blobs/") {
                // Every blob is new, so push uploads them all.
                return Reply::Send(Answer::new(404, &[], ""));
            }
            if req.method == "GET" && req.path().contains("/blobs/") {
                let to = target.lock().unwrap().clone();
                return Reply::Send(Answer::new(
                    307,
                    &[("Location", &format!("{to}{}", req.target))],
                    "",
                ));
            }
            let mut a = relay(up, req);
            if let Some(l) = a.header("location").map(str::to_string) {
                a.set_header("Location", &moved_to(&l, &other_url));
            }
            Reply::Send(a)
        });

        // push: the upload location is on the other host.
        let mut args = vec![
            "push",
            "--allow-plain-secrets",
            "--username",
            USER,
            "--password-stdin",
        ];
        args.extend_from_slice(&mode);
        let reference = front.reference("v1");
        args.push(&reference);
        let out = kube_bundle_stdin(&project, &args, &format!("{PASSWORD}\n"));
        assert_fails(
            &out,
            1,
            &format!(
                "`{}`, which is not the registry `{}`, asks for credentials",
                other.authority(),
                front.authority()
            ),
        );
        let at_other = other.seen();
        assert!(
            at_other.iter().any(|r| r.method == "PUT"),
            "the upload went to the other host: {at_other:?}"
        );
        assert!(
            at_other.iter().all(|r| r.header("authorization").is_none()),
            "no credentials to the other host: {at_other:?}"
        );
        assert!(front
            .seen()
            .iter()
            .any(|r| r.header("authorization") == Some(basic().as_str())));

        // pull: blobs redirect to the other host, which challenges with its own realm.
        let pulled = project.path(&format!("pulled-{tls}"));
        let mut args = vec![
            "pull",
            "--username",
            USER,
            "--password-stdin",
            "-o",
            pulled.to_str().unwrap(),
        ];
        args.extend_from_slice(&mode);
        args.push(&reference);
        let out = kube_bundle_stdin(&project, &args, &format!("{PASSWORD}\n"));
        assert_fails(
            &out,
            1,
            &format!("`{}`, which is not the registry", other.authority()),
        );
        let at_other = other.seen();
        assert!(at_other.iter().any(|r| r.path().contains("/blobs/")));
        assert!(
            at_other
                .iter()
                .all(|r| r.header("authorization").is_none() && r.path() != "/token"),
            "no credentials and no token request to the other host: {at_other:?}"
        );
        assert!(!pulled.join(bundle_name(&project, "m1")).exists());

        // A redirect target that needs nothing (a CDN) serves the blobs, credential-free.
        *redirect_to.lock().unwrap() = cdn_url.clone();
        let out = kube_bundle_stdin(&project, &args, &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "{}", stderr(&out));
        for (node, _) in NODES {
            assert_eq!(
                sha256_file(&pulled.join(bundle_name(&project, node))),
                sha256_file(&project.tarball(node))
            );
        }
        let at_cdn = cdn.seen();
        assert!(!at_cdn.is_empty());
        assert!(at_cdn.iter().all(|r| r.header("authorization").is_none()));
    }
}

/// H1 and H2: a Bearer realm gets the credentials only on the registry's own origin or
/// when `--token-server` names it; an http realm under https, or one that is no URL, is
/// refused before anything is sent there.
#[test]
fn bearer_realms_elsewhere_or_over_http_get_no_credentials() {
    let project = project_with_binary(&binary_bytes(300_000, 4));
    let (upstream, _) = pushed(&project);
    let (certs, ca) = certificates();
    let up = upstream.port;
    let tokens = |req: &Seen| {
        if req.header("authorization") == Some(basic().as_str()) {
            Reply::Send(Answer::new(200, &[], r#"{"token":"good"}"#))
        } else {
            Reply::Send(challenge("Basic realm=\"tokens\""))
        }
    };
    let https_tokens = Scripted::start("127.0.0.2", Some(certs.path()), tokens);
    let http_tokens = Scripted::start("127.0.0.2", None, tokens);
    let realm = Arc::new(Mutex::new(String::new()));
    let front = Scripted::start("127.0.0.1", Some(certs.path()), {
        let realm = realm.clone();
        move |req| {
            if req.path() == "/token" {
                return tokens(req);
            }
            if req.header("authorization") == Some("Bearer good") {
                return Reply::Send(relay(up, req));
            }
            let realm = realm.lock().unwrap().clone();
            Reply::Send(challenge(&format!(
                "Bearer realm=\"{realm}\",service=\"reg\",scope=\"repository:{REPO}:pull\""
            )))
        }
    });
    let pull = |extra: &[&str], out: &str| {
        let mut args = vec![
            "pull",
            "--ca-file",
            ca.to_str().unwrap(),
            "--username",
            USER,
            "--password-stdin",
            "--node",
            "m1",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        let reference = front.reference("v1");
        args.push(&reference);
        kube_bundle_stdin(&project, &args, &format!("{PASSWORD}\n"))
    };

    // An http realm from an https registry: refused, nothing sent there.
    *realm.lock().unwrap() = format!("{}/token", http_tokens.url());
    let out = pull(&[], "p1");
    assert_fails(
        &out,
        1,
        "the registry is reached over https, and this is plain http",
    );
    assert!(http_tokens.seen().is_empty(), "{:?}", http_tokens.seen());
    // Not an http URL at all.
    *realm.lock().unwrap() = "ftp://127.0.0.2:21/token".into();
    assert_fails(
        &pull(&[], "p1"),
        1,
        "refusing `ftp://127.0.0.2:21/token`: not an http or https URL",
    );

    // An https realm on another host: asked without the credentials, so it refuses, and
    // the hint names the flag that would allow it.
    *realm.lock().unwrap() = format!("{}/token", https_tokens.url());
    let out = pull(&[], "p1");
    assert_fails(
        &out,
        1,
        &format!("pass --token-server {}", https_tokens.authority()),
    );
    let asked = https_tokens.seen();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].header("authorization").is_none(), "{asked:?}");
    assert!(!project
        .path("p1")
        .join(bundle_name(&project, "m1"))
        .exists());

    // Named by --token-server: it gets them, and the pull goes through.
    let named = https_tokens.authority();
    let out = pull(&["--token-server", &named], "p2");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(https_tokens
        .seen()
        .iter()
        .any(|r| r.header("authorization") == Some(basic().as_str())));
    assert_eq!(
        sha256_file(&project.path("p2").join(bundle_name(&project, "m1"))),
        sha256_file(&project.tarball("m1"))
    );

    // A realm on the registry's own origin (Harbor, Nexus) needs no flag.
    *realm.lock().unwrap() = format!("{}/token", front.url());
    let out = pull(&[], "p3");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// H3: `--plain-http` ignores every proxy variable, and decides "this machine" on the
/// resolved address, for the registry and for any location or realm it names.
#[test]
fn plain_http_takes_no_proxy_and_stays_on_loopback_addresses() {
    let project = project_with_binary(&binary_bytes(300_000, 4));
    let (upstream, _) = pushed(&project);
    let up = upstream.port;
    let proxy = Scripted::start("127.0.0.1", None, |_| {
        Reply::Send(Answer::new(502, &[], "proxy"))
    });
    let front = Scripted::start("127.0.0.1", None, move |req| {
        if req.header("authorization") != Some(basic().as_str()) {
            return Reply::Send(challenge("Basic realm=\"registry\""));
        }
        Reply::Send(relay(up, req))
    });
    let proxy_url = proxy.url();
    let env: Vec<(&str, String)> = PROXY_VARIABLES
        .into_iter()
        .map(|k| (k, proxy_url.clone()))
        .collect();
    for host in ["127.0.0.1", "localhost"] {
        let reference = format!("{host}:{}/{REPO}:v1", front.port);
        let out = kube_bundle_env(
            &project,
            "",
            &[
                "pull",
                "--plain-http",
                "--username",
                USER,
                "--password-stdin",
                "--node",
                "m2",
                "-o",
                host,
                &reference,
            ],
            &format!("{PASSWORD}\n"),
            &env,
        )
        .wait_with_output()
        .unwrap();
        assert!(out.status.success(), "{host}: {}", stderr(&out));
        assert_eq!(
            sha256_file(&project.path(host).join(bundle_name(&project, "m2"))),
            sha256_file(&project.tarball("m2"))
        );
    }
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());

    // Names are not addresses: refused unless they resolve to loopback.
    for (registry, why) in [
        (
            "127.0.0.1.invalid:5000",
            "`127.0.0.1.invalid` does not resolve",
        ),
        ("127.evil.invalid", "`127.evil.invalid` does not resolve"),
        ("10.0.0.1:5000", "`10.0.0.1` is not a loopback address"),
        ("0.0.0.0:5000", "`0.0.0.0` is not a loopback address"),
        (
            "[::ffff:10.0.0.1]:5000",
            "`::ffff:10.0.0.1` is not a loopback address",
        ),
    ] {
        let out = kube_bundle_stdin(
            &project,
            &["pull", "--plain-http", &format!("{registry}/{REPO}:v1")],
            "",
        );
        assert_fails(
            &out,
            2,
            &format!("--plain-http: `{registry}` is not this machine ({why}"),
        );
    }

    // A location, a redirect or a realm off this machine: refused, never connected to.
    for (what, target) in [
        ("location", "http://192.0.2.1:9"),
        ("redirect", "http://192.0.2.1:9"),
        ("realm", "http://192.0.2.1:9/token"),
    ] {
        let target = target.to_string();
        let front = Scripted::start("127.0.0.1", None, move |req| match what {
            "realm" => Reply::Send(challenge(&format!("Bearer realm=\"{target}\""))),
            "redirect" if req.path().contains("/manifests/") => Reply::Send(Answer::new(
                302,
                &[("Location", &format!("{target}{}", req.target))],
                "",
            )),
            _ => {
                let mut a = relay(up, req);
                if let Some(l) = a.header("location").map(str::to_string) {
                    a.set_header("Location", &moved_to(&l, &target));
                }
                if req.method == "HEAD" {
                    a = Answer::new(404, &[], "");
                }
                Reply::Send(a)
            }
        });
        let start = Instant::now();
        let reference = front.reference("v9");
        let verb = if what == "location" { "push" } else { "pull" };
        let mut args = vec![verb, "--plain-http", &reference];
        if verb == "push" {
            args.insert(1, "--allow-plain-secrets");
        }
        let out = kube_bundle_stdin(&project, &args, "");
        assert_fails(
            &out,
            1,
            "`192.0.2.1` is not a loopback address, and --plain-http stays on this machine",
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: {:?}",
            start.elapsed()
        );
    }
}

/// The project's nodes' manifests and the dist manifest, as pushed: (index, per node, dist).
fn manifests(reg: &Registry) -> (serde_json::Value, Vec<serde_json::Value>, serde_json::Value) {
    let index = document(reg, "v1");
    let entries = index["manifests"].as_array().unwrap();
    let nodes = entries[..entries.len() - 1]
        .iter()
        .map(|d| document(reg, d["digest"].as_str().unwrap()))
        .collect();
    let dist = document(reg, entries.last().unwrap()["digest"].as_str().unwrap());
    (index, nodes, dist)
}

/// An index entry for `doc`, served from `docs`, with the annotations of `like`.
fn entry(
    docs: &mut Documents,
    doc: &serde_json::Value,
    like: &serde_json::Value,
) -> serde_json::Value {
    let (digest, size) = docs.put(None, doc);
    let mut e = like.clone();
    e["digest"] = digest.into();
    e["size"] = size.into();
    e
}

/// H4, L8: the layer cache (every node's keys) is 0700 and its files 0600 from the start,
/// whatever the umask, after a failure and after kill -9; a rerun reuses it; only
/// kube-bundle's own files in it are ever deleted.
#[test]
fn pull_keeps_its_cache_private_after_failures_and_kills() {
    let project = project_with_binary(&binary_bytes(3 << 20, 3));
    let (upstream, report) = pushed(&project);
    let up = upstream.port;
    let shared = layers(&report["nodes"][0])[1].clone();
    let head = layers(&report["nodes"][0])[0].clone();
    let mode = Arc::new(Mutex::new("cut"));
    let front = {
        let (mode, shared) = (mode.clone(), shared.clone());
        Scripted::start("127.0.0.1", None, move |req| {
            let m = *mode.lock().unwrap();
            if req.method == "GET" && req.path() == blob_path(&shared) && m != "relay" {
                let a = relay(up, req);
                return match m {
                    "cut" => {
                        let half = a.body.len() / 2;
                        Reply::Cut(a, half)
                    }
                    _ => Reply::Silent,
                };
            }
            Reply::Send(relay(up, req))
        })
    };
    let reference = front.reference("v1");
    let private = |dir: &Path| {
        let cache = dir.join(".kube-bundle-pull");
        assert_eq!(mode_of(&cache), 0o700);
        let inside = listing(&cache);
        assert!(
            inside.iter().any(|(n, _, _)| *n == head["sha256:".len()..]),
            "the first node's own member was cached: {inside:?}"
        );
        for (name, m, kind) in &inside {
            assert_eq!((*m, *kind), (0o600, "file"), "{name}: {inside:?}");
        }
        inside
    };

    // A connection cut in the middle of the binary's member, every time: the pull fails
    // after its retries; nothing is written under a final name.
    for umask in ["022", "000"] {
        let out = format!("cut-{umask}");
        let res = run_env(
            &project,
            &format!("umask {umask}"),
            &pull_args(&out, &reference, &[]),
            "",
        );
        assert_fails(&res, 1, "the connection ended after");
        assert_eq!(mode_of(&project.path(&out)), 0o700, "a new output folder");
        private(&project.path(&out));
        let top: Vec<_> = listing(&project.path(&out))
            .into_iter()
            .filter(|(n, _, _)| !n.starts_with(".kube-bundle-pull"))
            .collect();
        assert!(top.is_empty(), "{top:?}");
    }

    // kill -9 while the binary's member downloads, umask 000.
    *mode.lock().unwrap() = "silent";
    let mut child = kube_bundle_env(
        &project,
        "umask 000",
        &pull_args("killed", &reference, &[]),
        "",
        &[],
    );
    // The cut runs above asked for the blob too: only this pull's requests count.
    let earlier = front.seen().len();
    let start = Instant::now();
    while !front.seen()[earlier..]
        .iter()
        .any(|r| r.method == "GET" && r.path() == blob_path(&shared))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            front.seen()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let left = private(&project.path("killed"));
    assert!(
        left.iter().any(|(n, _, _)| n.starts_with(".tmp-")),
        "the interrupted download's file is there, private: {left:?}"
    );

    // The rerun completes, reuses what was checked, and leaves no cache behind.
    *mode.lock().unwrap() = "relay";
    let before = front.seen().len();
    pull_ok(
        &project,
        "umask 000",
        &pull_args("killed", &reference, &[]),
        "",
    );
    assert!(
        !front.seen()[before..]
            .iter()
            .any(|r| r.path() == blob_path(&head)),
        "the cached member is not downloaded again"
    );
    for (node, _) in NODES {
        let got = project.path("killed").join(bundle_name(&project, node));
        assert_eq!(sha256_file(&got), sha256_file(&project.tarball(node)));
        assert_eq!(mode_of(&got), 0o600);
    }
    assert!(!project.path("killed/.kube-bundle-pull").exists());

    // A cache folder an earlier kube-bundle left world-readable, holding a file of the
    // user's: made private, kube-bundle's files go, the user's stays.
    let cache = project.path("old/.kube-bundle-pull");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(cache.join("notes.txt"), "mine").unwrap();
    std::fs::write(cache.join(&head["sha256:".len()..]), "stale").unwrap();
    std::fs::set_permissions(
        cache.join(&head["sha256:".len()..]),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    pull_ok(
        &project,
        "umask 022",
        &pull_args("old", &reference, &[]),
        "",
    );
    assert_eq!(
        listing(&cache),
        vec![("notes.txt".to_string(), 0o644, "file")]
    );
    assert_eq!(
        std::fs::read_to_string(cache.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(mode_of(&cache), 0o700);
}

/// M7: links planted where pull writes are replaced or left alone, never followed.
#[test]
fn pull_never_writes_through_planted_links() {
    let project = project_with_binary(&binary_bytes(300_000, 4));
    let (upstream, report) = pushed(&project);
    let reference = upstream.reference("v1");
    let out = project.path("out");
    let cache = out.join(".kube-bundle-pull");
    std::fs::create_dir_all(&cache).unwrap();
    let victims: Vec<PathBuf> = (1..=3)
        .map(|i| {
            let v = project.path(&format!("victim{i}"));
            std::fs::write(&v, "victim").unwrap();
            v
        })
        .collect();
    let m1 = bundle_name(&project, "m1");
    let head = layers(&report["nodes"][0])[0]["sha256:".len()..].to_string();
    std::os::unix::fs::symlink(&victims[0], out.join(&m1)).unwrap();
    let old_tmp = out.join(format!(".{}.tmp", bundle_name(&project, "m2")));
    std::os::unix::fs::symlink(&victims[1], &old_tmp).unwrap();
    std::os::unix::fs::symlink(&victims[2], cache.join(&head)).unwrap();
    pull_ok(
        &project,
        "umask 022",
        &pull_args("out", &reference, &[]),
        "",
    );
    for v in &victims {
        assert_eq!(std::fs::read_to_string(v).unwrap(), "victim");
    }
    let meta = std::fs::symlink_metadata(out.join(&m1)).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by the bundle"
    );
    assert_eq!(mode_of(&out.join(&m1)), 0o600);
    assert_eq!(
        sha256_file(&out.join(&m1)),
        sha256_file(&project.tarball("m1"))
    );
    assert!(
        std::fs::symlink_metadata(&old_tmp)
            .unwrap()
            .file_type()
            .is_symlink(),
        "not kube-bundle's, so not deleted"
    );

    // The cache folder itself a link: refused, nothing written through it.
    let elsewhere = project.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(project.path("out2")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, project.path("out2/.kube-bundle-pull")).unwrap();
    let res = run_env(&project, "", &pull_args("out2", &reference, &[]), "");
    assert_fails(&res, 2, ".kube-bundle-pull`: exists and is not a folder");
    assert!(listing(&elsewhere).is_empty());
}

/// M4, M5, L7: documents that pin nothing (tags or paths where digests belong), that
/// would write two outputs to one path, name files off the list, or disagree with the
/// artifact's SHA256SUMS are refused before anything is downloaded or written.
#[test]
fn pull_refuses_documents_that_pin_nothing_collide_or_disagree_with_sha256sums() {
    let project = project_with_binary(&binary_bytes(300_000, 4));
    let (upstream, _) = pushed(&project);
    let (index, nodes, dist) = manifests(&upstream);
    let entries = index["manifests"].as_array().unwrap().clone();
    let title = |l: &serde_json::Value| l["annotations"]["org.opencontainers.image.title"].clone();
    let layer_titled = |name: &str| {
        dist["layers"]
            .as_array()
            .unwrap()
            .iter()
            .position(|l| title(l) == name)
            .unwrap()
    };
    let m1 = bundle_name(&project, "m1");
    type Edit<'a> = Box<dyn Fn(&mut Documents, &mut serde_json::Value) + 'a>;
    let cases: Vec<(&str, Edit, String)> = vec![
        (
            "an index entry that is a tag",
            Box::new(|_, ix| ix["manifests"][0]["digest"] = "v1-m1".into()),
            "`v1-m1` is not a sha256 digest".into(),
        ),
        (
            "an index entry that is a path",
            Box::new(|_, ix| ix["manifests"][0]["digest"] = "../../other/manifests/v1".into()),
            "`../../other/manifests/v1` is not a sha256 digest".into(),
        ),
        (
            "a layer that is a tag",
            Box::new(|docs, ix| {
                let mut m = nodes[0].clone();
                m["layers"][0]["digest"] = "v1".into();
                ix["manifests"][0] = entry(docs, &m, &entries[0]);
            }),
            "`v1` is not a sha256 digest".into(),
        ),
        (
            "one node twice",
            Box::new(|_, ix| {
                let mut twice = entries[1].clone();
                twice["annotations"]["io.kube-bundle.node"] = "m1".into();
                ix["manifests"][1] = twice;
            }),
            "the index lists node `m1` twice".into(),
        ),
        (
            "a node's entry holding another node's manifest",
            Box::new(|_, ix| {
                ix["manifests"][0]["digest"] = entries[1]["digest"].clone();
                ix["manifests"][0]["size"] = entries[1]["size"].clone();
            }),
            "the index lists node `m1` with a manifest of node `m2`".into(),
        ),
        (
            "two nodes' bundles under one name",
            Box::new(|docs, ix| {
                let mut m = nodes[1].clone();
                m["annotations"]["io.kube-bundle.bundle"] = m1.clone().into();
                ix["manifests"][1] = entry(docs, &m, &entries[1]);
            }),
            format!("two files of the artifact are named `{m1}`"),
        ),
        (
            "a bundle name that is not a tarball",
            Box::new(|docs, ix| {
                let mut m = nodes[0].clone();
                m["annotations"]["io.kube-bundle.bundle"] = "ca.pem".into();
                ix["manifests"][0] = entry(docs, &m, &entries[0]);
            }),
            "the bundle name `ca.pem` does not end in `.tar.gz`".into(),
        ),
        (
            "a dist file titled as a bundle",
            Box::new(|docs, ix| {
                let mut d = dist.clone();
                d["layers"][layer_titled("ca.pem")]["annotations"]
                    ["org.opencontainers.image.title"] = m1.clone().into();
                let last = entries.len() - 1;
                ix["manifests"][last] = entry(docs, &d, &entries[last]);
            }),
            format!("refusing the dist file `{m1}`"),
        ),
        (
            "a dist file swapped for another blob",
            Box::new(|docs, ix| {
                let mut d = dist.clone();
                let (from, to) = (layer_titled("rollout.sh"), layer_titled("fetch.sh"));
                let mut swapped = d["layers"][from].clone();
                swapped["annotations"]["org.opencontainers.image.title"] = "fetch.sh".into();
                d["layers"][to] = swapped;
                let last = entries.len() - 1;
                ix["manifests"][last] = entry(docs, &d, &entries[last]);
            }),
            "`fetch.sh` does not match its sha256 in the artifact's SHA256SUMS".into(),
        ),
        (
            "a dist file missing that SHA256SUMS lists",
            Box::new(|docs, ix| {
                let mut d = dist.clone();
                d["layers"]
                    .as_array_mut()
                    .unwrap()
                    .remove(layer_titled("ca.pem"));
                let last = entries.len() - 1;
                ix["manifests"][last] = entry(docs, &d, &entries[last]);
            }),
            "its SHA256SUMS lists `ca.pem`, which the artifact does not carry".into(),
        ),
    ];
    for (i, (case, edit, want)) in cases.into_iter().enumerate() {
        let mut docs = Documents::default();
        let mut ix = index.clone();
        edit(&mut docs, &mut ix);
        docs.put(Some("evil"), &ix);
        let front = Scripted::start("127.0.0.1", None, serving(upstream.port, docs));
        let out = format!("evil-{i}");
        let res = run_env(
            &project,
            "",
            &pull_args(&out, &front.reference("evil"), &[]),
            "",
        );
        assert_fails(&res, 1, &want);
        assert!(!project.path(&out).exists(), "{case}: nothing written");
        let seen = front.seen();
        assert!(
            !seen.iter().any(|r| r.path().contains("/blobs/")
                && r.path().contains("/blobs/sha256:")
                && !dist["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| title(l) == "SHA256SUMS"
                        && r.path().ends_with(l["digest"].as_str().unwrap()))),
            "{case}: no blob but SHA256SUMS was downloaded: {seen:?}"
        );
        assert!(
            !seen.iter().any(|r| r.target.contains("other")),
            "{case}: {seen:?}"
        );
    }

    // The untouched artifact: every file is listed in the pulled SHA256SUMS, and
    // sha256sum agrees.
    pull_ok(
        &project,
        "",
        &pull_args("good", &upstream.reference("v1"), &[]),
        "",
    );
    let files = file_names(&project.path("good"), &["SHA256SUMS"]);
    assert_eq!(sha256sum_checked(&project.path("good")), files);
    assert!(files.contains(&"fetch.sh".to_string()) && files.contains(&"rollout.sh".to_string()));
}

/// L1: a blob is never read past the size its manifest gives, and an artifact whose
/// declared sizes add up to more than --max-size is refused before any download.
#[test]
fn pull_caps_what_it_downloads() {
    let project = project_with_binary(&binary_bytes(3 << 20, 3));
    let (upstream, report) = pushed(&project);
    let (index, nodes, _) = manifests(&upstream);
    let entries = index["manifests"].as_array().unwrap().clone();
    let head = layers(&report["nodes"][0])[0].clone();
    let head_size = report["nodes"][0]["layers"][0]["size"].as_u64().unwrap();

    // An endless body for a small layer.
    let up = upstream.port;
    let endless = Scripted::start("127.0.0.1", None, {
        let head = head.clone();
        move |req| {
            if req.method == "GET" && req.path() == blob_path(&head) {
                return Reply::Endless;
            }
            Reply::Send(relay(up, req))
        }
    });
    let start = Instant::now();
    let res = run_env(
        &project,
        "",
        &pull_args("endless", &endless.reference("v1"), &[]),
        "",
    );
    assert_fails(
        &res,
        1,
        &format!("the registry sent more than the {head_size} bytes the manifest gives the blob"),
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    let left: u64 = listing(&project.path("endless"))
        .iter()
        .map(|(n, _, _)| {
            std::fs::symlink_metadata(project.path("endless").join(n))
                .unwrap()
                .len()
        })
        .sum();
    assert!(left <= 4096 + 5 * (3 << 20), "{left} bytes on disk");

    // The binary's member 40 times in one manifest, and a layer of 10^12 bytes.
    let shared = nodes[0]["layers"][1].clone();
    let mut amplified = nodes[0].clone();
    amplified["layers"] = serde_json::Value::Array(vec![shared; 40]);
    let mut huge = nodes[0].clone();
    huge["layers"][0]["size"] = 1_000_000_000_000u64.into();
    for (name, doc, extra, want) in [
        (
            "amplified",
            amplified,
            vec!["--max-size", "100M"],
            "more than --max-size (104857600 bytes)",
        ),
        (
            "huge",
            huge,
            vec![],
            "more than --max-size (34359738368 bytes)",
        ),
    ] {
        let mut docs = Documents::default();
        let mut ix = index.clone();
        ix["manifests"][0] = entry(&mut docs, &doc, &entries[0]);
        docs.put(Some("evil"), &ix);
        let front = Scripted::start("127.0.0.1", None, serving(up, docs));
        let res = run_env(
            &project,
            "",
            &pull_args(name, &front.reference("evil"), &extra),
            "",
        );
        assert_fails(&res, 1, want);
        let blobs: Vec<_> = front
            .seen()
            .into_iter()
            .filter(|r| r.path().contains("/blobs/"))
            .collect();
        assert!(
            blobs.len() <= 1,
            "only SHA256SUMS was downloaded: {blobs:?}"
        );
        assert!(!project.path(name).exists());
    }
}

/// M3: a silent, dripping or endless registry is given up on within the limits; a slow
/// link above the floor is not.
#[test]
fn silent_and_dripping_registries_are_given_up_on_in_bounded_time() {
    let project = project_with_binary(&binary_bytes(300_000, 4));
    let (upstream, report) = pushed(&project);
    let up = upstream.port;
    let head = layers(&report["nodes"][0])[0].clone();
    let mode = Arc::new(Mutex::new("silent"));
    let front = {
        let (mode, head) = (mode.clone(), head.clone());
        Scripted::start("127.0.0.1", None, move |req| {
            let m = *mode.lock().unwrap();
            let blob = req.method == "GET" && req.path() == blob_path(&head);
            match m {
                "silent" if blob => Reply::Silent,
                "drip" if blob => Reply::Drip(relay(up, req), Duration::from_millis(50)),
                "slow" if blob => Reply::Throttle(relay(up, req), 4096),
                "silent-upload" if req.method == "PUT" && req.path().contains("/uploads/") => {
                    Reply::Silent
                }
                "silent-upload" if req.method == "HEAD" => Reply::Send(Answer::new(404, &[], "")),
                _ => {
                    // Upload locations relative, so the upload comes here too.
                    let mut a = relay(up, req);
                    if let Some(l) = a.header("location").map(str::to_string) {
                        a.set_header("Location", &moved_to(&l, ""));
                    }
                    Reply::Send(a)
                }
            }
        })
    };
    let reference = front.reference("v1");
    let timed = |args: &[&str], within: u64, want: &str| {
        let start = Instant::now();
        let res = run_env(&project, "", args, "");
        let took = start.elapsed();
        assert_fails(&res, 1, want);
        assert!(took < Duration::from_secs(within), "{args:?} took {took:?}");
    };
    timed(
        &pull_args("a", &reference, &["--speed-time", "1"]),
        60,
        "no answer within 1 s (--speed-time)",
    );
    timed(
        &pull_args("b", &reference, &["--max-time", "3"]),
        8,
        "gave up after 3 s, the limit --max-time sets for the whole command",
    );
    *mode.lock().unwrap() = "drip";
    timed(
        &pull_args(
            "c",
            &reference,
            &["--speed-limit", "1000", "--speed-time", "1"],
        ),
        60,
        "the transfer was slower than 1000 bytes/s for 1 s (--speed-limit, --speed-time)",
    );
    *mode.lock().unwrap() = "silent-upload";
    timed(
        &[
            "push",
            "--allow-plain-secrets",
            "--plain-http",
            "--speed-time",
            "1",
            "--max-time",
            "6",
            &reference,
        ],
        20,
        "uploading blob",
    );
    // 4 KiB/s over two-second windows stays above a floor of 1 KiB/s.
    *mode.lock().unwrap() = "slow";
    pull_ok(
        &project,
        "",
        &pull_args("d", &reference, &["--node", "m1", "--speed-time", "2"]),
        "",
    );
    assert_eq!(
        sha256_file(&project.path("d").join(bundle_name(&project, "m1"))),
        sha256_file(&project.tarball("m1"))
    );
}

/// L3: a connection dropped mid-blob is resumed with a range request; a registry that
/// ignores the range sends it whole, and that works too.
#[test]
fn a_dropped_download_resumes_with_a_range_request() {
    let project = project_with_binary(&binary_bytes(3 << 20, 3));
    let (upstream, report) = pushed(&project);
    let up = upstream.port;
    let shared = layers(&report["nodes"][0])[1].clone();
    for ranges in [true, false] {
        let cuts = Arc::new(Mutex::new(0usize));
        let front = {
            let (cuts, shared) = (cuts.clone(), shared.clone());
            Scripted::start("127.0.0.1", None, move |req| {
                let blob = req.method == "GET" && req.path() == blob_path(&shared);
                let mut cut = cuts.lock().unwrap();
                if blob && *cut == 0 {
                    *cut = 1;
                    let a = relay(up, req);
                    let at = a.body.len() / 3;
                    return Reply::Cut(a, at);
                }
                if blob && !ranges {
                    let mut whole = req.clone();
                    whole
                        .headers
                        .retain(|(k, _)| !k.eq_ignore_ascii_case("range"));
                    return Reply::Send(relay(up, &whole));
                }
                Reply::Send(relay(up, req))
            })
        };
        let out = format!("resumed-{ranges}");
        pull_ok(
            &project,
            "",
            &pull_args(&out, &front.reference("v1"), &[]),
            "",
        );
        for (node, _) in NODES {
            assert_eq!(
                sha256_file(&project.path(&out).join(bundle_name(&project, node))),
                sha256_file(&project.tarball(node))
            );
        }
        let size = report["nodes"][0]["layers"][1]["size"].as_u64().unwrap();
        let gets: Vec<Option<String>> = front
            .seen()
            .iter()
            .filter(|r| r.method == "GET" && r.path() == blob_path(&shared))
            .map(|r| r.header("range").map(str::to_string))
            .collect();
        assert_eq!(
            gets,
            vec![None, Some(format!("bytes={}-", size / 3))],
            "one cut, one resume from where it stopped"
        );
    }
}

/// L8: a full disk (here a file-size limit) is reported as the file being written, at
/// once, not as a registry that cannot be reached.
#[test]
fn a_write_failure_names_the_file_not_the_registry() {
    let project = project_with_binary(&binary_bytes(3 << 20, 3));
    let (upstream, _) = pushed(&project);
    let start = Instant::now();
    let res = run_env(
        &project,
        "ulimit -f 512; trap '' XFSZ",
        &pull_args("full", &upstream.reference("v1"), &[]),
        "",
    );
    assert_fails(&res, 1, "error: writing `");
    assert!(
        stderr(&res).contains("/full/.kube-bundle-pull/.tmp-"),
        "{}",
        stderr(&res)
    );
    assert!(stderr(&res).contains("File too large"), "{}", stderr(&res));
    assert!(!stderr(&res).contains("127.0.0.1"), "{}", stderr(&res));
    assert!(start.elapsed() < Duration::from_secs(5), "not retried");
}

/// M8, L7: push reads dist/SHA256SUMS strictly, and sends only dist files it lists and
/// matches; all of this is bad input, found before the registry is contacted.
#[test]
fn push_refuses_a_sha256sums_it_cannot_vouch_for() {
    let project = project_with_binary(b"#!/bin/sh\necho kcm\n");
    let reg = Registry::start_with(false);
    let sums_path = project.path("dist/SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let m3 = bundle_name(&project, "m3");
    let line_of = |name: &str| {
        1 + sums
            .lines()
            .position(|l| l.ends_with(&format!("  {name}")))
            .unwrap()
    };
    let binary_mode = sums.replace(&format!("  {m3}"), &format!(" *{m3}"));
    let without_fetch: String = sums
        .lines()
        .filter(|l| !l.ends_with("  fetch.sh"))
        .map(|l| format!("{l}\n"))
        .collect();
    let admin = format!("{sums}{}  admin.kubeconfig\n", "0".repeat(64));
    let cases = [
        (
            binary_mode,
            None,
            format!(
                "SHA256SUMS` line {}: `{} *{m3}` is not `SHA256  NAME`",
                line_of(&m3),
                sha256_file(&project.tarball("m3"))
            ),
        ),
        (
            without_fetch,
            None,
            "dist/fetch.sh`: is not listed in".to_string(),
        ),
        (
            sums.clone(),
            Some("ca.pem"),
            "dist/ca.pem`: does not match its sha256 in SHA256SUMS".to_string(),
        ),
        (
            admin,
            None,
            "`admin.kubeconfig` is neither a bundle (`NAME.tar.gz`) nor a dist file kube-bundle writes"
                .to_string(),
        ),
    ];
    let ca = std::fs::read(project.path("dist/ca.pem")).unwrap();
    for (text, changed, want) in cases {
        std::fs::write(&sums_path, text).unwrap();
        if let Some(f) = changed {
            std::fs::write(project.path(&format!("dist/{f}")), b"changed\n").unwrap();
        }
        let out = kube_bundle_stdin(
            &project,
            &[
                "push",
                "--allow-plain-secrets",
                "--plain-http",
                &reg.reference("v1"),
            ],
            "",
        );
        assert_fails(&out, 2, &want);
        assert!(reg.blobs().is_empty(), "{want}: nothing was pushed");
        std::fs::write(project.path("dist/ca.pem"), &ca).unwrap();
    }
    std::fs::write(&sums_path, sums).unwrap();
    let out = kube_bundle_stdin(
        &project,
        &[
            "push",
            "--allow-plain-secrets",
            "--plain-http",
            &reg.reference("v1"),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// M6: push reads back what it wrote. A push with fewer nodes reports the node tags an
/// earlier push left; a concurrent push that moved the tag or a node tag meanwhile is an
/// error.
#[test]
fn push_reports_stale_node_tags_and_a_concurrent_push() {
    let three = project_with_binary(b"#!/bin/sh\necho kcm\n");
    let (upstream, first) = pushed(&three);
    let two =
        Project::new(&INVENTORY.replace("\n[[nodes]]\nname = \"m3\"\nip = \"127.0.1.3\"\n", "\n"));
    two.build_ok();
    let (report, err) = push_plain(&two, &upstream.reference("v1"));
    assert_eq!(report["nodes"].as_array().unwrap().len(), 2);
    let old_m3 = first["nodes"][2]["digest"].as_str().unwrap();
    assert_eq!(
        report["stale_tags"],
        serde_json::json!([{"tag": "v1-m3", "node": "m3", "digest": old_m3}])
    );
    assert!(
        err.contains(&format!(
            "warning: `v1-m3` still holds node `m3`'s bundle from an earlier push ({old_m3}); \
             this push's index has no node `m3`"
        )),
        "{err}"
    );
    // pull goes through the index: two bundles, the new ones.
    pull_ok(
        &two,
        "",
        &pull_args("pulled", &upstream.reference("v1"), &[]),
        "",
    );
    let bundles: Vec<_> = listing(&two.path("pulled"))
        .into_iter()
        .filter(|(n, _, _)| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(bundles.len(), 2, "{bundles:?}");

    // Another push lands on `v2` (or on `v2-m2`) right after this one put the index.
    let v1_index = relay(
        upstream.port,
        &Seen::get(&format!("/v2/{REPO}/manifests/v1")),
    )
    .body;
    let v1_m2 = relay(
        upstream.port,
        &Seen::get(&format!("/v2/{REPO}/manifests/v1-m2")),
    )
    .body;
    for (moved, bytes) in [("v2", v1_index), ("v2-m2", v1_m2)] {
        let up = upstream.port;
        let tag = if moved == "v2" { "v2" } else { "v3" };
        let moved = moved.replace("v2", tag);
        let front = {
            let moved = moved.clone();
            Scripted::start("127.0.0.1", None, move |req| {
                let a = relay(up, req);
                if req.is("PUT", &format!("/v2/{REPO}/manifests/{tag}")) {
                    let mut other = Seen::get(&format!("/v2/{REPO}/manifests/{moved}"));
                    other.method = "PUT".into();
                    let media = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
                        ["mediaType"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    other.headers = vec![("Content-Type".into(), media)];
                    other.body = bytes.clone();
                    assert_eq!(relay(up, &other).status, 201);
                }
                let mut a = a;
                if let Some(l) = a.header("location").map(str::to_string) {
                    a.set_header("Location", &moved_to(&l, ""));
                }
                Reply::Send(a)
            })
        };
        let out = kube_bundle_stdin(
            &three,
            &[
                "push",
                "--allow-plain-secrets",
                "--plain-http",
                &front.reference(tag),
            ],
            "",
        );
        assert_fails(
            &out,
            1,
            &format!("another push changed `{moved}` while this one ran: it now holds sha256:"),
        );
    }
}

/// A push of an unchanged dist sends no blob at all: it asks about every blob (HEAD),
/// opens no upload and puts nothing but the manifests, which come out the same.
#[test]
fn a_repush_of_an_unchanged_dist_uploads_no_blob() {
    let project = project_with_binary(&binary_bytes(300_000, 4));
    let (upstream, first) = pushed(&project);
    let up = upstream.port;
    let front = Scripted::start("127.0.0.1", None, move |req| Reply::Send(relay(up, req)));
    let (again, err) = push_plain(&project, &front.reference("v1"));
    assert_eq!(again["uploaded_blobs"], 0, "{err}");
    assert_eq!(again["uploaded_bytes"], 0);
    assert_eq!(again["digest"], first["digest"]);
    let pinned = |r: &serde_json::Value| -> Vec<(String, Vec<String>)> {
        r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["digest"].as_str().unwrap().to_string(), layers(n)))
            .collect()
    };
    assert_eq!(pinned(&again), pinned(&first));
    let seen = front.seen();
    let uploads: Vec<_> = seen
        .iter()
        .filter(|r| r.path().contains("/blobs/uploads/") || r.method == "PATCH")
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert!(uploads.is_empty(), "{uploads:?}");
    let mut blobs: Vec<String> = first["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(layers)
        .collect();
    blobs.sort();
    blobs.dedup();
    assert!(blobs.len() > 2, "{blobs:?}");
    for d in &blobs {
        assert!(
            seen.iter().any(|r| r.is("HEAD", &blob_path(d))),
            "{d} was asked about: {seen:?}"
        );
    }
    let puts: Vec<_> = seen.iter().filter(|r| r.method == "PUT").collect();
    assert!(
        puts.iter().all(|r| r.path().contains("/manifests/")),
        "{puts:?}"
    );
    // One manifest a node, the dist's and the index.
    assert_eq!(puts.len(), first["nodes"].as_array().unwrap().len() + 2);
}
