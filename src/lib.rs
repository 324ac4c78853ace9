//! kube-bundle turns one inventory into one self-contained, reproducible bundle per
//! Kubernetes master, each holding everything kube-controller-manager needs on that node
//! and an install script. `build` is the whole pipeline:
//!
//! 1. load:   `config` reads `cluster.toml` and validates it into an `Inventory`
//! 2. pki:    `pki` loads or creates the CA, the service-account key and per-node leaves
//! 3. render: `render` fills the unit and install.sh templates (`flags` picks the flags,
//!    `kubeconfig` writes the kubeconfig)
//! 4. plan:   `plan` lists every file of each node's bundle with its mode and content
//! 5. pack:   `bundle` compresses the binary once (`member`, on every core) and writes
//!    the nodes' deterministic tarballs in parallel (`parallel`) into a staging folder,
//!    which then replaces `dist/` in one rename
//!
//! Signing (`signature`) and reading saved keys cheaply (`keys`) serve the pki and pack
//! steps. Beside the pipeline: `init` writes a starting inventory, optionally from the
//! tutorial's environment.sh; `verify` checks finished tarballs offline; `certs` lists
//! pki/ with expiry; `rollout` orders the masters for an update, the leader last.
//!
//! The artifact store: `artifact` pushes a finished `dist/` to an OCI registry and pulls
//! it back (`oci` holds the references and documents, `registry` the HTTP client), and
//! `fetch` writes `dist/fetch.sh`, which gets one node's bundle with curl alone.

pub mod artifact;
pub mod bundle;
pub mod certs;
pub mod config;
pub mod error;
pub mod fetch;
pub mod flags;
pub mod init;
pub mod keys;
pub mod kubeconfig;
pub mod member;
pub mod oci;
pub mod parallel;
pub mod pki;
pub mod plan;
pub mod registry;
pub mod render;
pub mod rollout;
pub mod signature;
pub mod verify;
pub mod version;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct BuildOptions {
    pub config: PathBuf,
    pub out: PathBuf,
    pub templates: Option<PathBuf>,
    /// mtime of every archive entry.
    pub mtime: u64,
    pub renew: pki::Renewal,
    /// Ed25519 OpenSSH key that signs each bundle's SHA256SUMS.
    pub sign: Option<PathBuf>,
    /// Allowed-signers file pinned into each bundle: install.sh then requires a signature.
    pub pin_signers: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct BuildReport {
    /// Warnings and PKI changes, one line each, for the user.
    pub notes: Vec<String>,
    /// One per node, in inventory order.
    pub bundles: Vec<BuiltBundle>,
    /// File names of the tarballs whose bytes differ from the previous build's.
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltBundle {
    pub node: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// How far a build is, for a progress display. Sent from any thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Compressing the shared binary: bytes done of all.
    Compressing { done: u64, total: u64 },
    /// Tarballs written of all.
    Packing { done: usize, total: usize },
}

/// Files `build` writes into `dist/` besides the tarballs.
const DIST_EXTRAS: [&str; 5] = ["SHA256SUMS", "ca.pem", "sa.pub", "rollout.sh", "fetch.sh"];

pub fn build(opts: &BuildOptions, progress: &(dyn Fn(Progress) + Sync)) -> Result<BuildReport> {
    let mut report = BuildReport::default();
    let inv = config::load(&opts.config)?;
    if let Some(w) = inv.cluster.version.profile_warning() {
        report.notes.push(format!("warning: {w}"));
    }
    let templates = render::Templates::load(opts.templates.as_deref())?;
    let signer = opts
        .sign
        .as_deref()
        .map(signature::Signer::load)
        .transpose()?;
    let pinned = match &opts.pin_signers {
        Some(path) => {
            signature::AllowedSigners::load(path)?;
            Some(fs_err::read_to_string(path)?)
        }
        None => None,
    };
    let extras = bundle::Extras {
        signer: signer.as_ref(),
        pinned_signers: pinned.as_deref(),
    };
    check_dist(&opts.out)?;
    let previous = previous_sums(&opts.out);

    let pki = pki::prepare(&inv, &opts.renew, &mut |line| report.notes.push(line))?;
    let plans = inv
        .nodes
        .iter()
        .map(|node| plan::plan_node(&inv, node, &pki, &templates))
        .collect::<Result<Vec<_>>>()?;

    let rollout = templates.render_rollout(&inv)?;
    let staging = staging_dir(&opts.out)?;
    let threads = parallel::threads();
    let result = (|| -> Result<Vec<bundle::Packed>> {
        let shared = bundle::compress_shared(&plans, &staging, threads, &mut |done, total| {
            progress(Progress::Compressing { done, total })
        })?;
        let packed_count = std::sync::atomic::AtomicUsize::new(0);
        let packed = parallel::map(&plans, threads, |_, plan| {
            let out = staging.join(bundle_name(plan));
            let packed = bundle::pack_node(plan, &out, opts.mtime, &shared, &extras);
            let done = packed_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(Progress::Packing {
                done,
                total: plans.len(),
            });
            packed
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        let listing: std::collections::BTreeMap<String, String> = plans
            .iter()
            .zip(&packed)
            .map(|(plan, p)| (bundle_name(plan), p.sha256.clone()))
            .collect();
        pki::write_public(
            &staging.join("SHA256SUMS"),
            bundle::sha256sums(&listing).as_bytes(),
        )?;
        pki::write_public(&staging.join("ca.pem"), pki.ca_cert_pem.as_bytes())?;
        if let Some(sa) = &pki.service_account {
            pki::write_public(&staging.join("sa.pub"), sa.public_pem.as_bytes())?;
        }
        pki::write_atomic(&staging.join("rollout.sh"), rollout.as_bytes(), 0o755)?;
        pki::write_atomic(
            &staging.join("fetch.sh"),
            fetch::script()?.as_bytes(),
            0o755,
        )?;
        Ok(packed)
    })();
    let packed = match result.and_then(|p| replace_dist(&staging, &opts.out).map(|()| p)) {
        Ok(packed) => packed,
        Err(e) => {
            let _ = fs_err::remove_dir_all(&staging);
            return Err(e);
        }
    };
    report.changed = plans
        .iter()
        .zip(&packed)
        .map(|(plan, p)| (bundle_name(plan), &p.sha256))
        .filter(|(name, sha)| previous.get(name) != Some(*sha))
        .map(|(name, _)| name)
        .collect();
    report.bundles = plans
        .iter()
        .zip(packed)
        .map(|(plan, p)| BuiltBundle {
            node: plan.node.name.clone(),
            path: opts.out.join(bundle_name(plan)),
            size: p.size,
            sha256: p.sha256,
        })
        .collect();
    Ok(report)
}

/// Tarball name → sha256 from the previous build's `dist/SHA256SUMS`, if any.
fn previous_sums(out: &Path) -> std::collections::BTreeMap<String, String> {
    let text = fs_err::read_to_string(out.join("SHA256SUMS")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sha, name)| (name.to_string(), sha.to_string()))
        .collect()
}

fn bundle_name(plan: &plan::NodePlan) -> String {
    format!("{}.tar.gz", plan.top_dir())
}

/// `dist/` is replaced whole, so it must hold nothing but a previous build's output.
fn check_dist(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(
            Error::input(format!("`{}`", out.display()), "exists and is not a folder")
                .with_hint("pass `-o` a new or earlier output folder"),
        );
    }
    for entry in fs_err::read_dir(out)? {
        let name = entry?.file_name().to_string_lossy().to_string();
        let ours = DIST_EXTRAS.contains(&name.as_str())
            || (name.starts_with(&format!("{}-", plan::COMPONENT)) && name.ends_with(".tar.gz"));
        if !ours {
            return Err(Error::input(
                format!("`{}`", out.display()),
                format!("holds `{name}`, which kube-bundle did not write"),
            )
            .with_hint(
                "the output folder is replaced on every build: pass `-o` an empty or new folder",
            ));
        }
    }
    Ok(())
}

fn staging_dir(out: &Path) -> Result<PathBuf> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "dist".into());
    let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if staging.exists() {
        fs_err::remove_dir_all(&staging)?;
    }
    fs_err::create_dir(&staging)?;
    Ok(staging)
}

/// Swaps the staging folder in for `out`; the old output is removed only once the new
/// one is in place.
fn replace_dist(staging: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        let old = staging.with_extension("old");
        fs_err::rename(out, &old)?;
        if let Err(e) = fs_err::rename(staging, out) {
            let _ = fs_err::rename(&old, out);
            return Err(e.into());
        }
        fs_err::remove_dir_all(&old)?;
    } else {
        fs_err::rename(staging, out)?;
    }
    Ok(())
}
