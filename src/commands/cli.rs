//! Command-line interface: the clap definitions, with the help texts that name the
//! library's own lists filled in at start-up, and nothing else.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// The command line: the clap definitions, with the help texts that come from the
/// library's own lists (the variables init reads, the templates build renders) filled in,
/// so help cannot drift from the code.
pub fn command() -> clap::Command {
    let env_vars = kube_bundle::load::init::used().join(", ");
    let templates = kube_bundle::render::template_names()
        .iter()
        .map(|n| format!("{n}.hbs"))
        .collect::<Vec<_>>()
        .join(", ");
    Cli::command()
        .mut_subcommand("init", |init| {
            init.mut_arg("from_env", |arg| {
                arg.long_help(format!(
                    "Import the cluster from the tutorial's environment.sh (parsed as text, \
                     never executed). Variables read: {env_vars}. Every other variable is \
                     ignored, and init says which"
                ))
            })
        })
        .mut_subcommand("build", |build| {
            build.mut_arg("templates", |arg| {
                arg.long_help(format!(
                    "Folder with template overrides, each in place of the embedded template \
                     of the same name: {templates}"
                ))
            })
        })
}

/// Parses the process's arguments against [`command`].
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Parser)]
#[command(
    name = "kube-bundle",
    version,
    about = "Builds self-contained per-node Kubernetes control-plane bundles from one inventory"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starting inventory
    Init {
        /// Import the cluster from the tutorial's environment.sh (parsed, never executed);
        /// the variables it reads are listed in `--help`
        #[arg(long, value_name = "FILE")]
        from_env: Option<PathBuf>,
        /// Where to write the inventory (`-` for standard output)
        // `--output` was this flag's name; it stays as a hidden alias so old scripts run,
        // while every other subcommand's `--output` is the output format.
        #[arg(
            short = 'o',
            long = "out",
            alias = "output",
            value_name = "FILE",
            default_value = "cluster.toml"
        )]
        out: PathBuf,
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
        /// Folder with template overrides, `NAME.hbs` for any template named in `--help`
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Reissue the component certificates of these nodes (all when none are named)
        /// under the same CA, keeping their names and keys
        #[arg(long, num_args = 0.., value_name = "NODE")]
        renew: Option<Vec<String>>,
        /// With --renew: only this component's certificates (repeatable)
        #[arg(long, value_name = "NAME", requires = "renew")]
        component: Vec<String>,
        /// With --renew: generate new keys too
        #[arg(long, requires = "renew")]
        rotate_keys: bool,
        /// Replace the CSR signing CA with a new key and certificate; the new
        /// client-ca.pem trusts the old certificate too (pki/csr-signer-previous.pem)
        /// until --drop-previous-csr-signer
        #[arg(long)]
        replace_csr_signer: bool,
        /// Stop trusting the signing CA the last --replace-csr-signer replaced: once the
        /// bundles are installed, the API server refuses certificates its key signed
        #[arg(long)]
        drop_previous_csr_signer: bool,
        /// Sign each bundle's SHA256SUMS with this Ed25519 OpenSSH private key
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Pin this allowed-signers file into every bundle: install.sh then refuses
        /// bundles without a valid signature from one of its keys
        #[arg(long, value_name = "FILE", requires = "sign")]
        pin_signers: Option<PathBuf>,
        /// What to print on standard output: `sha256  path` lines, or a JSON summary
        /// (node, path, size and sha256 of every bundle) for pipelines
        #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
        output: Output,
        /// No progress line and no notes; warnings and errors still go to standard error
        #[arg(short, long)]
        quiet: bool,
        /// Keep compressed binaries in this folder between builds (default:
        /// `$KUBE_BUNDLE_CACHE`, else `$XDG_CACHE_HOME/kube-bundle`, else
        /// `~/.cache/kube-bundle`); safe to delete at any time
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Compress every binary again and neither read nor write the cache
        #[arg(long, conflicts_with = "cache_dir")]
        no_cache: bool,
    },
    /// Check finished bundles offline: checksums, manifest, certificate chains, keys,
    /// kubeconfig, unit, shared CA and service-account key, expiry
    Verify {
        /// The bundles (`control-plane-<node>.tar.gz`)
        #[arg(required = true, value_name = "BUNDLE")]
        bundles: Vec<PathBuf>,
        /// Report certificates that expire within this long (`30d`, `720h`)
        #[arg(long, default_value = "30d", value_name = "DURATION")]
        warn_within: String,
        /// Allowed-signers file (ssh-keygen format) the bundles' signatures must match
        #[arg(long, value_name = "FILE")]
        trust: Option<PathBuf>,
        /// Open sealed private files and check them too: a node's `seal.key`, or the pki/
        /// folder (`<node>/seal.key` for each bundle)
        #[arg(long, value_name = "DIR|FILE")]
        seal_key: Option<PathBuf>,
        /// What to print on standard output: text, or JSON for pipelines
        #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
        output: Output,
    },
    /// Print the order to update the masters in: non-leaders first, leaders last
    RolloutPlan {
        /// The inventory
        #[arg(short, long, default_value = "cluster.toml")]
        config: PathBuf,
        /// Admin kubeconfig to read the current leader with kubectl
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// What to print on standard output: text, or JSON for pipelines
        #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
        output: Output,
    },
    /// List the CA, the service-account key and every component certificate in pki/ with
    /// its expiry
    Certs {
        /// The inventory
        #[arg(short, long, default_value = "cluster.toml")]
        config: PathBuf,
        /// Exit 1 when anything expires within this long
        #[arg(long, default_value = "30d", value_name = "DURATION")]
        warn_within: String,
        /// What to print on standard output: text, or JSON for pipelines
        #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
        output: Output,
    },
    /// Print a shell completion script (`source <(kube-bundle completions bash)`)
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages (kube-bundle.1 and one per subcommand) into a folder
    #[command(hide = true)]
    Man {
        /// Where to write the pages
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Push every bundle of an output folder to an OCI registry as artifacts
    Push(PushArgs),
    /// Pull bundles pushed by `push` back from the registry
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The output folder to push
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "dist")]
    pub out: PathBuf,
    /// Where to push: `registry.example:5000/k8s/control-plane:v1.20.2-r3`
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Push bundles whose private files are in clear (built without `seal-secrets`);
    /// whoever can read the repository can read them
    #[arg(long)]
    pub allow_plain_secrets: bool,
    /// Sign the index and every manifest in it for `cosign verify --key FILE.pub
    /// --insecure-ignore-tlog=true`: FILE is a PEM EC P-256 private key only its owner can
    /// read; its public key FILE.pub is written when missing (and must match when present)
    #[arg(long, value_name = "FILE")]
    pub cosign_key: Option<PathBuf>,
    /// What to print on standard output: one reference with its digest a line, or JSON
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: Output,
    /// No progress line
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// What to pull: the reference given to `push`, or a node's reference
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Where to write the bundles (and the dist files)
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Only this node's bundle
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Refuse an artifact whose files add up to more than this (bytes, or with a K, M, G
    /// or T suffix, powers of 1024), before downloading anything
    #[arg(long, value_name = "SIZE", default_value = "32G", value_parser = parse_size)]
    pub max_size: u64,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// What to print on standard output: `sha256  path` for each file written, or JSON
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: Output,
    /// No progress line
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The registry's CA certificate (PEM); default: the system's CAs
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Plain http, allowed only to a registry on this machine (loopback)
    #[arg(long)]
    pub plain_http: bool,
    /// User name for the registry; the password is read from standard input
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password from standard input (with --username)
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// The registry's token server, when its Bearer challenge names one on another host
    /// (https): it gets the credentials too. Without it only the registry itself does
    #[arg(long, value_name = "HOST[:PORT]")]
    pub token_server: Option<String>,
    /// Cut a transfer (and retry it) that averages fewer bytes a second than this over
    /// --speed-time
    #[arg(long, value_name = "BYTES", default_value_t = kube_bundle::store::registry::SPEED_LIMIT)]
    pub speed_limit: u64,
    /// The window of --speed-limit, and the longest wait for any one read or write
    #[arg(long, value_name = "SECONDS", default_value_t = kube_bundle::store::registry::SPEED_TIME_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub speed_time: u64,
    /// Give up when the whole command, retries included, takes longer than this
    #[arg(long, value_name = "SECONDS", default_value_t = kube_bundle::store::registry::MAX_TIME_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_time: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `123`, `512K`, `100M`, `32G`, `1T` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        Some(b'T' | b't') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("`{text}` is not a size: write bytes, or a number with K, M, G or T")
        })
}
