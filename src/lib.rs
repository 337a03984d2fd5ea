//! vibedata-bootstrap: the imperative steps of the RFC-60 Vibedata Marketplace deployment.
//!
//! See ARCHITECTURE.md for the bird's-eye view.

pub mod azure;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod context;
pub mod copy_cmd;
pub mod db;
pub mod error;
pub mod ledger;
pub mod logging;
pub mod names;
pub mod notary;
pub mod oci;
pub mod outputs;
pub mod phases;
pub mod plan;
pub mod release;
pub mod report;
pub mod roles;
pub mod run;
pub mod sequence;
pub mod serve;
pub mod stored_release;
#[cfg(test)]
mod testserver;
pub mod zip;

/// The version and source commit, as `--version` prints them.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VIBEDATA_COMMIT"), ")");
