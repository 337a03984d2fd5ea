//! The RBAC permission each call needs, declared where the call is built.
//!
//! Every request that goes around the one request loop carries a [`Permission`]: the ARM
//! pipeline takes it in [`super::pipeline::Request::new`], the SDK clients (Blob, Key Vault) run
//! each call inside [`declare`], and the registry transport takes it per call. A phase's set
//! (`plan --permissions`) is the union of the consts of the client methods it calls; the
//! recording (`VIBEDATA_RECORD_PERMISSIONS`) lets a test compare what was really sent with what
//! was declared, and flags any call made without a declaration ([`UNDECLARED`]).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

/// How a role grants a permission. Actions never grant data actions, and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Action,
    DataAction,
    /// Not an Azure RBAC permission: the call is authorised otherwise (the publisher registry's
    /// own credentials). Listed so that no call goes unaccounted, never matched against roles.
    NoRbac,
}

/// One permission, as Azure's role definitions spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub kind: Kind,
    /// The action or data action; `*` is a wildcard (`*/read`: a read of any type).
    pub name: &'static str,
    /// The resource type the permission is checked on (the assignment must be at or above one).
    pub resource_type: &'static str,
    /// Whether the exact string was found in Microsoft's documents (azure-reference
    /// `specs/permissions.md` [R]/[P]/[D]), or only inferred ([I]): to be confirmed on a real
    /// subscription.
    pub confirmed: bool,
}

impl Permission {
    pub const fn action(name: &'static str, resource_type: &'static str) -> Permission {
        Permission { kind: Kind::Action, name, resource_type, confirmed: true }
    }

    pub const fn data(name: &'static str, resource_type: &'static str) -> Permission {
        Permission { kind: Kind::DataAction, name, resource_type, confirmed: true }
    }

    /// The string was inferred, not read in Microsoft's documents.
    pub const fn unconfirmed(self) -> Permission {
        Permission { confirmed: false, ..self }
    }

    /// Whether `concrete` (what a call really needed, e.g. `Microsoft.Web/sites/read`) is this
    /// declaration (`*/read`).
    pub fn covers(&self, kind: Kind, concrete: &str) -> bool {
        self.kind == kind && matches(self.name, concrete)
    }
}

/// What a call that declared nothing records; the recording test fails on it.
pub const UNDECLARED: Permission =
    Permission { kind: Kind::NoRbac, name: "(undeclared)", resource_type: "(unknown)", confirmed: false };

pub use vibedata_rbac::wildcard as matches;

tokio::task_local! {
    /// The permission of the SDK call running in this task (see [`declare`]).
    static DECLARED: &'static Permission;
}

/// Runs an SDK call (Blob, Key Vault) with its permission declared: the SDK builds the request
/// itself, so the declaration travels beside it to [`super::sdk::RetryAdapter`].
pub async fn declare<F: std::future::Future>(permission: &'static Permission, call: F) -> F::Output {
    DECLARED.scope(permission, call).await
}

/// The permission [`declare`]d around the SDK call now running, or [`UNDECLARED`].
pub fn declared() -> &'static Permission {
    DECLARED.try_with(|p| *p).unwrap_or(&UNDECLARED)
}

/// The environment variable naming a file to which every call's permission is appended, one
/// JSON line per call: what the recording test reads.
pub const RECORD_ENV: &str = "VIBEDATA_RECORD_PERMISSIONS";

#[derive(Serialize)]
struct Recorded<'a> {
    kind: Kind,
    /// What the declaration names.
    declared: &'a str,
    /// What the call needed, where the declaration is a pattern (`*/read` → the type's read).
    name: &'a str,
    resource: &'a str,
}

/// Appends one call to the recording, if one is on. `concrete` is the exact string where the
/// declaration is a pattern.
pub fn record(permission: &Permission, concrete: Option<&str>, resource: &str) {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = std::env::var_os(RECORD_ENV)?;
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
    });
    if let Some(file) = file {
        let line = Recorded {
            kind: permission.kind,
            declared: permission.name,
            name: concrete.unwrap_or(permission.name),
            resource,
        };
        if let (Ok(mut f), Ok(mut text)) = (file.lock(), serde_json::to_string(&line)) {
            text.push('\n');
            // Best effort: the recording is a test aid and never fails a call.
            let _ = f.write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_declaration_is_seen_only_inside_its_call() {
        const P: Permission = Permission::data("x/read", "t");
        assert_eq!(declared(), &UNDECLARED);
        let inside = declare(&P, async { declared().name }).await;
        assert_eq!(inside, "x/read");
        assert_eq!(declared(), &UNDECLARED);
    }
}
