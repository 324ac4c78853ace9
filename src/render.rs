//! Templates: the systemd unit and install.sh, kept as plain files in bundle-templates/,
//! embedded at build time and overridable by name from a folder at run time. Handlebars
//! runs in strict mode with HTML escaping off, since escaping would corrupt units and
//! shell. This module turns data into text; it decides no flags (see `flags`).

use std::path::Path;

use handlebars::Handlebars;
use serde_json::json;

use crate::config::{Inventory, Node};
use crate::error::{Error, Result};
use crate::flags::{kcm_flags, Flag};
use crate::plan::{paths, Installed, COMPONENT};

pub const UNIT_TEMPLATE: &str = "kube-controller-manager.service";
pub const INSTALL_TEMPLATE: &str = "install.sh";
pub const ROLLOUT_TEMPLATE: &str = "rollout.sh";

const EMBEDDED: [(&str, &str); 3] = [
    (
        UNIT_TEMPLATE,
        include_str!("../bundle-templates/kube-controller-manager.service.hbs"),
    ),
    (
        INSTALL_TEMPLATE,
        include_str!("../bundle-templates/install.sh.hbs"),
    ),
    (
        ROLLOUT_TEMPLATE,
        include_str!("../bundle-templates/rollout.sh.hbs"),
    ),
];

pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// Registers the embedded templates, then any `NAME.hbs` in `overrides` in their place.
    pub fn load(overrides: Option<&Path>) -> Result<Self> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, text) in EMBEDDED {
            register(&mut registry, name, text)?;
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
                    .filter(|n| EMBEDDED.iter().any(|(e, _)| e == n))
                else {
                    return Err(Error::input(
                        format!("`{}`", entry.path().display()),
                        "is not a known template",
                    )
                    .with_hint(format!(
                        "template overrides are named {}",
                        EMBEDDED.map(|(n, _)| format!("`{n}.hbs`")).join(" or ")
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

    pub fn render_unit(&self, inv: &Inventory, node: &Node) -> Result<String> {
        let args: Vec<String> = kcm_flags(inv, node).iter().map(exec_arg).collect();
        self.render(
            UNIT_TEMPLATE,
            &json!({
                "binary": paths::BINARY,
                "work_dir": work_dir(inv),
                "args": args,
                "node": { "name": node.name, "ip": node.ip.to_string() },
            }),
        )
    }

    /// install.sh's context: the node, its components in start order, every file with the
    /// components that restart when it changes, and the validity of every certificate.
    pub fn render_install(
        &self,
        inv: &Inventory,
        node: &Node,
        files: &[Installed],
        certificates: &[serde_json::Value],
    ) -> Result<String> {
        let host = match node.ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let cert = |name: &str| format!("{}/{name}", paths::CERT_DIR);
        let components = [json!({
            "name": COMPONENT,
            "unit": format!("{COMPONENT}.service"),
            "work_dir": work_dir(inv),
            "health_url": format!("https://{host}:{}/healthz", inv.kcm.secure_port),
            "kubeconfig": paths::KUBECONFIG,
            "server": inv.apiserver_for(node),
            "client_cert": cert(&format!("{COMPONENT}.pem")),
            "client_key": cert(&format!("{COMPONENT}-key.pem")),
            "lease": COMPONENT,
        })];
        self.render(
            INSTALL_TEMPLATE,
            &json!({
                "bundle": format!("{COMPONENT}-{}", node.name),
                "kubernetes_version": inv.cluster.version.to_string(),
                "node": { "name": node.name, "ip": node.ip.to_string() },
                "health_host": host,
                "cert_dir": paths::CERT_DIR,
                "backup_dir": paths::BACKUP_DIR,
                "components": components,
                "files": files,
                "certificates": certificates,
            }),
        )
    }

    /// dist/rollout.sh: every master in inventory order; the leader is read at run time.
    pub fn render_rollout(&self, inv: &Inventory) -> Result<String> {
        let nodes: Vec<serde_json::Value> = inv
            .nodes
            .iter()
            .map(|n| {
                json!({ "name": n.name, "ip": n.ip.to_string(), "bundle": format!("{COMPONENT}-{}", n.name) })
            })
            .collect();
        self.render(
            ROLLOUT_TEMPLATE,
            &json!({
                "components": [{ "name": COMPONENT, "lease": COMPONENT }],
                "nodes": nodes,
                "endpoints_lock": inv.cluster.version.minor < 17,
            }),
        )
    }
}

fn register(registry: &mut Handlebars<'static>, name: &str, text: &str) -> Result<()> {
    registry
        .register_template_string(name, text)
        .map_err(|e| Error::Template {
            name: name.into(),
            message: e.to_string(),
        })
}

fn work_dir(inv: &Inventory) -> String {
    format!("{}/{COMPONENT}", inv.cluster.k8s_dir)
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
