//! What a check reports: a named rule, where, and why.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Relative to the infra root (`modules/apps.bicep`), or a package path.
    pub file: String,
    /// 1-based; 0 when the finding is about the file as a whole.
    pub line: usize,
    pub rule: &'static str,
    pub message: String,
}

impl Finding {
    pub fn new(rule: &'static str, file: &str, line: usize, message: impl Into<String>) -> Finding {
        Finding { rule, file: file.to_owned(), line, message: message.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: [{}] {}", self.file, self.line, self.rule, self.message)
        } else {
            write!(f, "{}: [{}] {}", self.file, self.rule, self.message)
        }
    }
}

/// The rule names, as the findings and the tests spell them.
pub mod rule {
    pub const PARSE: &str = "parse";
    pub const ORDER: &str = "order";
    pub const STEP_PHASE: &str = "step-phase";
    pub const STEP_CONFIG: &str = "step-config";
    pub const STEP_SCRIPT: &str = "step-script";
    pub const RULES_TABLE: &str = "rules-table";
    pub const PUBLIC_NETWORK_ACCESS: &str = "public-network-access";
    pub const PRIVATE_ENDPOINT: &str = "private-endpoint";
    pub const DNS_ZONE_GROUP: &str = "dns-zone-group";
    pub const DIAGNOSTIC_SETTINGS: &str = "diagnostic-settings";
    pub const KEY_VAULT_RECOVERY: &str = "key-vault-recovery";
    pub const ROLE_ASSIGNMENT: &str = "role-assignment-principal-type";
    pub const NO_PLAIN_SECRET: &str = "no-plain-secret";
    pub const UI_DEFINITION: &str = "ui-definition";
    pub const PACKAGE: &str = "package";
    pub const ROLE_COVERAGE: &str = "role-coverage";
}
