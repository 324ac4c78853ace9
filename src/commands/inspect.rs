//! `verify`, `rollout-plan` and `certs`: reading what was built, changing nothing.

use std::path::Path;
use std::process::ExitCode;

use kube_bundle::error::Error;
use kube_bundle::load::config;
use kube_bundle::pki::certs;
use kube_bundle::{rollout, verify};

use super::{cli, duration_arg, emit, exit_if};

pub(super) fn verify_cmd(
    opts: &verify::VerifyOptions,
    output: cli::Output,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let report = verify::verify(opts)?;
    emit(out, output, &report, |out| {
        for f in &report.findings {
            line!(out, "{}: {}: {}", f.bundle, f.file, f.message);
        }
        for w in &report.warnings {
            eprintln!("warning: {}: {}: {}", w.bundle, w.file, w.message);
        }
        for b in &report.bundles {
            if let (Some(sealed), Some(false)) = (b.sealed, b.unsealed) {
                eprintln!(
                    "note: {}: {sealed} sealed private file(s) checked by their sums only; pass --seal-key (pki/ or the node's seal.key) to open and check them",
                    b.path
                );
            }
        }
        let signed = report.bundles.iter().filter(|b| b.signed).count();
        eprintln!(
            "{} bundle(s) checked ({signed} signed), {} finding(s)",
            report.bundles.len(),
            report.findings.len()
        );
    });
    Ok(exit_if(!report.findings.is_empty()))
}

pub(super) fn rollout_plan_cmd(
    config: &Path,
    kubeconfig: Option<&Path>,
    output: cli::Output,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let inv = config::load(config)?;
    // Per component: the node holding its lease, or why that is not known.
    let mut leaders: Vec<(&str, Option<String>, rollout::LeaderSource)> = Vec::new();
    for c in inv.components.iter().map(|s| s.component) {
        if c.lease.is_none() {
            continue;
        }
        let (leader, source) = match kubeconfig {
            None => (
                None,
                rollout::LeaderSource::Unknown("no --kubeconfig given".into()),
            ),
            Some(kc) => match rollout::read_leader(&inv, c, kc) {
                Ok((identity, source)) => match rollout::node_of_identity(&inv.nodes, &identity) {
                    Some(node) => (Some(node.to_string()), source),
                    None => (
                        None,
                        rollout::LeaderSource::Unknown(format!(
                            "the leader `{identity}` is not in the inventory"
                        )),
                    ),
                },
                Err(e) => (None, rollout::LeaderSource::Unknown(e.to_string())),
            },
        };
        leaders.push((c.name, leader, source));
    }
    let pairs: Vec<(&str, Option<&str>)> = leaders
        .iter()
        .map(|(c, node, _)| (*c, node.as_deref()))
        .collect();
    let steps = rollout::order(&inv.nodes, &pairs);
    let first = &leaders[0];
    let value = serde_json::json!({
        "leader": first.1,
        "source": first.2,
        "leaders": leaders
            .iter()
            .map(|(c, node, source)| serde_json::json!({ "component": c, "node": node, "source": source }))
            .collect::<Vec<_>>(),
        "steps": steps,
    });
    emit(out, output, &value, |out| {
        for (c, _, source) in &leaders {
            if let rollout::LeaderSource::Unknown(why) = source {
                eprintln!("cannot tell the {c} leader ({why})");
            }
        }
        if leaders.iter().all(|(_, node, _)| node.is_none()) {
            eprintln!("any order will do, one master at a time");
        }
        for (i, step) in steps.iter().enumerate() {
            let mark = if step.leads.is_empty() {
                String::new()
            } else {
                format!("  (leads {}: later)", step.leads.join(", "))
            };
            line!(out, "{}. {} {}{mark}", i + 1, step.node, step.ip);
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub(super) fn certs_cmd(
    config: &Path,
    warn_within: &str,
    output: cli::Output,
    out: &mut String,
) -> Result<ExitCode, Error> {
    let warn_within = duration_arg("--warn-within", warn_within)?;
    let inv = config::load(config)?;
    let rows = certs::list(&inv, warn_within)?;
    emit(out, output, &rows, |out| out.push_str(&certs::table(&rows)));
    let attention: Vec<&str> = rows
        .iter()
        .filter(|r| r.attention)
        .map(|r| r.path.as_str())
        .collect();
    if !attention.is_empty() {
        eprintln!("expiring, expired or missing: {}", attention.join(", "));
    }
    Ok(exit_if(!attention.is_empty()))
}
