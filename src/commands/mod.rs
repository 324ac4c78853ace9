//! The binary's own modules: the command line (`cli`), one function a subcommand that
//! turns its arguments into the library's options and its report into output (`inputs`
//! for init and build, `inspect` for verify, rollout-plan and certs, `docs` for man pages
//! and completions, `transfer` for push and pull), and the progress line (`progress`).
//! `main` only parses, dispatches through [`run`] and prints.

use std::process::ExitCode;

use kube_bundle::error::Error;
use kube_bundle::load::config;
use kube_bundle::pack::bundle;
use kube_bundle::pki;
use kube_bundle::{verify, BuildOptions};

/// Appends one line to what `main` prints on standard output.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

pub mod cli;
mod docs;
mod inputs;
mod inspect;
pub mod progress;
pub mod transfer;

use docs::{completions_cmd, man_cmd};
use inputs::{build_cmd, init_cmd};
use inspect::{certs_cmd, rollout_plan_cmd, verify_cmd};

/// The one place that picks between text and JSON: JSON is `value`, pretty-printed;
/// text is whatever `text` appends.
fn emit<T: serde::Serialize>(
    out: &mut String,
    format: cli::Output,
    value: &T,
    text: impl FnOnce(&mut String),
) {
    match format {
        cli::Output::Json => line!(
            out,
            "{}",
            serde_json::to_string_pretty(value).expect("output serializes")
        ),
        cli::Output::Text => text(out),
    }
}

pub fn run(command: cli::Command, out: &mut String) -> Result<ExitCode, Error> {
    use cli::Command as C;
    match command {
        C::Init {
            from_env,
            out: file,
            kubernetes_version,
            force,
        } => init_cmd(from_env, &file, &kubernetes_version, force, out),
        C::Build {
            config,
            out: dir,
            templates,
            renew,
            component,
            rotate_keys,
            replace_csr_signer,
            drop_previous_csr_signer,
            sign,
            pin_signers,
            output,
            quiet,
            cache_dir,
            no_cache,
        } => {
            let opts = BuildOptions {
                config,
                out: dir,
                templates,
                mtime: bundle::mtime_from_env(),
                renew: pki::Renewal {
                    nodes: renew.map(|n| n.into_iter().collect()),
                    components: component.into_iter().collect(),
                    rotate_keys,
                    csr_signer: pki::SignerChange {
                        replace: replace_csr_signer,
                        drop_previous: drop_previous_csr_signer,
                    },
                },
                sign,
                pin_signers,
                cache: match no_cache {
                    true => None,
                    false => cache_dir.or_else(kube_bundle::pack::cache::default_dir),
                },
            };
            build_cmd(&opts, output, quiet, out)
        }
        C::Verify {
            bundles,
            warn_within,
            trust,
            seal_key,
            output,
        } => verify_cmd(
            &verify::VerifyOptions {
                bundles,
                warn_within: duration_arg("--warn-within", &warn_within)?,
                trust,
                seal_key,
            },
            output,
            out,
        ),
        C::RolloutPlan {
            config,
            kubeconfig,
            output,
        } => rollout_plan_cmd(&config, kubeconfig.as_deref(), output, out),
        C::Push(args) => transfer::push(args, out),
        C::Pull(args) => transfer::pull(args, out),
        C::Certs {
            config,
            warn_within,
            output,
        } => certs_cmd(&config, &warn_within, output, out),
        C::Completions { shell } => completions_cmd(shell, out),
        C::Man { out: dir } => man_cmd(&dir),
    }
}

fn exit_if(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn duration_arg(flag: &str, text: &str) -> Result<std::time::Duration, Error> {
    config::parse_duration(text).map_err(|m| Error::input(flag, m))
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}
