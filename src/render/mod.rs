//! Rendering: turns a node's plan and the PKI into the bundle's bytes, through the
//! templates in bundle-templates/ (each component's unit and configuration file,
//! install.sh, rollout.sh), embedded at build time and overridable by name from a folder
//! at run time. Handlebars runs in strict mode with HTML escaping off, since escaping
//! would corrupt units and shell. This module decides no flags (see `flags`) and no file
//! set (see `plan`).

pub mod kubeconfig;

use std::collections::BTreeMap;
use std::path::Path;

use handlebars::Handlebars;
use serde_json::json;

use crate::component::flags;
use crate::component::{self, dist, paths, Component, LEASE_NAMESPACE};
use crate::error::{Error, Result};
use crate::manifest::Owned;
use crate::model::Flag;
use crate::model::{url_host, Inventory, Node};
use crate::pki::{self, Pki};
use crate::plan::{Content, Kind, NodePlan, Source};

pub const INSTALL_TEMPLATE: &str = "install.sh";
pub const ROLLOUT_TEMPLATE: &str = "rollout.sh";
const ENCRYPTION_TEMPLATE: &str = "encryption-config.yaml";
const AUDIT_TEMPLATE: &str = "audit-policy.yaml";

const UNIT: &str = include_str!("../../bundle-templates/unit.service.hbs");

/// install.sh: one generic script, its parts in the order they run (see
/// bundle-templates/install/); what differs between components comes in through
/// `HOOKS`.
const INSTALL: &str = concat!(
    include_str!("../../bundle-templates/install/00-header.sh.hbs"),
    include_str!("../../bundle-templates/install/10-usage.sh.hbs"),
    include_str!("../../bundle-templates/install/20-hooks.sh.hbs"),
    include_str!("../../bundle-templates/install/30-arguments.sh.hbs"),
    include_str!("../../bundle-templates/install/40-paths.sh.hbs"),
    include_str!("../../bundle-templates/install/50-verify.sh.hbs"),
    include_str!("../../bundle-templates/install/60-node.sh.hbs"),
    include_str!("../../bundle-templates/install/65-lock.sh.hbs"),
    include_str!("../../bundle-templates/install/70-files.sh.hbs"),
    include_str!("../../bundle-templates/install/75-releases.sh.hbs"),
    include_str!("../../bundle-templates/install/80-systemd.sh.hbs"),
    include_str!("../../bundle-templates/install/85-undo.sh.hbs"),
    include_str!("../../bundle-templates/install/90-install.sh.hbs"),
    include_str!("../../bundle-templates/install/92-rollback.sh.hbs"),
    include_str!("../../bundle-templates/install/94-uninstall.sh.hbs"),
    include_str!("../../bundle-templates/install/96-check.sh.hbs"),
    include_str!("../../bundle-templates/install/98-components.sh.hbs"),
    include_str!("../../bundle-templates/install/99-main.sh.hbs"),
);

/// The name install.sh's hooks of component `name` are registered under.
fn hooks_template(name: &str) -> String {
    format!("install.sh hooks of {name}")
}

/// Every embedded template, by name: a unit for each row, the shared files, each row's
/// configuration file, the scripts.
fn embedded() -> Vec<(String, &'static str)> {
    let rows = component::all();
    let mut all: Vec<(String, &'static str)> =
        rows.iter().map(|c| (c.unit_template(), UNIT)).collect();
    all.extend([
        (
            ENCRYPTION_TEMPLATE.to_string(),
            include_str!("../../bundle-templates/encryption-config.yaml.hbs"),
        ),
        (
            AUDIT_TEMPLATE.to_string(),
            include_str!("../../bundle-templates/audit-policy.yaml.hbs"),
        ),
    ]);
    all.extend(
        rows.iter()
            .filter_map(|c| c.config.as_ref())
            .map(|config| (config.template.to_string(), config.text)),
    );
    all.extend([
        (INSTALL_TEMPLATE.to_string(), INSTALL),
        (
            ROLLOUT_TEMPLATE.to_string(),
            include_str!("../../bundle-templates/rollout.sh.hbs"),
        ),
    ]);
    all
}

/// A file of a finished bundle, before packing.
#[derive(Debug, Clone)]
pub struct BundleFile {
    pub mode: u32,
    pub kind: Kind,
    pub content: Content,
}

/// One node's bundle with every file's bytes: what `bundle` packs.
#[derive(Debug, Clone)]
pub struct RenderedNode {
    pub node: Node,
    pub kubernetes_version: String,
    pub components: Vec<&'static Component>,
    /// Path inside the bundle (`install.sh`, `rootfs/etc/...`) → file.
    pub files: BTreeMap<String, BundleFile>,
    /// Node paths the units name that the bundle does not carry.
    pub external: Vec<String>,
    /// The manifest objects of the components that write one, by their keys.
    pub own: BTreeMap<String, Owned>,
    /// Bundle path → where each binary carried from the build host came from, for the SBOM.
    pub origins: BTreeMap<String, crate::plan::Origin>,
}

impl RenderedNode {
    pub fn top_dir(&self) -> String {
        crate::plan::top_dir(&self.node.name)
    }
}

/// Where the binary at node path `path` came from: the inventory key that named it, the
/// path as the inventory wrote it (relative to the inventory's folder, so the SBOM does
/// not depend on where the build ran) and, for Kubernetes components, the release the
/// inventory states.
fn binary_origin(
    inv: &Inventory,
    plan: &NodePlan,
    path: &str,
    source: &Path,
) -> crate::plan::Origin {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let base = inv.path.parent().unwrap_or(Path::new(""));
    let written = source.strip_prefix(base).unwrap_or(source);
    let component = plan.components.iter().find(|c| c.binary_path() == path);
    let tool_of = || {
        inv.components
            .iter()
            .find(|s| s.tools.iter().any(|(tool, _)| *tool == name))
            .map_or("", |s| s.component.name)
    };
    crate::plan::Origin {
        key: match component {
            Some(c) => format!("{}.binary", c.name),
            None => format!("{}.{name}", tool_of()),
        },
        name,
        source: written.display().to_string(),
        version: component
            .filter(|c| c.version_series == "1.")
            .map(|_| plan.kubernetes_version.clone()),
    }
}

/// A file installed on the node, as install.sh sees it.
#[derive(Debug, Clone, serde::Serialize)]
struct Installed {
    /// Absolute path on the node.
    path: String,
    /// Octal, four digits.
    mode: String,
    /// Comma-separated names of the components that restart when it changes.
    components: String,
}

pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// Registers the embedded templates, then any `NAME.hbs` in `overrides` in their place.
    pub fn load(overrides: Option<&Path>) -> Result<Self> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        let embedded = embedded();
        for (name, text) in &embedded {
            register(&mut registry, name, text)?;
        }
        for c in component::all() {
            if let Some(text) = c.install_hooks {
                register(&mut registry, &hooks_template(c.name), text)?;
            }
        }
        if let Some(dir) = overrides {
            if !dir.is_dir() {
                return Err(Error::input(
                    format!("`{}`", dir.display()),
                    "is not a folder of templates",
                ));
            }
            for entry in walkdir::WalkDir::new(dir)
                .min_depth(1)
                .max_depth(1)
                .sort_by_file_name()
            {
                let entry = entry
                    .map_err(|e| Error::input(format!("`{}`", dir.display()), e.to_string()))?;
                let file_name = entry.file_name().to_string_lossy().to_string();
                let Some(name) = file_name
                    .strip_suffix(".hbs")
                    .filter(|n| embedded.iter().any(|(e, _)| e == n))
                else {
                    return Err(Error::input(
                        format!("`{}`", entry.path().display()),
                        "is not a known template",
                    )
                    .with_hint(format!(
                        "template overrides are named {}",
                        embedded
                            .iter()
                            .map(|(n, _)| format!("`{n}.hbs`"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )));
                };
                let text = fs_err::read_to_string(entry.path())?;
                register(&mut registry, name, &text)?;
            }
        }
        Ok(Templates { registry })
    }

    fn render(&self, name: &str, data: &serde_json::Value) -> Result<String> {
        self.registry
            .render(name, data)
            .map_err(|e| Error::Template {
                name: name.into(),
                message: e.to_string(),
            })
    }

    /// Every file of one node's bundle, install.sh included.
    pub fn render_node(&self, inv: &Inventory, plan: &NodePlan, pki: &Pki) -> Result<RenderedNode> {
        let node = &plan.node;
        let mut files = BTreeMap::new();
        let mut origins = BTreeMap::new();
        for (path, f) in &plan.files {
            let content = match &f.source {
                Source::Binary(p) => {
                    origins.insert(format!("rootfs{path}"), binary_origin(inv, plan, path, p));
                    Content::File(p.clone())
                }
                source => Content::Bytes(self.render_source(inv, node, pki, source)?.into_bytes()),
            };
            files.insert(
                format!("rootfs{path}"),
                BundleFile {
                    mode: f.mode,
                    kind: f.kind,
                    content,
                },
            );
        }
        let install = self.render_install(inv, plan, pki)?;
        files.insert(
            "install.sh".into(),
            BundleFile {
                mode: 0o755,
                kind: Kind::Other,
                content: Content::Bytes(install.into_bytes()),
            },
        );
        Ok(RenderedNode {
            node: node.clone(),
            kubernetes_version: plan.kubernetes_version.clone(),
            components: plan.components.clone(),
            files,
            external: plan.external.clone(),
            own: plan
                .components
                .iter()
                .filter_map(|c| c.manifest.as_ref())
                .filter_map(|part| Some((part.key.to_string(), (part.write)(inv, node)?)))
                .collect(),
            origins,
        })
    }

    fn render_source(
        &self,
        inv: &Inventory,
        node: &Node,
        pki: &Pki,
        source: &Source,
    ) -> Result<String> {
        Ok(match source {
            Source::CaCert => pki.ca_cert_pem.clone(),
            Source::CaKey => pki.ca_key_pem.clone(),
            Source::SignerCert | Source::SignerKey => {
                let signer = pki.csr_signer.as_ref().ok_or_else(|| Error::Template {
                    name: "CSR signer".into(),
                    message: "planned but not prepared".into(),
                })?;
                match source {
                    Source::SignerCert => signer.cert_pem.clone(),
                    _ => signer.key_pem.clone(),
                }
            }
            Source::ServiceAccountKey | Source::ServiceAccountPub => {
                let sa = pki
                    .service_account
                    .as_ref()
                    .ok_or_else(|| Error::Template {
                        name: "service-account key".into(),
                        message: "planned but not prepared".into(),
                    })?;
                match source {
                    Source::ServiceAccountKey => sa.private_pem.clone(),
                    _ => sa.public_pem.clone(),
                }
            }
            Source::Cert(spec) => pki.cert(&node.name, spec).cert_pem.clone(),
            Source::Key(spec) => pki.cert(&node.name, spec).key_pem.clone(),
            Source::ClientCa => pki.client_ca_pem(),
            Source::Ca(ca) => pki.ca_pem(ca).to_string(),
            Source::EncryptionConfig => self.render(
                ENCRYPTION_TEMPLATE,
                &json!({
                    "api_version": component::encryption_config_api(&inv.cluster.version),
                    "key": planned(pki.encryption_key.as_ref(), "encryption key")?,
                }),
            )?,
            Source::AuditPolicy => self.render(AUDIT_TEMPLATE, &json!({}))?,
            Source::Copied(path) => fs_err::read_to_string(path)?,
            Source::Kubeconfig(c) => {
                let leaf = pki.leaf(&node.name, c);
                kubeconfig::render(
                    &inv.apiserver_for(node),
                    c.user,
                    &pki.ca_cert_pem,
                    &leaf.cert_pem,
                    &leaf.key_pem,
                )
            }
            Source::Unit(c) => self.render_unit(inv, node, c)?,
            Source::Config(c) => self.render_config(inv, node, c)?,
            Source::Binary(_) => unreachable!("binaries are streamed, not rendered"),
        })
    }

    fn render_unit(&self, inv: &Inventory, node: &Node, c: &Component) -> Result<String> {
        let settings = inv.settings(c).ok_or_else(|| Error::Template {
            name: c.unit_template(),
            message: format!("{} is not built", c.name),
        })?;
        let args: Vec<String> = flags::flags(inv, node, settings)
            .iter()
            .map(exec_arg)
            .collect();
        self.render(
            &c.unit_template(),
            &json!({
                "component": c.name,
                "description": c.description,
                "documentation": c.documentation,
                "binary": c.binary_path(),
                "work_dir": inv.work_dir(c),
                "args": args,
                "unit_settings": c.unit_settings,
                "node": { "name": node.name, "ip": node.ip.to_string() },
            }),
        )
    }

    fn render_config(&self, inv: &Inventory, node: &Node, c: &Component) -> Result<String> {
        let config = c.config.as_ref().ok_or_else(|| Error::Template {
            name: c.name.into(),
            message: "has no configuration file".into(),
        })?;
        let mut data = (config.values)(inv, node);
        data["api_version"] = (config.api_version)(&inv.cluster.version).into();
        data["kind"] = config.kind.into();
        data["kubeconfig"] = c.kubeconfig_path().into();
        self.render(config.template, &data)
    }

    fn render_install(&self, inv: &Inventory, plan: &NodePlan, pki: &Pki) -> Result<String> {
        let node = &plan.node;
        let host = url_host(node.ip);
        let components: Vec<serde_json::Value> = plan
            .components
            .iter()
            .map(|c| {
                let port = inv
                    .settings(c)
                    .map_or(c.default_secure_port, |s| s.secure_port);
                json!({
                    "name": c.name,
                    "unit": c.unit_name(),
                    "work_dir": inv.work_dir(c),
                    "health_url": c.health_url(&host, port),
                    // Without a kubeconfig (the API server, a quorum member) there is no
                    // API to check credentials against; its health URL needs a client
                    // certificate.
                    "kubeconfig": if c.kubeconfig { c.kubeconfig_path() } else { String::new() },
                    "server": inv.apiserver_for(node),
                    "client_cert": c.client_cert().cert_path(),
                    "client_key": c.client_cert().key_path(),
                    "lease": c.lease.unwrap_or_default(),
                    "gates_the_rest": c.gates_the_rest,
                    "health_ca": c.health.ca,
                    "health_ok": c.health.ok,
                    "work_mode": format!("{:04o}", c.work_mode),
                    "starts_blocking": c.start.blocking,
                    "waits_for_quorum": c.start.waits_for_quorum,
                })
            })
            .collect();
        let files: Vec<Installed> = plan
            .files
            .iter()
            .map(|(path, f)| Installed {
                path: path.clone(),
                mode: format!("{:04o}", f.mode),
                components: f
                    .restarts
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(","),
            })
            .collect();
        let mut certificates = Vec::new();
        for (path, f) in &plan.files {
            let pem = match &f.source {
                Source::CaCert => &pki.ca_cert_pem,
                Source::SignerCert => match &pki.csr_signer {
                    Some(s) => &s.cert_pem,
                    None => continue,
                },
                Source::Cert(spec) => &pki.cert(&node.name, spec).cert_pem,
                Source::Ca(ca) => pki.ca_pem(ca),
                _ => continue,
            };
            if let Some(summary) = pki::describe(pem) {
                certificates.push(json!({
                    "path": path,
                    "not_before": summary.not_before,
                    "not_after": summary.not_after,
                }));
            }
        }
        let mut data = json!({
                "bundle": plan.top_dir(),
                "kubernetes_version": inv.cluster.version.to_string(),
                "node": { "name": node.name, "ip": node.ip.to_string() },
                "health_host": host,
                "cert_dir": paths::CERT_DIR,
                "backup_dir": paths::BACKUP_DIR,
                "components": components,
                "files": files,
                "certificates": certificates,
                // Parts of install.sh that open sealed files; without sealing it stays as
                // it was.
                "sealed": inv.pki.seal_secrets,
                "seal_key": crate::pki::seal::NODE_KEY_PATH,
        });
        for c in &plan.components {
            if let Some(data_of) = c.install_data {
                data[c.data_key()] = data_of(inv, node);
            }
        }
        let mut hooks = String::new();
        for c in &plan.components {
            let name = hooks_template(c.name);
            if self.registry.has_template(&name) {
                hooks.push_str(&self.render(&name, &data)?);
            }
        }
        data["hooks"] = hooks.into();
        self.render(INSTALL_TEMPLATE, &data)
    }

    /// dist/rollout.sh: every master in inventory order; the leaders are read at run time.
    pub fn render_rollout(&self, inv: &Inventory) -> Result<String> {
        let nodes: Vec<serde_json::Value> = inv
            .nodes
            .iter()
            .map(|n| json!({ "name": n.name, "ip": n.ip.to_string(), "bundle": crate::plan::top_dir(&n.name) }))
            .collect();
        let components: Vec<serde_json::Value> = inv
            .components
            .iter()
            .filter_map(|s| s.component.lease.map(|lease| (s.component.name, lease)))
            .map(|(name, lease)| json!({ "name": name, "lease": lease }))
            .collect();
        let mut data = json!({
                "nodes": nodes,
                "components": components,
                "lease_namespace": LEASE_NAMESPACE,
                "endpoints_lock": inv.cluster.version.minor < 17,
                "kubelet_rbac": inv.serves_api().then_some(dist::KUBELET_RBAC),
                "admin_kubeconfig": dist::ADMIN_KUBECONFIG,
        });
        for s in &inv.components {
            if let (Some(data_of), Some(node)) = (s.component.install_data, inv.nodes.first()) {
                data[s.component.data_key()] = data_of(inv, node);
            }
        }
        self.render(ROLLOUT_TEMPLATE, &data)
    }
}

/// `dist/admin.kubeconfig`: the operator's `admin` (group `system:masters`) against the
/// inventory's apiserver when it names one endpoint (a load balancer) other than
/// loopback, else the first master's apiserver.
pub fn admin_kubeconfig(inv: &Inventory, ca_pem: &str, admin: &pki::Leaf) -> String {
    let configured = &inv.cluster.apiserver;
    // A loopback endpoint (the tutorial's kube-nginx on every master) exists only on the
    // masters themselves.
    let authority = configured
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default();
    let endpoint_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = endpoint_host == "localhost"
        || endpoint_host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let first_master = inv
        .components
        .iter()
        .find(|s| s.component.serves_api)
        .map(|api| format!("https://{}:{}", url_host(inv.nodes[0].ip), api.secure_port));
    let server = match first_master {
        Some(server)
            if !inv.cluster.apiserver_set
                || loopback
                || configured.contains(crate::model::NODE_IP_PLACEHOLDER) =>
        {
            server
        }
        _ => configured.clone(),
    };
    kubeconfig::render(
        &server,
        crate::component::ADMIN.cn,
        ca_pem,
        &admin.cert_pem,
        &admin.key_pem,
    )
}

/// Something the plan names and `pki::prepare` must have made.
fn planned<'a, T>(value: Option<&'a T>, what: &str) -> Result<&'a T> {
    value.ok_or_else(|| Error::Template {
        name: what.into(),
        message: "planned but not prepared".into(),
    })
}

/// Names of every template that `--templates` may override.
pub fn template_names() -> Vec<String> {
    embedded().into_iter().map(|(n, _)| n).collect()
}

fn register(registry: &mut Handlebars<'static>, name: &str, text: &str) -> Result<()> {
    registry
        .register_template_string(name, text)
        .map_err(|e| Error::Template {
            name: name.into(),
            message: e.to_string(),
        })
}

/// One ExecStart word, escaped for systemd: `%` and `$` doubled, and double quotes around
/// anything with spaces, quotes or backslashes.
fn exec_arg(flag: &Flag) -> String {
    let word = match &flag.value {
        None => format!("--{}", flag.name),
        Some(v) => format!("--{}={v}", flag.name),
    };
    let word = word.replace('%', "%%").replace('$', "$$");
    if word
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        word
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    fn flag(name: &str, value: Option<&str>) -> Flag {
        Flag {
            name: name.into(),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn exec_words_are_escaped_for_systemd() {
        assert_eq!(exec_arg(&flag("leader-elect", None)), "--leader-elect");
        assert_eq!(
            exec_arg(&flag("controllers", Some("*,bootstrapsigner"))),
            "--controllers=*,bootstrapsigner"
        );
        assert_eq!(exec_arg(&flag("x", Some("50%"))), "--x=50%%");
        assert_eq!(exec_arg(&flag("x", Some("$HOME"))), "--x=$$HOME");
        assert_eq!(exec_arg(&flag("x", Some("a b"))), "\"--x=a b\"");
        assert_eq!(
            exec_arg(&flag("x", Some("say \"hi\""))),
            "\"--x=say \\\"hi\\\"\""
        );
    }

    #[test]
    fn overrides_must_be_known_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("other.hbs"), "x").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(err.to_string().contains("is not a known template"), "{err}");
    }
}
