//! Structured logs: JSON when stdout is not a terminal (deploymentScripts, Functions, CI),
//! readable text otherwise. `VIBEDATA_LOG` (an `EnvFilter`) sets the level; default `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Logs go to stdout for `run` (the design's contract) and to stderr for commands whose stdout
/// is a document (`plan --json`).
pub fn init(format: LogFormat, to_stderr: bool) {
    let filter = EnvFilter::try_from_env("VIBEDATA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = match (json, to_stderr) {
        (true, false) => {
            builder.json().flatten_event(true).with_current_span(false).with_writer(std::io::stdout).try_init()
        }
        (true, true) => {
            builder.json().flatten_event(true).with_current_span(false).with_writer(std::io::stderr).try_init()
        }
        (false, false) => builder.with_writer(std::io::stdout).try_init(),
        (false, true) => builder.with_writer(std::io::stderr).try_init(),
    };
    let _ = result;
}
