//! Command-line parsing only. Nothing here does any work; `main.rs` hands the parsed arguments to
//! the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Configuration comes from VIBEDATA_* environment variables (and optionally a JSON file with the same
keys, --config or VIBEDATA_CONFIG_FILE). `vibedata-bootstrap plan --json` lists what each phase
requires. The cloud follows AZ_SCRIPTS_AZURE_ENVIRONMENT.

Exit codes: 0 success, 1 failure (after retries), 2 bad input or configuration (nothing mutated).";

const RUN_HELP: &str = "\
PHASE is preflight, all, or one of the imperative RFC-60 steps in order (`vibedata-bootstrap plan`
lists them with what each does and whether this version builds it).
Each run first checks its configuration, a token per audience, a harmless read of every resource it
touches and the ledger; it mutates nothing until those pass. `run all` runs every step in RFC-60 order
and stops at the first failure. `--dry-run` plans from the real state and stops there.";

#[derive(Debug, Parser)]
#[command(
    name = "vibedata-bootstrap",
    version = crate_version(),
    about = "Runs the imperative steps of the RFC-60 Vibedata Marketplace deployment sequence",
    long_about = "Runs the steps of the RFC-60 Vibedata Marketplace install that Bicep cannot express: \
importing the release into the customer registry, publishing runbooks, migrating Postgres, \
installing Airbyte on AKS, creating the AI Search and Foundry objects, discovering the platform into its registry, and the health bootstrap. Every step is idempotent: \
a rerun against an unchanged platform reports `status: unchanged`.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// JSON file of configuration keys (VIBEDATA_* names); the environment wins over it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format. `auto` is JSON when stdout is not a terminal.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the fifteen RFC-60 phases in order: what Bicep does, what this binary does, and the
    /// status recorded in the ledger when it is reachable.
    Plan {
        /// Machine-readable output (the contract `infra/` and the tests read).
        #[arg(long)]
        json: bool,
        /// Instead of the phases: what each built phase's identity needs granted (each permission,
        /// the resource it applies to, the narrowest built-in roles that cover them).
        #[arg(long)]
        permissions: bool,
    },
    /// Run one imperative phase, `preflight`, or `all` built phases in RFC-60 order.
    #[command(after_help = RUN_HELP)]
    Run {
        /// The phase to run (see below).
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::run::Target::names()))]
        phase: String,
        /// Compute the plan from the real current state and print it (one line per change in
        /// the logs); mutate nothing, not even the ledger.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print the plan as JSON on stdout (logs go to stderr).
        #[arg(long, requires = "dry_run")]
        json: bool,
        /// Also write each phase's outputs JSON to DIR/<phase>.json.
        #[arg(long, value_name = "DIR")]
        outputs_dir: Option<PathBuf>,
    },
    /// Copy one image or index between registries by digest (every platform), verifying each
    /// blob while streaming; tags last.
    Copy(CopyArgs),
    /// Run as the Azure Functions custom handler (functions phase, status and health).
    #[command(after_help = SERVE_HELP)]
    Serve {
        /// The port to listen on (127.0.0.1 only). The Functions host sets it.
        #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT", default_value_t = 8080, value_name = "PORT")]
        port: u16,
    },
    /// Write the Day-0 report (release, phase timeline, component health, endpoints) as one
    /// self-contained HTML page, read from the ledger and the registry.
    Report {
        /// Where to write the page.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
    },
}

const SERVE_HELP: &str = "\
Functions (see functions/ and README.md):
  POST /api/phase/{name}        start a phase in the background: 202 with its status URL
  GET  /api/phase/{name}        its progress (202), then its outputs JSON (200)
  GET  /api/phase/{name}/plan   the dry-run plan JSON
  GET  /api/status[?format=html] the registry and health as JSON, or the Day-0 page
  timer health                  refresh health into the registry
Both host modes are served: invocation envelopes on /<function>, proxied requests on /api/...
Configuration comes only from the app settings (VIBEDATA_*), never from a request.";

/// `copy SRC DST`: one image or index between two registries, by digest, all platforms; with
/// `--release`, everything a release manifest pins.
#[derive(Debug, Args)]
#[command(after_help = "SRC and DST are host[:port]/repository followed by :tag or @sha256:<hex> (SRC needs one).\n\
Without a tag, DST takes SRC's tag. With --release, SRC is a release manifest (host/repository:tag) and\n\
DST a registry, host[:port][/prefix]: the manifest and everything it pins (images, runbooks, migrations,\n\
charts, AI definitions) go to DST/[prefix/]<repository>:<tag> by digest, --images at a time, in one\n\
process (one token exchange; a layer shared by two images is mounted, not uploaded twice). Credentials are `user:password` in the named environment\n\
variables, never on the command line. --dst-acr uses the managed identity (the identity\n\
configuration `run` reads, and VIBEDATA_ACR_AUTH_ENDPOINT, default https://<DST host>).\n\
VIBEDATA_CA_FILE names an extra trusted CA. Prints progress on stderr and a JSON report on stdout.\n\
Exit codes: 0 copied (or already there), 1 failure, 2 bad reference or arguments.")]
pub struct CopyArgs {
    /// Source image: host[:port]/repository:tag or host[:port]/repository@sha256:<hex>.
    pub src: String,
    /// Target image: host[:port]/repository[:tag].
    pub dst: String,
    /// Environment variable holding the source's `user:password`.
    #[arg(long, value_name = "VAR")]
    pub src_creds_env: Option<String>,
    /// Environment variable holding the target's `user:password`.
    #[arg(long, value_name = "VAR", conflicts_with = "dst_acr")]
    pub dst_creds_env: Option<String>,
    /// Authenticate to the target as the managed identity through the ACR token exchange.
    #[arg(long)]
    pub dst_acr: bool,
    /// Blobs copied at once (per image).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// SRC is a release manifest: copy it and everything it pins to the registry DST.
    #[arg(long)]
    pub release: bool,
    /// With --release: images and artifacts copied at once.
    #[arg(long, default_value_t = 4, value_name = "N", requires = "release")]
    pub images: usize,
    /// Copy the source's referrers too (signatures, SBOMs), by digest, and update the target's
    /// referrers tag-schema index when it has no referrers API.
    #[arg(long)]
    pub referrers: bool,
}

fn crate_version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("VIBEDATA_COMMIT"), ")")
}
