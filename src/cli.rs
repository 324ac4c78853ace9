//! Command-line interface: the clap definitions and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kube-bundle",
    version,
    about = "Builds self-contained per-node kube-controller-manager bundles from one inventory"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starting inventory
    Init {
        /// Import NODE_NAMES, NODE_IPS, KUBE_APISERVER, K8S_DIR, SERVICE_CIDR and CLUSTER_CIDR
        /// from the tutorial's environment.sh (parsed, never executed)
        #[arg(long, value_name = "FILE")]
        from_env: Option<PathBuf>,
        /// Where to write the inventory (`-` for standard output)
        #[arg(short, long, default_value = "cluster.toml")]
        output: PathBuf,
        /// Kubernetes version to put in the inventory
        #[arg(long, default_value = "1.20.2")]
        kubernetes_version: String,
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Build one bundle per master into the output folder
    Build {
        /// The inventory
        #[arg(short, long, default_value = "cluster.toml")]
        config: PathBuf,
        /// Output folder; replaced as a whole once every bundle is built
        #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "dist")]
        out: PathBuf,
        /// Folder with template overrides (`kube-controller-manager.service.hbs`, `install.sh.hbs`)
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// What to print on standard output: `sha256  path` lines, or a JSON summary
        /// (node, path, size and sha256 of every bundle) for pipelines
        #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
        output: OutputFormat,
        /// No progress line and no notes; warnings and errors still go to standard error
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}
