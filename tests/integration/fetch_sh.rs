//! `dist/fetch.sh` against a real registry (Debian's `docker-registry`, plain http on
//! loopback, filled by `kube-bundle push`) and against scripted servers in front of it
//! (`scripted_registry.py`, python3's http.server on 127.0.0.1, with 127.0.0.2 standing for
//! "another host"): every way part 4 of the hostile review made fetch.sh give away the
//! password, write too much, wait forever, deliver a stale bundle or write through a
//! planted link, each with the safe outcome.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::*;
use crate::registry::{
    bare_node_path, binary_bytes, kube_bundle_stdin, layers, make_tls, project_with_binary,
    Registry, PASSWORD, REPO, USER,
};

const SCRIPTED: &str = include_str!("scripted_registry.py");
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A project whose bundles carry a 2.5 MiB binary (three layers, the middle one big),
/// pushed with `--plain-http` under `v1` to a plain registry without auth.
struct Pushed {
    project: Project,
    reg: Registry,
    report: Value,
}

fn pushed() -> Pushed {
    let project = project_with_binary(&binary_bytes((5 << 20) / 2, 3));
    let reg = Registry::start_with(false);
    let report = push_plain(&project, &reg, "v1");
    Pushed {
        project,
        reg,
        report,
    }
}

/// `push --plain-http` of the project's dist at `tag`, which must succeed: its report.
fn push_plain(project: &Project, reg: &Registry, tag: &str) -> Value {
    crate::registry_hostile::push_plain(project, &reg.reference(tag)).0
}

impl Pushed {
    /// `host:port/k8s/control-plane:TAG` at `server` (the registry, or a front of it).
    fn reference_at(&self, server: &str, tag: &str) -> String {
        format!("{server}/{REPO}:{tag}")
    }

    fn node(&self, name: &str) -> &Value {
        self.report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap()
    }

    /// The digest of node `name`'s biggest layer (the binary's member).
    fn big_layer(&self, name: &str) -> String {
        let node = self.node(name);
        node["layers"]
            .as_array()
            .unwrap()
            .iter()
            .max_by_key(|l| l["size"].as_u64().unwrap())
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn tarball(&self, node: &str) -> Vec<u8> {
        std::fs::read(self.project.tarball(node)).unwrap()
    }

    /// What the registry holds at `target` (`v1`, `sha256:…`), as sent.
    fn manifest(&self, target: &str) -> String {
        run_ok(Command::new(tool("curl")).args([
            "-sf",
            "-H",
            &format!("Accept: {MEDIA_INDEX}, {MEDIA_MANIFEST}"),
            &format!(
                "http://127.0.0.1:{}/v2/{REPO}/manifests/{target}",
                self.reg.port
            ),
        ]))
    }

    fn upstream(&self) -> String {
        format!("http://127.0.0.1:{}", self.reg.port)
    }

    /// fetch.sh --plain-http, then `extra`, of `v1` at `server` (the registry or a front
    /// of it), node m1, into `into`.
    fn fetch_plain(&self, server: &str, extra: &[&str], into: &Path) -> Output {
        let reference = self.reference_at(server, "v1");
        let mut args = vec!["--plain-http"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&reference, "m1"]);
        fetch(&self.project, &args, "", &[], into)
    }

    /// fetch.sh as the test user (the password on standard input), trusting the CA in
    /// `tls`, then `extra`, of `v1` at `server`, node `node`, into `into`.
    fn fetch_user(
        &self,
        tls: &Path,
        server: &str,
        extra: &[&str],
        node: &str,
        into: &Path,
    ) -> Output {
        let ca = tls.join("ca.pem");
        let reference = self.reference_at(server, "v1");
        let mut args = vec![
            "--ca-file",
            ca.to_str().unwrap(),
            "--username",
            USER,
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&reference, node]);
        fetch(&self.project, &args, &format!("{PASSWORD}\n"), &[], into)
    }

    /// `out` succeeded and `into` holds `node`'s tarball as it was built.
    #[track_caller]
    fn assert_fetched(&self, out: &Output, into: &Path, node: &str) {
        assert!(out.status.success(), "{}", stderr(out));
        let got = std::fs::read(into.join(format!("control-plane-{node}.tar.gz"))).unwrap();
        assert!(
            got == self.tarball(node),
            "the fetched bundle of {node} differs"
        );
    }
}

/// A plain-http front of the registry that answers by `rules` first.
fn front(p: &Pushed, rules: Vec<Value>) -> Scripted {
    let mut all = rules;
    all.push(json!({"path": "^/v2/", "proxy": p.upstream()}));
    Scripted::start("127.0.0.1", None, json!(all))
}

/// A scripted server (see `scripted_registry.py`), killed when dropped.
struct Scripted {
    child: Child,
    dir: tempfile::TempDir,
    bind: String,
    port: u16,
    tls: bool,
}

impl Scripted {
    /// On `bind`, with TLS from the certificates `make_tls` wrote into `tls`.
    fn start(bind: &str, tls: Option<&Path>, rules: Value) -> Scripted {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("server.py"), SCRIPTED).unwrap();
        let conf = json!({
            "bind": bind,
            "tls": tls.map(|t| json!({
                "cert": t.join("server.pem"),
                "key": t.join("server-key.pem"),
            })),
            "log": d.join("log"),
            "port_file": d.join("port"),
            "rules": rules,
        });
        std::fs::write(d.join("conf.json"), conf.to_string()).unwrap();
        let child = Command::new(tool("python3"))
            .arg(d.join("server.py"))
            .arg(d.join("conf.json"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(d.join("port")) {
                break p.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the scripted server did not start: {}",
                std::fs::read_to_string(d.join("stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Scripted {
            child,
            dir,
            bind: bind.to_string(),
            port,
            tls: tls.is_some(),
        }
    }

    /// `host:port`
    fn host(&self) -> String {
        format!("{}:{}", self.bind, self.port)
    }

    fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.host()
        )
    }

    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn requests(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| e.get("path").is_some())
            .collect()
    }

    fn connections(&self) -> usize {
        self.log()
            .iter()
            .filter(|e| e.get("connect").is_some())
            .count()
    }

    /// Requests that carried an Authorization header.
    fn with_credentials(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| !r["authorization"].is_null())
            .collect()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

/// Rules for a front that asks for Basic credentials and passes everything else to the
/// registry at `upstream`.
fn basic_front(upstream: &str) -> Vec<Value> {
    vec![
        json!({"path": "^/v2/", "unless_auth": basic(), "status": 401,
               "headers": {"WWW-Authenticate": "Basic realm=\"test\""},
               "body": "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}"}),
        json!({"path": "^/v2/", "proxy": upstream}),
    ]
}

/// dist/fetch.sh started on a "bare node" (registry.rs's PATH) with `env` added.
fn spawn_fetch(
    project: &Project,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
    into: &Path,
) -> Child {
    let bin = bare_node_path(project.dir.path());
    let mut child = Command::new(bin.join("bash"))
        .arg(project.path("dist/fetch.sh"))
        .arg("-o")
        .arg(into)
        .args(args)
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", project.dir.path())
        .envs(env.iter().copied())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// dist/fetch.sh run on a "bare node" with `args` and `env`, `stdin` on standard input.
pub(crate) fn fetch(
    project: &Project,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
    into: &Path,
) -> Output {
    spawn_fetch(project, args, stdin, env, into)
        .wait_with_output()
        .unwrap()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32, wants: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    for want in wants {
        assert!(err.contains(want), "wanted {want:?} in:\n{err}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn tls_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_tls(dir.path());
    dir
}

#[test]
fn fetch_sh_takes_the_node_from_the_index_never_from_a_stale_node_tag() {
    let first = project_with_binary(&binary_bytes(1 << 20, 4));
    let reg = Registry::start_with(false);
    push_plain(&first, &reg, "v1");
    // The same tag pushed again from another build with two nodes: `v1-m3`, the old m3
    // with the old PKI, stays in the registry.
    let two = INVENTORY.replace("\n[[nodes]]\nname = \"m3\"\nip = \"127.0.1.3\"\n", "\n");
    assert_ne!(two, INVENTORY);
    let second = Project::new(&format!(
        "{two}\n[kube-controller-manager]\nbinary = \"kcm\"\n"
    ));
    second.write_binary(
        "kcm",
        &stand_in_with(
            "kube-controller-manager",
            "1.20.2",
            &binary_bytes(1 << 20, 5),
        ),
    );
    second.build_ok();
    push_plain(&second, &reg, "v1");
    let stale = run_ok(Command::new(tool("curl")).args([
        "-sf",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Accept: {MEDIA_MANIFEST}"),
        &format!("http://127.0.0.1:{}/v2/{REPO}/manifests/v1-m3", reg.port),
    ]));
    assert_eq!(stale, "200", "the stale node tag is still there");

    let into = second.path("node");
    let out = fetch(
        &second,
        &["--plain-http", &reg.reference("v1"), "m3"],
        "",
        &[],
        &into,
    );
    assert_exit(&out, 2, &["node `m3` is not in", "which holds m1 m2"]);
    assert!(!into.join("control-plane-m3.tar.gz").exists());
    let out = fetch(
        &second,
        &["--plain-http", &reg.reference("v1-m3"), "m3"],
        "",
        &[],
        &into,
    );
    assert_exit(&out, 2, &["the tag holds one node's manifest"]);

    let out = fetch(
        &second,
        &["--plain-http", "--no-unpack", &reg.reference("v1"), "m1"],
        "",
        &[],
        &into,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = std::fs::read(into.join("control-plane-m1.tar.gz")).unwrap();
    assert!(
        got == std::fs::read(second.tarball("m1")).unwrap(),
        "the new m1"
    );
    assert!(got != std::fs::read(first.tarball("m1")).unwrap());
}

#[test]
fn fetch_sh_refuses_sets_that_do_not_pin_their_nodes_or_name_one_twice() {
    let p = pushed();
    let index = p.manifest("v1");
    let m1 = p.node("m1")["digest"].as_str().unwrap().to_string();
    let m2 = p.node("m2")["digest"].as_str().unwrap().to_string();
    assert!(index.contains(&m1) && index.contains(&m2), "{index}");
    let by_tag = index.replace(&m1, "v1-m1");
    let twice = index.replacen(
        "\"io.kube-bundle.node\":\"m2\"",
        "\"io.kube-bundle.node\":\"m1\"",
        1,
    );
    assert!(
        twice.matches("\"io.kube-bundle.node\":\"m1\"").count() == 2,
        "{twice}"
    );
    // A node manifest whose layer is named by something else than a sha256 digest, and one
    // that names another bundle file.
    let m1_manifest = p.manifest(&m1);
    let big = p.big_layer("m1");
    let bad_layer = m1_manifest.replace(&big, "sha256:../../other/blobs/x");
    let bad_name = m1_manifest.replace("control-plane-m1.tar.gz\"", "control-plane-m2.tar.gz\"");
    assert_ne!(bad_name, m1_manifest);

    let work = tempfile::tempdir().unwrap();
    let mut rules = Vec::new();
    let mut serve = |path: String, body: &str, media: &str| {
        let file = work.path().join(sha256_hex(body.as_bytes()));
        std::fs::write(&file, body).unwrap();
        rules.push(json!({"path": path, "status": 200,
            "headers": {"Content-Type": media}, "body_file": file}));
    };
    let digest = |body: &str| format!("sha256:{}", sha256_hex(body.as_bytes()));
    serve("/manifests/by-tag$".to_string(), &by_tag, MEDIA_INDEX);
    serve(
        format!("/manifests/{}$", digest(&by_tag)),
        &by_tag,
        MEDIA_INDEX,
    );
    serve("/manifests/twice$".to_string(), &twice, MEDIA_INDEX);
    for (tag, manifest) in [("bad-layer", &bad_layer), ("bad-name", &bad_name)] {
        let set = index.replace(
            &format!("{m1}\",\"size\":{}", m1_manifest.len()),
            &format!("{}\",\"size\":{}", digest(manifest), manifest.len()),
        );
        assert_ne!(set, index);
        serve(format!("/manifests/{tag}$"), &set, MEDIA_INDEX);
        serve(
            format!("/manifests/{}$", digest(manifest)),
            manifest,
            MEDIA_MANIFEST,
        );
    }
    rules.push(json!({"path": "^/v2/", "proxy": p.upstream()}));
    let front = Scripted::start("127.0.0.1", None, json!(rules));

    let into = p.project.path("node");
    let run = |reference: String| {
        fetch(
            &p.project,
            &["--plain-http", &reference, "m1"],
            "",
            &[],
            &into,
        )
    };
    let out = run(p.reference_at(&front.host(), "by-tag"));
    assert_exit(
        &out,
        1,
        &["the set's entry for `m1` is `v1-m1`, not a sha256 digest"],
    );
    let pinned = format!("{}/{REPO}:by-tag@{}", front.host(), digest(&by_tag));
    let out = run(pinned);
    assert_exit(&out, 1, &["is `v1-m1`, not a sha256 digest"]);
    assert!(
        !front
            .requests()
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("v1-m1")),
        "the tag in the entry was never asked for: {:?}",
        front.requests()
    );
    let out = run(p.reference_at(&front.host(), "twice"));
    assert_exit(&out, 1, &["the set names node `m1` twice"]);
    let out = run(p.reference_at(&front.host(), "bad-layer"));
    assert_exit(
        &out,
        1,
        &["is `sha256:../../other/blobs/x`, not a sha256 digest"],
    );
    let out = run(p.reference_at(&front.host(), "bad-name"));
    assert_exit(
        &out,
        1,
        &["names the bundle `control-plane-m2.tar.gz`; node `m1`'s is `control-plane-m1.tar.gz`"],
    );
    assert!(
        !front
            .requests()
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/blobs/")),
        "no blob was fetched for a refused set: {:?}",
        front.requests()
    );
    assert!(!into.join("control-plane-m1.tar.gz").exists());
}

#[test]
fn fetch_sh_sends_credentials_only_to_the_registry_that_challenged() {
    let p = pushed();
    let tls = tls_dir();
    let t = tls.path();
    let into = p.project.path("node");
    let bearer_front = |realm: &str| {
        Scripted::start(
            "127.0.0.1",
            Some(t),
            json!([{"path": "^/v2/", "status": 401,
                "headers": {"WWW-Authenticate": format!("Bearer realm=\"{realm}\",service=\"test\"")}}]),
        )
    };

    // A realm over plain http on another host, and one over ftp: refused, never contacted.
    let watch = Scripted::start("127.0.0.2", None, json!([]));
    for realm in [
        format!("http://{}/token", watch.host()),
        format!("ftp://{}/", watch.host()),
    ] {
        let front = bearer_front(&realm);
        let out = p.fetch_user(t, &front.host(), &[], "m1", &into);
        assert_exit(
            &out,
            1,
            &[
                &format!("sends for a token to `{realm}`, which fetch.sh refuses"),
                "no credentials were sent",
            ],
        );
    }
    assert_eq!(watch.connections(), 0, "{:?}", watch.log());

    // An https realm on another host is asked without credentials.
    let other = Scripted::start(
        "127.0.0.2",
        Some(t),
        json!([{"path": "^/token", "status": 401}]),
    );
    let realm = format!("{}/token", other.url());
    let front = bearer_front(&realm);
    let out = p.fetch_user(t, &front.host(), &[], "m1", &into);
    assert_exit(
        &out,
        1,
        &[
            "which is not `127.0.0.1:",
            "asked without them",
            "pass --token-server 127.0.0.2:",
        ],
    );
    assert_eq!(other.requests().len(), 1, "{:?}", other.log());
    assert!(other.with_credentials().is_empty(), "{:?}", other.log());
    // ... unless --token-server names it.
    let out = p.fetch_user(
        t,
        &front.host(),
        &["--token-server", &other.host()],
        "m1",
        &into,
    );
    assert_exit(&out, 1, &["token from"]);
    assert_eq!(other.with_credentials().len(), 1, "{:?}", other.log());
    assert_eq!(other.with_credentials()[0]["authorization"], basic());

    // A blob redirected to another port that asks for credentials with its own realm gets
    // none, and its realm is never asked.
    let big = p.big_layer("m1");
    let elsewhere = Scripted::start(
        "127.0.0.1",
        Some(t),
        json!([{"path": "^/", "status": 401,
            "headers": {"WWW-Authenticate": "Bearer realm=\"https://{self}/token\",service=\"x\""}}]),
    );
    // The registry asks for Basic credentials, then redirects the big blob to `target`.
    let redirect_to = |target: String| {
        let [challenge, proxy] = <[Value; 2]>::try_from(basic_front(&p.upstream())).unwrap();
        let redirect = json!({"path": format!("/blobs/{big}$"), "status": 307,
            "headers": {"Location": target}});
        Scripted::start("127.0.0.1", Some(t), json!([challenge, redirect, proxy]))
    };
    let front = redirect_to(format!("{}/blob", elsewhere.url()));
    let out = p.fetch_user(t, &front.host(), &[], "m1", &into);
    assert_exit(
        &out,
        1,
        &[
            "where the registry redirected, asks for credentials",
            "only to the registry the reference names",
        ],
    );
    assert!(!elsewhere.requests().is_empty());
    assert!(
        elsewhere.with_credentials().is_empty(),
        "{:?}",
        elsewhere.log()
    );
    assert!(!elsewhere.requests().iter().any(|r| r["path"] == "/token"));
    assert!(
        !front.with_credentials().is_empty(),
        "the registry itself got them"
    );
    assert!(!into.join("control-plane-m1.tar.gz").exists());

    // A redirect to plain http is not followed: the target never hears of it.
    let plain = Scripted::start(
        "127.0.0.1",
        None,
        json!([{"path": "^/", "proxy": p.upstream()}]),
    );
    let front = redirect_to(format!("{}/v2/{REPO}/blobs/{big}", plain.url()));
    let out = p.fetch_user(t, &front.host(), &[], "m1", &into);
    assert_exit(
        &out,
        1,
        &[
            "the registry redirected to `http://127.0.0.1:",
            "it is plain http",
        ],
    );
    assert_eq!(plain.connections(), 0, "{:?}", plain.log());

    // A redirect to https on another host that serves the blob: followed, without
    // credentials, and the bundle is whole.
    let storage = Scripted::start(
        "127.0.0.2",
        Some(t),
        json!([{"path": "^/", "proxy": p.upstream()}]),
    );
    let front = redirect_to(format!("{}/v2/{REPO}/blobs/{big}", storage.url()));
    let out = p.fetch_user(t, &front.host(), &["--no-unpack"], "m1", &into);
    p.assert_fetched(&out, &into, "m1");
    assert_eq!(storage.requests().len(), 1, "{:?}", storage.log());
    assert!(storage.with_credentials().is_empty(), "{:?}", storage.log());
}

#[test]
fn fetch_sh_gets_a_bearer_token_from_the_registry_itself_or_anonymously_elsewhere() {
    let p = pushed();
    let tls = tls_dir();
    let t = tls.path();
    let into = p.project.path("node");
    let token_rules = |token: &str| {
        vec![
            json!({"path": "^/token", "unless_auth": basic(), "status": 401}),
            json!({"path": "^/token", "status": 200, "body": format!("{{\"token\":\"{token}\",\"expires_in\":300}}")}),
        ]
    };
    // The token server is the registry's own origin: it gets the password, the registry
    // the token.
    let mut rules = token_rules("tok-1");
    rules.push(json!({"path": "^/v2/", "unless_auth": "Bearer tok-1", "status": 401,
        "headers": {"WWW-Authenticate":
            format!("Bearer realm=\"https://{{self}}/token\",service=\"test\",scope=\"repository:{REPO}:pull\"")}}));
    rules.push(json!({"path": "^/v2/", "proxy": p.upstream()}));
    let front = Scripted::start("127.0.0.1", Some(t), json!(rules));
    let out = p.fetch_user(t, &front.host(), &["--no-unpack"], "m2", &into);
    p.assert_fetched(&out, &into, "m2");
    let log = front.requests();
    let token = log
        .iter()
        .find(|r| r["path"].as_str().unwrap().starts_with("/token"))
        .unwrap();
    assert_eq!(token["authorization"], basic());
    assert!(token["path"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("scope=repository%3ak8s%2fcontrol-plane%3apull"));
    assert!(log
        .iter()
        .any(|r| r["path"].as_str().unwrap().contains("/blobs/")
            && r["authorization"] == "Bearer tok-1"));

    // A token server on another host that gives anonymous tokens: the pull works, and the
    // token server never sees the password.
    let tokens = Scripted::start(
        "127.0.0.2",
        Some(t),
        json!([{"path": "^/token", "status": 200,
        "body": "{\"access_token\":\"anon-2\"}"}]),
    );
    let front = Scripted::start(
        "127.0.0.1",
        Some(t),
        json!([
            {"path": "^/v2/", "unless_auth": "Bearer anon-2", "status": 401,
             "headers": {"WWW-Authenticate": format!("Bearer realm=\"{}/token\",service=\"test\"", tokens.url())}},
            {"path": "^/v2/", "proxy": p.upstream()},
        ]),
    );
    let into = p.project.path("node-anon");
    let out = p.fetch_user(t, &front.host(), &["--no-unpack"], "m2", &into);
    p.assert_fetched(&out, &into, "m2");
    assert!(!tokens.requests().is_empty());
    assert!(tokens.with_credentials().is_empty(), "{:?}", tokens.log());
}

#[test]
fn fetch_sh_plain_http_is_for_loopback_addresses_and_never_through_a_proxy() {
    let p = pushed();
    let into = p.project.path("node");
    let port = p.reg.port;
    for host in [
        "127.evil.test".to_string(),
        "127.0.0.1.nip.io".to_string(),
        "10.0.0.1".to_string(),
        "[fd00::1]".to_string(),
        "localhost.example".to_string(),
    ] {
        let reference = format!("{host}:{port}/{REPO}:v1");
        let out = fetch(
            &p.project,
            &["--plain-http", &reference, "m1"],
            "",
            &[],
            &into,
        );
        assert_exit(
            &out,
            2,
            &[&format!(
                "--plain-http: `{host}:{port}` is not this machine"
            )],
        );
    }
    // Through `localhost` (resolved, every address loopback), with every proxy variable
    // pointing at a listener that must hear nothing.
    let proxy = Scripted::start(
        "127.0.0.1",
        None,
        json!([{"path": "^", "proxy": p.upstream()}]),
    );
    let url = proxy.url();
    let env = [
        ("http_proxy", url.as_str()),
        ("HTTP_PROXY", url.as_str()),
        ("https_proxy", url.as_str()),
        ("HTTPS_PROXY", url.as_str()),
        ("ALL_PROXY", url.as_str()),
        ("all_proxy", url.as_str()),
    ];
    let reference = format!("localhost:{port}/{REPO}:v1");
    let out = fetch(
        &p.project,
        &["--plain-http", &reference, "m1"],
        "",
        &env,
        &into,
    );
    p.assert_fetched(&out, &into, "m1");
    assert!(into.join("control-plane-m1/install.sh").is_file());
    assert_eq!(proxy.connections(), 0, "{:?}", proxy.log());

    // Under --plain-http a token server must be on this machine too.
    let front = Scripted::start(
        "127.0.0.1",
        None,
        json!([{"path": "^/v2/", "status": 401,
        "headers": {"WWW-Authenticate": "Bearer realm=\"http://10.0.0.1:9/token\""}}]),
    );
    let out = fetch(
        &p.project,
        &[
            "--plain-http",
            "--username",
            USER,
            "--password-stdin",
            &p.reference_at(&front.host(), "v1"),
            "m2",
        ],
        &format!("{PASSWORD}\n"),
        &[],
        &into,
    );
    assert_exit(
        &out,
        1,
        &[
            "`10.0.0.1` does not resolve to loopback addresses only",
            "no credentials were sent",
        ],
    );
}

#[test]
fn fetch_sh_is_bounded_in_size_speed_and_time() {
    let p = pushed();
    let into = p.project.path("node");
    let big = p.big_layer("m1");
    let total: u64 = p.node("m1")["size"].as_u64().unwrap();
    let front_with = |rule: Value| front(&p, vec![rule]);
    let run = |front: &Scripted, extra: &[&str]| {
        let start = Instant::now();
        let out = p.fetch_plain(&front.host(), extra, &into);
        (out, start.elapsed())
    };

    // An endless layer: cut at the size the manifest declares.
    let front = front_with(json!({"path": format!("/blobs/{big}$"), "endless": true}));
    let (out, took) = run(&front, &[]);
    assert_exit(
        &out,
        1,
        &[
            "the registry sent more than the manifest declares",
            "nothing was unpacked",
        ],
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    let part = into.join(".fetch-m1/bundle.part");
    let kept = std::fs::metadata(&part).map_or(0, |m| m.len());
    assert!(kept <= total, "{kept} > {total}");

    // An endless manifest: cut at 4 MiB, and nothing of it stays.
    let front = front_with(json!({"path": "/manifests/v1$", "endless": true}));
    let (out, took) = run(&front, &[]);
    assert_exit(&out, 1, &["the registry sent more than 4.0 MiB"]);
    assert!(took < Duration::from_secs(30), "{took:?}");

    // Declared sizes over --max-size: refused before any blob is asked for.
    let front = front_with(json!({"path": "^/nothing$", "status": 404}));
    let (out, _) = run(&front, &["--max-size", "1M"]);
    assert_exit(
        &out,
        1,
        &["its layers add up to more than --max-size 1.0 MiB"],
    );
    assert!(!front
        .requests()
        .iter()
        .any(|r| r["path"].as_str().unwrap().contains("/blobs/")));

    // A server that never answers, and one that drips a byte a second: the low-speed
    // abort, then the deadline.
    let front = front_with(json!({"path": "/manifests/v1$", "silent": true}));
    let (out, took) = run(&front, &["--speed-time", "2", "--max-time", "5"]);
    assert_exit(&out, 1, &["gave up: --max-time 5s passed"]);
    assert!(took < Duration::from_secs(12), "{took:?}");
    let big_size = p.node("m1")["layers"][1]["size"].as_u64().unwrap();
    let front =
        front_with(json!({"path": format!("/blobs/{big}$"), "drip": 0.5, "length": big_size}));
    let (out, took) = run(&front, &["--speed-time", "1", "--max-time", "120"]);
    assert_exit(
        &out,
        1,
        &["slower than --speed-limit 1024 bytes/s for --speed-time 1s"],
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    let tries = front
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with(&big))
        .count();
    assert_eq!(tries, 5, "{:?}", front.requests());
}

/// The Range header of each request `front` had for blob `digest`.
fn blob_ranges(front: &Scripted, digest: &str) -> Vec<Value> {
    front
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with(digest))
        .map(|r| r["range"].clone())
        .collect()
}

#[test]
fn fetch_sh_resumes_with_a_range_request_after_a_dropped_connection() {
    let p = pushed();
    let into = p.project.path("node");
    let big = p.big_layer("m1");
    let blob = format!("/blobs/{big}$");
    let dropping = front(
        &p,
        vec![
            json!({"path": blob, "times": 1, "proxy": p.upstream(), "drop_after": 300_000}),
            json!({"path": blob, "times": 1, "proxy": p.upstream(), "drop_after": 500_000}),
        ],
    );
    let out = p.fetch_plain(&dropping.host(), &["--no-unpack"], &into);
    p.assert_fetched(&out, &into, "m1");
    assert_eq!(
        blob_ranges(&dropping, &big),
        vec![Value::Null, json!("bytes=300000-"), json!("bytes=800000-")]
    );

    // A registry (or a proxy before it) that ignores the range and sends the whole blob:
    // the layer starts over, and the bundle is still whole.
    let into = p.project.path("node-whole");
    let hex = big.trim_start_matches("sha256:");
    let (_, _, data) = p.reg.blobs().into_iter().find(|b| b.0 == hex).unwrap();
    let whole = front(
        &p,
        vec![
            json!({"path": blob, "times": 1, "proxy": p.upstream(), "drop_after": 300_000}),
            json!({"path": blob, "body_file": data}),
        ],
    );
    let out = p.fetch_plain(&whole.host(), &["--no-unpack"], &into);
    p.assert_fetched(&out, &into, "m1");
    assert_eq!(
        blob_ranges(&whole, &big),
        vec![Value::Null, json!("bytes=300000-"), Value::Null]
    );

    // A run cut short keeps what it checked in; the next one asks only for the rest.
    let into = p.project.path("node-2");
    let cut = front(
        &p,
        vec![
            json!({"path": blob, "times": 1, "proxy": p.upstream(), "drop_after": 1_000_000}),
            json!({"path": blob, "silent": true}),
        ],
    );
    let out = p.fetch_plain(
        &cut.host(),
        &["--speed-time", "1", "--max-time", "4"],
        &into,
    );
    assert_exit(&out, 1, &["--max-time 4s"]);
    let kept = std::fs::metadata(into.join(".fetch-m1/bundle.part"))
        .unwrap()
        .len();
    let first: u64 = p.node("m1")["layers"][0]["size"].as_u64().unwrap();
    assert_eq!(layers(p.node("m1"))[1], big);
    assert_eq!(kept, first + 1_000_000);
    let again = front(&p, vec![]);
    let out = p.fetch_plain(&again.host(), &[], &into);
    p.assert_fetched(&out, &into, "m1");
    let blobs: Vec<Value> = again
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/blobs/"))
        .collect();
    assert!(
        blobs[0]["path"].as_str().unwrap().ends_with(&big),
        "{blobs:?}"
    );
    assert_eq!(blobs[0]["range"], "bytes=1000000-");
    assert!(
        !into.join(".fetch-m1").exists(),
        "its own folder is gone when done"
    );
}

/// Processes (other than zombies) whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Files under `root` whose bytes contain `needle`.
fn files_with(root: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(walkdir::DirEntry::into_path)
        .collect()
}

fn signal(pid: i32, sig: &str) {
    run_ok(Command::new(tool("kill")).args([&format!("-{sig}"), "--", &pid.to_string()]));
}

#[test]
fn fetch_sh_keeps_the_password_out_of_files_and_argv_and_its_curl_dies_with_it() {
    let p = pushed();
    let tls = tls_dir();
    let t = tls.path();
    let big = p.big_layer("m1");
    let mut rules = vec![json!({"path": format!("/blobs/{big}$"), "silent": true})];
    rules.extend(basic_front(&p.upstream()));
    let front = Scripted::start("127.0.0.1", Some(t), json!(rules));
    let tmp = tempfile::tempdir().unwrap();
    let into = p.project.path("node");
    let ca = t.join("ca.pem");
    let reference = p.reference_at(&front.host(), "v1");
    let args = [
        "--ca-file",
        ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-stdin",
        &reference,
        "m1",
    ];
    let env = [("TMPDIR", tmp.path().to_str().unwrap())];
    let start_hanging = || {
        let child = spawn_fetch(&p.project, &args, &format!("{PASSWORD}\n"), &env, &into);
        let start = Instant::now();
        while !front
            .requests()
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with(&big))
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the blob was never asked for"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    };
    let origin = front.host();

    let child = start_hanging();
    assert!(
        processes_with(PASSWORD).is_empty(),
        "{:?}",
        processes_with(PASSWORD)
    );
    assert!(!processes_with(&origin).is_empty(), "curl is at work");
    for root in [tmp.path(), &into] {
        assert!(
            files_with(root, PASSWORD).is_empty(),
            "{:?}",
            files_with(root, PASSWORD)
        );
    }
    // A second run for the same node and folder waits for no one.
    let out = fetch(&p.project, &args, &format!("{PASSWORD}\n"), &env, &into);
    assert_exit(&out, 2, &["another fetch.sh is fetching `m1`"]);
    // SIGTERM to the script alone: it ends, and so does its curl.
    signal(child.id() as i32, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    let start = Instant::now();
    while !processes_with(&origin).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            processes_with(&origin)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "its temporary folder is gone"
    );

    // kill -9 of the whole process group: nothing survives, and no file holds the password.
    let child = start_hanging();
    signal(-(child.id() as i32), "KILL");
    let _ = child.wait_with_output();
    let start = Instant::now();
    while !processes_with(&origin).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            processes_with(&origin)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for root in [tmp.path(), &into] {
        assert!(
            files_with(root, PASSWORD).is_empty(),
            "{:?}",
            files_with(root, PASSWORD)
        );
    }
}

#[test]
fn fetch_sh_writes_only_through_its_own_private_folder() {
    let p = pushed();
    let registry = format!("127.0.0.1:{}", p.reg.port);
    let run = |into: &Path, extra: &[&str]| p.fetch_plain(&registry, extra, into);
    let victim = p.project.path("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("file"), "precious").unwrap();

    // A link planted at the tarball's name is replaced, never written through.
    let a = p.project.path("a");
    std::fs::create_dir(&a).unwrap();
    std::os::unix::fs::symlink(victim.join("file"), a.join("control-plane-m1.tar.gz")).unwrap();
    let out = run(&a, &["--no-unpack"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(victim.join("file")).unwrap(),
        "precious"
    );
    let meta = std::fs::symlink_metadata(a.join("control-plane-m1.tar.gz")).unwrap();
    assert!(meta.is_file(), "{meta:?}");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read(a.join("control-plane-m1.tar.gz")).unwrap() == p.tarball("m1"));

    // Its folder planted as a link, or open to others: refused, nothing written there.
    let b = p.project.path("b");
    std::fs::create_dir(&b).unwrap();
    std::os::unix::fs::symlink(&victim, b.join(".fetch-m1")).unwrap();
    let out = run(&b, &[]);
    assert_exit(
        &out,
        1,
        &[".fetch-m1` exists but is not a private folder of this user"],
    );
    let c = p.project.path("c");
    std::fs::create_dir_all(c.join(".fetch-m1")).unwrap();
    std::fs::set_permissions(c.join(".fetch-m1"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = run(&c, &[]);
    assert_exit(&out, 1, &["is not a private folder of this user"]);
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        1,
        "the link's target got nothing"
    );

    // Only its own files are deleted: a file of the user's in its folder stays (and the
    // folder, readable by others before, is the user's alone after).
    let d = p.project.path("d");
    std::fs::create_dir_all(d.join(".fetch-m1")).unwrap();
    std::fs::set_permissions(d.join(".fetch-m1"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join(".fetch-m1/notes"), "mine").unwrap();
    let out = run(&d, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(d.join(".fetch-m1"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec!["notes"]);
    assert_eq!(mode_of(&d.join(".fetch-m1")), 0o700);

    // An older bundle's folder is never unpacked over; --no-unpack still works.
    let e = p.project.path("e");
    std::fs::create_dir_all(e.join("control-plane-m1")).unwrap();
    std::fs::write(e.join("control-plane-m1/stale"), "old").unwrap();
    let out = run(&e, &[]);
    assert_exit(
        &out,
        2,
        &["control-plane-m1` exists: fetch.sh unpacks only into a new folder"],
    );
    assert!(
        !e.join("control-plane-m1.tar.gz").exists(),
        "refused before fetching"
    );
    assert_eq!(
        std::fs::read_dir(e.join("control-plane-m1"))
            .unwrap()
            .count(),
        1
    );
    let out = run(&e, &["--no-unpack"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Node m1's bundle rebuilt with `change` applied to its entries (and extra entries
/// appended), gzip-compressed.
fn rebuilt_bundle(
    bundle: &[u8],
    change: impl Fn(&mut tar::Header, &str),
    extra: &[(tar::Header, Vec<u8>)],
) -> Vec<u8> {
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(bundle));
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        change(&mut header, &path);
        out.append_data(&mut header, &path, data.as_slice())
            .unwrap();
    }
    for (header, data) in extra {
        let mut header = header.clone();
        header.set_cksum();
        out.append(&header, data.as_slice()).unwrap();
    }
    out.into_inner().unwrap().finish().unwrap()
}

/// A header for `path`, written byte for byte (the tar crate refuses `..`, an archive
/// from elsewhere need not).
fn entry(kind: tar::EntryType, path: &str, mode: u32, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_mode(mode);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h
}

#[test]
fn fetch_sh_unpacks_no_devices_links_or_setuid_bits_and_keeps_no_owners() {
    let p = pushed();
    let original = p.tarball("m1");
    let top = "control-plane-m1";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "device",
            rebuilt_bundle(
                &original,
                |_, _| {},
                &[(
                    entry(
                        tar::EntryType::Char,
                        &format!("{top}/rootfs/dev-null"),
                        0o666,
                        None,
                    ),
                    vec![],
                )],
            ),
            "of type or mode `crw-rw-rw-`",
        ),
        (
            "setuid",
            rebuilt_bundle(
                &original,
                |h, path| {
                    if path.ends_with("/install.sh") {
                        h.set_mode(0o4755);
                    }
                },
                &[],
            ),
            "install.sh` of type or mode `-rwsr-xr-x`",
        ),
        (
            "symlink",
            rebuilt_bundle(
                &original,
                |_, _| {},
                &[(
                    entry(
                        tar::EntryType::Symlink,
                        &format!("{top}/rootfs/shadow"),
                        0o777,
                        Some("/etc/shadow"),
                    ),
                    vec![],
                )],
            ),
            "(a link, device, or setuid/setgid file)",
        ),
        (
            "hardlink",
            rebuilt_bundle(
                &original,
                |_, _| {},
                &[(
                    entry(
                        tar::EntryType::Link,
                        &format!("{top}/rootfs/passwd"),
                        0o644,
                        Some("/etc/passwd"),
                    ),
                    vec![],
                )],
            ),
            "(a link, device, or setuid/setgid file)",
        ),
        (
            "escape",
            rebuilt_bundle(
                &original,
                |_, _| {},
                &[(
                    entry(
                        tar::EntryType::Directory,
                        &format!("{top}/rootfs/../../outside/"),
                        0o755,
                        None,
                    ),
                    vec![],
                )],
            ),
            "outside `control-plane-m1/` or with a name fetch.sh does not unpack",
        ),
        (
            "owner",
            rebuilt_bundle(
                &original,
                |h, _| {
                    h.set_uid(4321);
                    h.set_gid(4321);
                },
                &[],
            ),
            "",
        ),
    ];
    let work = tempfile::tempdir().unwrap();
    let m1 = p.manifest(p.node("m1")["digest"].as_str().unwrap());
    let index = p.manifest("v1");
    let mut rules = Vec::new();
    for (tag, bundle, _) in &cases {
        let hex = sha256_hex(bundle);
        let blob = work.path().join(&hex);
        std::fs::write(&blob, bundle).unwrap();
        // One layer, the whole tarball; the manifest otherwise the pushed one.
        let manifest = {
            let start = m1.find("\"layers\":[").unwrap();
            let end = start + m1[start..].find(']').unwrap() + 1;
            let layer = format!(
                "\"layers\":[{{\"mediaType\":\"application/vnd.kube-bundle.bundle.member.v1+gzip\",\"digest\":\"sha256:{hex}\",\"size\":{}}}]",
                bundle.len()
            );
            format!("{}{layer}{}", &m1[..start], &m1[end..]).replace(&sha256_hex(&original), &hex)
        };
        assert!(manifest.contains(&format!(
            "\"io.kube-bundle.bundle.digest\":\"sha256:{hex}\""
        )));
        let manifest_file = work.path().join(format!("{tag}.manifest"));
        std::fs::write(&manifest_file, &manifest).unwrap();
        let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
        let set = index.replace(
            &format!(
                "{}\",\"size\":{}",
                p.node("m1")["digest"].as_str().unwrap(),
                m1.len()
            ),
            &format!("{digest}\",\"size\":{}", manifest.len()),
        );
        assert_ne!(set, index);
        let set_file = work.path().join(format!("{tag}.index"));
        std::fs::write(&set_file, &set).unwrap();
        rules.push(json!({"path": format!("/manifests/{tag}$"), "body_file": set_file}));
        rules.push(json!({"path": format!("/manifests/{digest}$"), "body_file": manifest_file}));
        rules.push(json!({"path": format!("/blobs/sha256:{hex}$"), "body_file": blob}));
    }
    let server = Scripted::start("127.0.0.1", None, json!(rules));
    for (tag, _, want) in &cases {
        let into = p.project.path(&format!("node-{tag}"));
        let out = fetch(
            &p.project,
            &["--plain-http", &p.reference_at(&server.host(), tag), "m1"],
            "",
            &[],
            &into,
        );
        if want.is_empty() {
            assert!(out.status.success(), "{tag}: {}", stderr(&out));
            continue;
        }
        assert_exit(&out, 1, &[want, "nothing was unpacked"]);
        assert!(!into.join(top).exists(), "{tag}: nothing unpacked");
        assert!(!p.project.path("outside").exists());
    }
    // Unpacked as the user running it (root here), with the umask's modes, not the
    // archive's owners and modes.
    let unpacked = p.project.path("node-owner").join(top);
    for e in walkdir::WalkDir::new(&unpacked) {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            0,
            "{}",
            e.path().display()
        );
        assert_eq!(
            meta.permissions().mode() & 0o077,
            0,
            "{}",
            e.path().display()
        );
    }
    assert_eq!(mode_of(&unpacked.join("install.sh")), 0o700);
}

/// fetch.sh --plain-http of m1 from the registry into `into` on a bare node, started
/// through `wrapper` (a command that ends by running the rest of its arguments).
fn fetch_through(p: &Pushed, wrapper: &mut Command, into: &Path) -> Output {
    let bin = bare_node_path(p.project.dir.path());
    wrapper
        .arg(bin.join("bash"))
        .arg(p.project.path("dist/fetch.sh"))
        .args(["--plain-http", "-o"])
        .arg(into)
        .args([&p.reg.reference("v1"), "m1"])
        .env_clear()
        .env("PATH", &bin)
        .output()
        .unwrap()
}

#[test]
fn fetch_sh_says_what_went_wrong() {
    let p = pushed();
    let into = p.project.path("node");
    // https to a plain-http registry.
    let out = fetch(&p.project, &[&p.reg.reference("v1"), "m1"], "", &[], &into);
    assert_exit(
        &out,
        1,
        &["cannot reach", "seems to speak plain http", "--plain-http"],
    );

    // A certificate nobody vouched for.
    let tls = tls_dir();
    let front = Scripted::start(
        "127.0.0.1",
        Some(tls.path()),
        json!([{"path": "^/v2/", "proxy": p.upstream()}]),
    );
    let out = fetch(
        &p.project,
        &[&p.reference_at(&front.host(), "v1"), "m1"],
        "",
        &[],
        &into,
    );
    assert_exit(&out, 1, &["cannot reach", "certificate", "pass --ca-file"]);

    // A full disk (a 1 MiB tmpfs in a mount namespace of its own) is said to be one.
    let small = p.project.path("small");
    std::fs::create_dir(&small).unwrap();
    let out = fetch_through(
        &p,
        Command::new(tool("unshare"))
            .args(["--mount", "--propagation", "private"])
            .arg(tool("bash"))
            .arg("-c")
            .arg("\"$1\" -t tmpfs -o size=1m tmpfs \"$2\" && shift 2 && exec \"$@\"")
            .arg("in-namespace")
            .arg(tool("mount"))
            .arg(&small),
        &small,
    );
    assert_exit(
        &out,
        1,
        &["KiB free, and the bundle needs 2.", "nothing was fetched"],
    );
    assert!(!stderr(&out).contains("cannot reach"), "{}", stderr(&out));

    // A write that fails half-way (files limited to 1 MiB) names the file and the error.
    let out = fetch_through(
        &p,
        Command::new(tool("bash"))
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 1024; exec \"$@\"")
            .arg("limited"),
        &into,
    );
    assert_exit(
        &out,
        1,
        &[
            "writing `",
            ".fetch-m1/bundle.part`: File too large (the file-size limit is 1.0 MiB)",
        ],
    );
    assert!(!stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

#[test]
fn fetch_sh_reads_docker_config_json_as_kube_bundle_does() {
    let p = pushed();
    let tls = tls_dir();
    let t = tls.path();
    // A password JSON has to escape, and a front that wants exactly it.
    let password = "pä\"ss\\wörd 😀";
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
    );
    let front = Scripted::start(
        "127.0.0.1",
        Some(t),
        json!([
            {"path": "^/v2/", "unless_auth": good, "status": 401, "headers": {"WWW-Authenticate": "Basic realm=\"test\""},
             "body": "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}"},
            {"path": "^/v2/", "proxy": p.upstream()},
        ]),
    );
    let host = front.host();
    let ca = t.join("ca.pem");
    let reference = p.reference_at(&host, "v1");
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    // fetch.sh without --username, with `env` added.
    let fetch_env = |env: &[(&str, &str)], into: &str| {
        let args = [
            "--ca-file",
            ca.to_str().unwrap(),
            "--no-unpack",
            &reference,
            "m1",
        ];
        fetch(&p.project, &args, "", env, &p.project.path(into))
    };
    let fetch_with_config = |config: &str, into: &str| {
        p.project.write(".docker/config.json", config);
        fetch_env(&[], into)
    };
    let pull_with_config = |into: &str| {
        kube_bundle_stdin(
            &p.project,
            &[
                "pull",
                "--ca-file",
                ca.to_str().unwrap(),
                "--node",
                "m1",
                "-o",
                into,
                &reference,
            ],
            "",
        )
    };

    // Pretty-printed, other sections, escapes (\" \\ \u00e4 and a surrogate pair), two
    // keys for the registry: the first in byte order holds the right password, the other
    // a wrong one, so a reader that picks the other fails.
    let config = format!(
        r#"{{
  "auths": {{
    "https://{host}/v1/": {{ "auth": "{wrong}" }},
    "{host}": {{ "username": "{USER}", "password": "p\u00e4\"ss\\w\u00f6rd \ud83d\ude00", "email": null }},
    "127.0.0.1:1": {{ "auth": "{wrong}" }}
  }},
  "credHelpers": {{ "gcr.io": "gcloud" }},
  "proxies": {{ "default": {{ "noProxy": "*.local" }} }},
  "numbers": [1, -2.5e3, true, false, null, {{}}, []]
}}"#
    );
    let out = fetch_with_config(&config, "a");
    assert!(out.status.success(), "fetch.sh: {}", stderr(&out));
    let out = pull_with_config("a-pulled");
    assert!(out.status.success(), "pull: {}", stderr(&out));
    assert!(front
        .with_credentials()
        .iter()
        .all(|r| r["authorization"] == good));

    // `auth` with spaces around it, and a scheme-and-path key, from $DOCKER_CONFIG.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    let dir = p.project.path("docker-config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!("{{\"auths\":{{\"https://{host}/v2/\":{{\"auth\":\"  {auth} \"}}}}}}"),
    )
    .unwrap();
    let out = fetch_env(&[("DOCKER_CONFIG", dir.to_str().unwrap())], "b");
    assert!(out.status.success(), "{}", stderr(&out));

    // An entry that is not base64, and a file that is not JSON: bad input for both.
    for (config, want) in [
        (
            format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"***\"}}}}}}"),
            format!("auths.\"{host}\".auth is not base64"),
        ),
        ("{\"auths\": {".to_string(), "is not JSON".to_string()),
    ] {
        let out = fetch_with_config(&config, "c");
        assert_exit(&out, 2, &["config.json`: ", &want]);
        let out = pull_with_config("c-pulled");
        assert_exit(&out, 2, &["config.json`"]);
    }
    // Only the other port has an entry: no credentials.
    let out = fetch_with_config(
        &format!("{{\"auths\":{{\"127.0.0.1:1\":{{\"auth\":\"{auth}\"}}}}}}"),
        "d",
    );
    assert_exit(&out, 1, &["asks for credentials"]);
}
