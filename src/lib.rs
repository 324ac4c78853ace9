//! kube-bundle turns one inventory into one self-contained, reproducible bundle per
//! Kubernetes master, holding every control-plane component the inventory enables for it
//! (a row each in `component`) and one install script. [`build`] is the whole pipeline,
//! a folder a stage:
//!
//! 1. `load`:   `load::config` reads `cluster.toml` into a validated inventory
//!    (`component::catalogue` says which flags each release of a component has);
//!    `load::binary` then reads every binary it carries, without running it, for the
//!    nodes' architecture and the stated release; `load::init` writes a starting
//!    inventory, optionally from the tutorial's environment.sh
//! 2. `plan`:   every file of each node's bundle: node path, mode, the components it
//!    restarts, and where its bytes come from; pure data, no I/O
//! 3. `pki`:    loads or creates the CAs, the keys that are not certificates and the keys
//!    and certificates of every node's components; signs SHA256SUMS (`pki::signature`)
//!    and seals private files with each node's key (`pki::seal`)
//! 4. `render`: turns each plan and the PKI into bytes through the templates (each
//!    row's flag profile in `component::flags`, `render::kubeconfig`)
//! 5. `pack`:   `pack::bundle` compresses each binary once (`pack::member`, on every
//!    core; `pack::cache` keeps members between builds) and writes the nodes'
//!    deterministic tarballs (with `manifest` and the SPDX SBOM, `pack::sbom`) in
//!    parallel into a staging folder, which then replaces `dist/` in one rename
//!
//! Beside the pipeline: `verify` checks finished tarballs offline; `pki::certs` lists
//! pki/ with expiry; `rollout` orders the masters for an update, leaders last; `store`
//! pushes a finished `dist/` to an OCI registry and pulls it back (`store::oci` the
//! documents, `store::registry` the HTTP client, `store::cosign` the signatures) and
//! writes `dist/fetch.sh` (`store::fetch`).
//!
//! Under every stage: `model` (the row type and the validated inventory, which refer to
//! each other), `component` (the rows' values), `digest` (SHA-256 and SHA256SUMS),
//! `fsx` (folders and files written safely), `version` (releases), `manifest`
//! (manifest.json's schema), `check` (what a row's own checks in `verify` may read and
//! how they report), `parallel` and `error`. Nothing imports upwards
//! (tests/integration/layers.rs reads the source to keep it so).

pub mod check;
pub mod component;
pub mod digest;
pub mod error;
pub mod fsx;
pub mod load;
pub mod manifest;
pub mod model;
pub mod pack;
pub mod parallel;
pub mod pki;
pub mod plan;
pub mod render;
pub mod rollout;
pub mod store;
pub mod verify;
pub mod version;

#[cfg(test)]
mod made_up;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::load::{binary, config};
use crate::pack::{bundle, cache};
use crate::pki::signature;
use crate::store::{artifact, fetch};

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
    /// The member cache's folder; none builds without it.
    pub cache: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct BuildReport {
    /// Warnings and PKI changes, one line each, for the user.
    pub notes: Vec<String>,
    /// One per node, in inventory order.
    pub bundles: Vec<BuiltBundle>,
    /// File names of the tarballs whose bytes differ from the previous build's.
    pub changed: Vec<String>,
    /// Every file of the output folder, and every file the previous build left there that
    /// this one did not write, by name.
    pub files: Vec<OutputFile>,
}

/// One file of the output folder, against what the previous build left there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputFile {
    pub path: PathBuf,
    /// Absent for a removed file.
    pub sha256: Option<String>,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Changed,
    Unchanged,
    Removed,
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
const DIST_EXTRAS: [&str; 8] = [
    "SHA256SUMS",
    "ca.pem",
    "client-ca.pem",
    "sa.pub",
    "rollout.sh",
    "fetch.sh",
    ADMIN_KUBECONFIG,
    KUBELET_RBAC,
];

use crate::component::dist::{ADMIN_KUBECONFIG, KUBELET_RBAC};

pub fn build(opts: &BuildOptions, progress: &(dyn Fn(Progress) + Sync)) -> Result<BuildReport> {
    let mut report = BuildReport::default();
    let inv = config::load(&opts.config)?;
    binary::check(&inv)?;
    if let Some(w) = inv.cluster.version.profile_warning() {
        report.notes.push(format!("warning: {w}"));
    }
    for w in &inv.warnings {
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
        seal: None,
    };
    // Held to the end: a second build waits here, so pki/ and dist/ always come from
    // one build.
    let _out_lock = lock_output(&opts.out)?;
    remove_leftovers(&opts.out)?;
    check_dist(&opts.out)?;
    let previous = previous_files(&opts.out);
    let pki_was_there = inv.pki.dir.exists();
    let _pki_lock = lock_pki(&inv.pki.dir)?;

    let plans = plan::plan(&inv);
    let pki =
        pki::prepare(&inv, &opts.renew, &mut |line| report.notes.push(line)).inspect_err(|_| {
            // A refused first build leaves no pki/ behind: the folder this build made
            // goes again while still empty (remove_dir takes nothing else).
            if !pki_was_there {
                let _ = fs_err::remove_dir(&inv.pki.dir);
            }
        })?;
    remove_stale_temporaries(&inv.pki.dir);
    let plans = plans
        .iter()
        .map(|plan| templates.render_node(&inv, plan, &pki))
        .collect::<Result<Vec<_>>>()?;

    let rollout = templates.render_rollout(&inv)?;
    let staging_folder = Staging::create(&opts.out)?;
    let staging = &staging_folder.0;
    let threads = parallel::threads();
    // Keyed by the CA's private key, so only a holder of pki/ can write an entry a
    // build accepts.
    let carries_files = plans.iter().any(|plan| {
        plan.files
            .values()
            .any(|f| matches!(f.content, plan::Content::File(_)))
    });
    let cache = opts
        .cache
        .as_deref()
        .filter(|_| carries_files)
        .and_then(|dir| {
            cache::MemberCache::open(dir, pki.ca_key_pem.as_bytes(), &bundle::member_settings())
                .map_err(|e| {
                    report.notes.push(format!(
                        "warning: member cache `{}`: {e}; building without it",
                        dir.display()
                    ));
                })
                .ok()
        });
    let result = (|| -> Result<(Vec<bundle::Packed>, BTreeMap<String, String>)> {
        let shared = bundle::compress_shared(
            &plans,
            staging,
            threads,
            cache.as_ref(),
            &mut report.notes,
            &mut |done, total| progress(Progress::Compressing { done, total }),
        )?;
        let packed_count = std::sync::atomic::AtomicUsize::new(0);
        let packed = parallel::map(&plans, threads, |_, plan| {
            let out = staging.join(bundle_name(plan));
            let extras = bundle::Extras {
                seal: pki.seal_keys.get(&plan.node.name),
                ..extras
            };
            let packed = bundle::pack_node(plan, &out, opts.mtime, &shared, &extras)
                .map_err(|e| e.doing("writing", opts.out.join(bundle_name(plan))));
            let done = packed_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(Progress::Packing {
                done,
                total: plans.len(),
            });
            packed
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        let mut listing: std::collections::BTreeMap<String, String> = plans
            .iter()
            .zip(&packed)
            .map(|(plan, p)| (bundle_name(plan), p.sha256.clone()))
            .collect();
        let fetch_sh = fetch::script()?;
        let sa_pub = pki
            .service_account
            .as_ref()
            .map(|sa| sa.public_pem.as_bytes());
        let client_ca = pki.client_ca_pem();
        let admin = pki
            .admin
            .as_ref()
            .map(|admin| render::admin_kubeconfig(&inv, &pki.ca_cert_pem, admin));
        let rbac = inv
            .components
            .iter()
            .find(|s| s.component.serves_api)
            .map(|s| component::dist::kubelet_rbac(s.component));
        let dist_files = [
            ("ca.pem", Some(pki.ca_cert_pem.as_bytes()), 0o644),
            ("client-ca.pem", Some(client_ca.as_bytes()), 0o644),
            ("sa.pub", sa_pub, 0o644),
            ("rollout.sh", Some(rollout.as_bytes()), 0o755),
            ("fetch.sh", Some(fetch_sh.as_bytes()), 0o755),
            (ADMIN_KUBECONFIG, admin.as_deref().map(str::as_bytes), 0o600),
            (KUBELET_RBAC, rbac.as_deref().map(str::as_bytes), 0o644),
        ];
        // dist/SHA256SUMS covers every file that leaves with the bundles (what `push`
        // sends), so one checksum vouches for all of them.
        for (name, bytes, _) in &dist_files {
            if let (Some(bytes), true) = (bytes, artifact::travels(name)) {
                listing.insert(name.to_string(), crate::digest::sha256_hex(bytes));
            }
        }
        let sums = crate::digest::sha256sums(&listing);
        let mut written = listing;
        let all = std::iter::once(("SHA256SUMS", Some(sums.as_bytes()), 0o644)).chain(dist_files);
        for (name, bytes, mode) in all {
            if let Some(bytes) = bytes {
                fsx::write_atomic(&staging.join(name), bytes, mode)
                    .map_err(|e| e.doing("writing", opts.out.join(name)))?;
                written.insert(name.to_string(), crate::digest::sha256_hex(bytes));
            }
        }
        Ok((packed, written))
    })();
    // On failure the staging folder goes when `Staging` drops.
    let (packed, written) = result?;
    replace_dist(staging, &opts.out)?;
    report.changed = plans
        .iter()
        .zip(&packed)
        .map(|(plan, p)| (bundle_name(plan), &p.sha256))
        .filter(|(name, sha)| previous.get(name) != Some(*sha))
        .map(|(name, _)| name)
        .collect();
    report.files = compare_files(&opts.out, &previous, &written);
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

/// File name → sha256 of every file the previous build left in `out`: a bundle's from
/// `SHA256SUMS` (it was checked against it when written), any other file hashed here. A
/// file that cannot be read counts as changed.
fn previous_files(out: &Path) -> BTreeMap<String, String> {
    let text = fs_err::read_to_string(out.join("SHA256SUMS")).unwrap_or_default();
    let listed: BTreeMap<String, String> = crate::digest::parse_sha256sums(&text)
        .unwrap_or_default()
        .into_iter()
        .map(|(sha, name)| (name.to_string(), sha.to_string()))
        .collect();
    let Ok(entries) = fs_err::read_dir(out) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let sha = match listed.get(&name) {
                Some(sha) if plan::is_bundle_name(&name) => sha.clone(),
                _ => hash_file(&e.path()).unwrap_or_default(),
            };
            (name, sha)
        })
        .collect()
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut fs_err::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The output folder's files against the previous build's, sorted by name.
fn compare_files(
    out: &Path,
    previous: &BTreeMap<String, String>,
    written: &BTreeMap<String, String>,
) -> Vec<OutputFile> {
    let names: std::collections::BTreeSet<&String> =
        previous.keys().chain(written.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let change = match (previous.get(name), written.get(name)) {
                (None, _) => Change::Added,
                (Some(_), None) => Change::Removed,
                (Some(old), Some(new)) if old == new => Change::Unchanged,
                (Some(_), Some(_)) => Change::Changed,
            };
            OutputFile {
                path: out.join(name),
                sha256: written.get(name).cloned(),
                change,
            }
        })
        .collect()
}

fn bundle_name(plan: &render::RenderedNode) -> String {
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
            || plan::is_bundle_name(&name)
            // Bundles of the one-component layout, replaced by `control-plane-<node>`.
            || (name.starts_with("kube-controller-manager-") && name.ends_with(".tar.gz"));
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

/// How long a build waits for another one to release pki/ or the output folder, in
/// seconds; `KUBE_BUNDLE_LOCK_WAIT` overrides it (0: fail at once).
const LOCK_WAIT: u64 = 30;

/// Takes the output folder's lock: the folder it lives in, since the output folder
/// itself is replaced by a rename and a lock file would be left behind. Builds into
/// other folders beside it wait too, which costs little. Waits up to [`LOCK_WAIT`]
/// seconds; the lock goes with the returned handle, also when the process is killed.
fn lock_output(out: &Path) -> Result<std::fs::File> {
    let (parent, _) = beside(out);
    fsx::create_dirs(&parent)?;
    #[allow(clippy::disallowed_methods)] // the lock needs std's File; the error names the path
    let handle =
        std::fs::File::open(&parent).map_err(|e| Error::from(e).doing("opening", &parent))?;
    lock(&handle, out)?;
    Ok(handle)
}

/// Takes pki/ (the folder itself, made first if need be), after the output folder's
/// lock: every build takes them in that order.
fn lock_pki(pki_dir: &Path) -> Result<std::fs::File> {
    fsx::ensure_dir(pki_dir)?;
    #[allow(clippy::disallowed_methods)] // the lock needs std's File; the error names the path
    let handle =
        std::fs::File::open(pki_dir).map_err(|e| Error::from(e).doing("opening", pki_dir))?;
    lock(&handle, pki_dir)?;
    Ok(handle)
}

fn lock(file: &std::fs::File, what: &Path) -> Result<()> {
    let wait = std::env::var("KUBE_BUNDLE_LOCK_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(LOCK_WAIT);
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock)
                if start.elapsed() < std::time::Duration::from_secs(wait) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: what.to_path_buf(),
                    waited: wait,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::from(e).doing("locking", what))
            }
        }
    }
}

/// Temporary files a killed build left in pki/ (a full copy of the CA certificate is
/// recovered by `pki` before this runs). Only called with pki/ locked.
fn remove_stale_temporaries(pki_dir: &Path) {
    let stale = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.strip_prefix("tmp-"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    };
    for entry in walkdir::WalkDir::new(pki_dir)
        .max_depth(2)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_file() && stale(entry.path()) {
            let _ = fs_err::remove_file(entry.path());
        }
    }
}

/// The folder `out` lives in and its name.
fn beside(out: &Path) -> (PathBuf, String) {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map_or_else(|| "dist".into(), |n| n.to_string_lossy().to_string());
    (parent, name)
}

/// The folder a build writes into, `.<name>.tmp-<pid>` beside the output folder. It is
/// removed when dropped unless it became the output folder, so no error or panic leaves
/// it behind; what a killed build left is removed by the next one.
struct Staging(PathBuf);

impl Staging {
    fn create(out: &Path) -> Result<Staging> {
        let (parent, name) = beside(out);
        let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            // Never wider than 0755, whatever the umask: it becomes dist/.
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&staging)
                .map_err(|e| Error::from(e).doing("creating", &staging))?;
        }
        Ok(Staging(staging))
    }
}

/// Staging and old output folders that killed builds left beside `out`. Called with the
/// output folder locked, so none of them belongs to a running build.
fn remove_leftovers(out: &Path) -> Result<()> {
    let (parent, name) = beside(out);
    if !parent.exists() {
        return Ok(());
    }
    let tmp_prefix = format!(".{name}.tmp-");
    let old_prefix = format!(".{name}.old");
    let mut leftovers: Vec<(PathBuf, bool)> = Vec::new();
    for entry in fs_err::read_dir(&parent)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().to_string();
        if file_name.starts_with(&tmp_prefix) || file_name.starts_with(&old_prefix) {
            leftovers.push((entry.path(), file_name.starts_with(&old_prefix)));
        }
    }
    for (path, is_old) in leftovers {
        // A build killed between its two renames left the previous output as `.old`
        // and none in place: it is put back, as if that build had not started.
        if is_old && !out.exists() {
            fs_err::rename(&path, out)?;
        } else {
            fs_err::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = fs_err::remove_dir_all(&self.0);
        }
    }
}

/// Swaps the staging folder in for `out`; the old output is removed only once the new
/// one is in place.
fn replace_dist(staging: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        let (parent, name) = beside(out);
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        fs_err::rename(out, &old)?;
        if let Err(e) = fs_err::rename(staging, out) {
            let _ = fs_err::rename(&old, out);
            return Err(e.into());
        }
        // The new output is in place: a failure here leaves only a leftover, which the
        // next build removes.
        let _ = fs_err::remove_dir_all(&old);
    } else {
        fs_err::rename(staging, out)?;
    }
    Ok(())
}
