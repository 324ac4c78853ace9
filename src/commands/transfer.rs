//! `push` and `pull` on the command line: turns their arguments into the library's options
//! (reading a password from standard input, never from argv), shows the progress line and
//! prints the references with digests, or JSON. The work itself is `kube_bundle::store::artifact`.

use std::io::IsTerminal;
use std::process::ExitCode;

use kube_bundle::error::Error;
use kube_bundle::store::artifact::{self, Transfer};
use kube_bundle::store::oci::Reference;
use kube_bundle::store::registry::{self, Credentials};

use crate::cli;
use crate::commands::progress;

fn registry_options(args: &cli::RegistryArgs) -> Result<registry::Options, Error> {
    let credentials = match (&args.username, args.password_stdin) {
        (Some(username), true) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                return Err(Error::input(
                    "--password-stdin",
                    "standard input held no password",
                ));
            }
            Some(Credentials {
                username: username.clone(),
                password,
            })
        }
        _ => None,
    };
    if let Some(ca) = &args.ca_file {
        if !ca.is_file() {
            return Err(Error::input(
                "--ca-file",
                format!("`{}` does not exist", ca.display()),
            ));
        }
    }
    Ok(registry::Options {
        ca_file: args.ca_file.clone(),
        plain_http: args.plain_http,
        credentials,
        docker_config: None,
        token_server: args.token_server.clone(),
        limits: registry::Limits {
            speed_limit: args.speed_limit,
            speed_time: std::time::Duration::from_secs(args.speed_time),
            max_time: std::time::Duration::from_secs(args.max_time),
        },
    })
}

fn describe(t: Transfer) -> String {
    const MIB: u64 = 1 << 20;
    format!(
        "{}: {}% ({} of {} MiB)",
        t.verb,
        (t.done * 100).checked_div(t.total).unwrap_or(100),
        t.done / MIB,
        t.total / MIB
    )
}

/// Runs `work` with a progress line on a terminal, erased when it ends.
fn with_progress<T>(
    quiet: bool,
    work: impl FnOnce(&dyn Fn(Transfer)) -> Result<T, Error>,
) -> Result<T, Error> {
    let line = progress::Line::new(!quiet && std::io::stderr().is_terminal());
    let result = work(&|t| line.show_text(|| describe(t)));
    line.clear();
    result
}

pub fn push(args: cli::PushArgs, out: &mut String) -> Result<ExitCode, Error> {
    use std::fmt::Write as _;
    let reference = Reference::parse(&args.reference)?;
    let opts = artifact::PushOptions {
        dist: args.out,
        reference,
        registry: registry_options(&args.registry)?,
        created: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
        allow_plain_secrets: args.allow_plain_secrets,
        cosign_key: args.cosign_key,
    };
    let report = with_progress(args.quiet, |p| artifact::push(&opts, p))?;
    crate::commands::emit(out, args.output, &report, |out| {
        for n in &report.nodes {
            let _ = writeln!(out, "{}  {}", n.reference, n.node);
        }
        let _ = writeln!(out, "{}  dist", report.dist.reference);
        let _ = writeln!(out, "{}  index", report.reference);
        for s in &report.signatures {
            let _ = writeln!(out, "{}  cosign signature of {}", s.reference, s.signs);
        }
    });
    if let Some(key) = &report.cosign_public_key {
        if !args.quiet {
            eprintln!(
                "signed for cosign; verify with: cosign verify --key {} --insecure-ignore-tlog=true {}",
                key.display(),
                report.reference
            );
        }
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for t in &report.stale_tags {
        eprintln!(
            "warning: `{}` still holds node `{}`'s bundle from an earlier push ({}); this \
             push's index has no node `{}`",
            t.tag, t.node, t.digest, t.node
        );
    }
    if !report.stale_tags.is_empty() {
        eprintln!(
            "hint: `pull` goes through the index and never reads them; delete them in the \
             registry if nothing else uses them"
        );
    }
    if !args.quiet {
        eprintln!(
            "uploaded {} blob(s), {} bytes; {} blob(s), {} bytes, were already there",
            report.uploaded_blobs,
            report.uploaded_bytes,
            report.skipped_blobs,
            report.skipped_bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pull(args: cli::PullArgs, out: &mut String) -> Result<ExitCode, Error> {
    use std::fmt::Write as _;
    let reference = Reference::parse(&args.reference)?;
    let opts = artifact::PullOptions {
        reference,
        out: args.out,
        node: args.node,
        registry: registry_options(&args.registry)?,
        max_size: args.max_size,
    };
    let report = with_progress(args.quiet, |p| artifact::pull(&opts, p))?;
    crate::commands::emit(out, args.output, &report, |out| {
        for f in &report.files {
            let _ = writeln!(out, "{}  {}", f.sha256, f.path.display());
        }
    });
    Ok(ExitCode::SUCCESS)
}
