//! The naming rules Azure enforces on every name this binary sends, as one table of data.
//!
//! A name that breaks its rule is bad input (exit 2) found before the first call, instead of a
//! 400 from the service halfway through a phase. Configuration keys that become part of a path
//! and every name a release manifest gives are checked against the rule of what they name.
//!
//! Sources: Microsoft, "Naming rules and restrictions for Azure resources"
//! (<https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules>),
//! per resource provider; Azure Storage, "Naming and referencing containers, blobs, and metadata"
//! (<https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata>);
//! the Automation REST spec's `runbookName` pattern (`azure-reference/specs/automation.md`); the
//! AI Search index and Foundry agent rules (`azure-reference/specs/ai-search-foundry.md`).
//! Where a rule is this project's own (the deployment id), it says so.

use std::fmt;

/// What a character class allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chars {
    /// a-z, A-Z, 0-9.
    Alphanumeric,
    /// a-z, 0-9.
    LowerAlphanumeric,
    /// Alphanumerics and `-`.
    AlphanumericHyphen,
    /// a-z, 0-9 and `-`.
    LowerAlphanumericHyphen,
    /// a-z, 0-9 and `_`.
    LowerAlphanumericUnderscore,
    /// Alphanumerics, `-` and `_`.
    AlphanumericHyphenUnderscore,
    /// Alphanumerics, `-`, `_` and `.` (runtime environments carry versions: `PowerShell-7.4`).
    AlphanumericHyphenUnderscoreDot,
    /// Letters and digits of any script, `_`, `-`, `.`, `(` and `)`: a resource group.
    ResourceGroup,
    /// Any character but a control character: a blob name.
    Printable,
}

impl Chars {
    fn allows(self, c: char) -> bool {
        match self {
            Chars::Alphanumeric => c.is_ascii_alphanumeric(),
            Chars::LowerAlphanumeric => c.is_ascii_lowercase() || c.is_ascii_digit(),
            Chars::AlphanumericHyphen => c.is_ascii_alphanumeric() || c == '-',
            Chars::LowerAlphanumericHyphen => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            Chars::LowerAlphanumericUnderscore => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
            Chars::AlphanumericHyphenUnderscore => c.is_ascii_alphanumeric() || c == '-' || c == '_',
            Chars::AlphanumericHyphenUnderscoreDot => c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
            Chars::ResourceGroup => c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'),
            Chars::Printable => !c.is_control(),
        }
    }
}

/// How a name must begin or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Any,
    Letter,
    Alphanumeric,
    /// Anything but a period (a resource group cannot end with one).
    NotPeriod,
}

impl Edge {
    fn allows(self, c: char) -> bool {
        match self {
            Edge::Any => true,
            Edge::Letter => c.is_ascii_alphabetic(),
            Edge::Alphanumeric => c.is_ascii_alphanumeric(),
            Edge::NotPeriod => c != '.',
        }
    }
}

/// The rule for one kind of name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// What is named, in the error line: "runbook", "resource group"...
    pub what: &'static str,
    /// Length in characters, inclusive.
    pub min: usize,
    pub max: usize,
    pub chars: Chars,
    pub first: Edge,
    pub last: Edge,
    /// Refuses `--` (Key Vault, Blob containers).
    pub no_double_hyphen: bool,
    /// The rule in words, as the error line states it.
    pub describe: &'static str,
}

const fn rule(what: &'static str, min: usize, max: usize, chars: Chars, describe: &'static str) -> Rule {
    Rule { what, min, max, chars, first: Edge::Any, last: Edge::Any, no_double_hyphen: false, describe }
}

/// Microsoft.Resources/resourcegroups.
pub const RESOURCE_GROUP: Rule = Rule {
    last: Edge::NotPeriod,
    ..rule(
        "resource group",
        1,
        90,
        Chars::ResourceGroup,
        "1-90 letters, digits, underscores, hyphens, periods and parentheses, not ending with a period",
    )
};
/// This project's own: the deployment id names ledger and export blobs (`deployments/<id>/...`),
/// and defaults to the resource group, so it takes the resource group's rule (which has no `/`).
pub const DEPLOYMENT_ID: Rule = Rule { what: "deployment id", ..RESOURCE_GROUP };
/// Microsoft.Automation/automationAccounts.
pub const AUTOMATION_ACCOUNT: Rule = Rule {
    first: Edge::Letter,
    last: Edge::Alphanumeric,
    ..rule(
        "Automation account",
        6,
        50,
        Chars::AlphanumericHyphen,
        "6-50 letters, digits and hyphens, starting with a letter and ending with a letter or digit",
    )
};
/// Microsoft.Automation/automationAccounts/runbooks: the spec's `^[a-zA-Z][a-zA-Z-_0-9]*$`, and
/// Automation's 400 "at most 63 characters".
pub const RUNBOOK: Rule = Rule {
    first: Edge::Letter,
    ..rule(
        "runbook",
        1,
        63,
        Chars::AlphanumericHyphenUnderscore,
        "1-63 letters, digits, hyphens and underscores, starting with a letter",
    )
};
/// Microsoft.Automation/automationAccounts/runtimeEnvironments as a manifest names them (the
/// system ones carry a version, `PowerShell-7.4`). The length limit is not documented; the
/// runbook's is assumed.
pub const RUNTIME_ENVIRONMENT: Rule = Rule {
    first: Edge::Letter,
    ..rule(
        "runtime environment",
        1,
        63,
        Chars::AlphanumericHyphenUnderscoreDot,
        "1-63 letters, digits, hyphens, underscores and periods, starting with a letter",
    )
};
/// A runtime environment this binary creates: Automation refuses periods in user-created names.
pub const USER_RUNTIME_ENVIRONMENT: Rule = Rule {
    first: Edge::Letter,
    ..rule(
        "user-created runtime environment",
        1,
        63,
        Chars::AlphanumericHyphenUnderscore,
        "1-63 letters, digits, hyphens and underscores, starting with a letter (no periods)",
    )
};
/// Microsoft.KeyVault/vaults.
pub const KEY_VAULT: Rule = Rule {
    first: Edge::Letter,
    last: Edge::Alphanumeric,
    no_double_hyphen: true,
    ..rule("Key Vault", 3, 24, Chars::AlphanumericHyphen, "3-24 letters, digits and hyphens, starting with a letter, ending with a letter or digit, no consecutive hyphens")
};
/// Microsoft.KeyVault/vaults/secrets.
pub const SECRET: Rule =
    rule("Key Vault secret", 1, 127, Chars::AlphanumericHyphen, "1-127 letters, digits and hyphens");
/// Microsoft.Storage/storageAccounts.
pub const STORAGE_ACCOUNT: Rule =
    rule("storage account", 3, 24, Chars::LowerAlphanumeric, "3-24 lowercase letters and digits");
/// Microsoft.Storage/storageAccounts/blobServices/containers.
pub const CONTAINER: Rule = Rule {
    first: Edge::Alphanumeric,
    last: Edge::Alphanumeric,
    no_double_hyphen: true,
    ..rule("blob container", 3, 63, Chars::LowerAlphanumericHyphen, "3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit, no consecutive hyphens")
};
/// A blob's name within its container.
pub const BLOB: Rule = rule("blob", 1, 1024, Chars::Printable, "1-1024 characters, no control characters");
/// Microsoft.ContainerRegistry/registries.
pub const CONTAINER_REGISTRY: Rule = rule("container registry", 5, 50, Chars::Alphanumeric, "5-50 letters and digits");
/// An AI Search index.
pub const SEARCH_INDEX: Rule = Rule {
    first: Edge::Alphanumeric,
    last: Edge::Alphanumeric,
    ..rule(
        "search index",
        2,
        128,
        Chars::LowerAlphanumericHyphen,
        "2-128 lowercase letters, digits and dashes, starting and ending with a letter or digit",
    )
};
/// A Foundry agent.
pub const AGENT: Rule = Rule {
    first: Edge::Alphanumeric,
    last: Edge::Alphanumeric,
    ..rule(
        "agent",
        1,
        63,
        Chars::AlphanumericHyphen,
        "1-63 letters, digits and hyphens, starting and ending with a letter or digit",
    )
};

/// A Kubernetes namespace: a DNS-1123 label
/// (<https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-label-names>).
pub const K8S_NAMESPACE: Rule = Rule {
    first: Edge::Alphanumeric,
    last: Edge::Alphanumeric,
    ..rule(
        "Kubernetes namespace",
        1,
        63,
        Chars::LowerAlphanumericHyphen,
        "1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit",
    )
};
/// A Helm chart (<https://helm.sh/docs/chart_best_practices/conventions/#chart-names>: lower
/// case letters, numbers and dashes). It also names the Helm release, which Helm caps at 53.
pub const HELM_CHART: Rule = Rule {
    first: Edge::Letter,
    last: Edge::Alphanumeric,
    ..rule(
        "Helm chart",
        1,
        53,
        Chars::LowerAlphanumericHyphen,
        "1-53 lowercase letters, digits and dashes, starting with a letter and ending with a letter or digit",
    )
};

/// Microsoft.ContainerService/managedClusters: the spec's
/// `^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$` (`azure-reference/specs/aks-runcommand.md`).
pub const AKS_CLUSTER: Rule = Rule {
    first: Edge::Alphanumeric,
    last: Edge::Alphanumeric,
    ..rule(
        "AKS cluster",
        1,
        63,
        Chars::AlphanumericHyphenUnderscore,
        "1-63 letters, digits, hyphens and underscores, starting and ending with a letter or digit",
    )
};
/// A Postgres database or role this binary creates: PostgreSQL takes 63 bytes of identifier
/// (NAMEDATALEN - 1); held to lower case letters, digits and underscores so it never needs quoting
/// in a statement.
pub const POSTGRES_NAME: Rule = Rule {
    first: Edge::Letter,
    ..rule(
        "Postgres database or role",
        1,
        63,
        Chars::LowerAlphanumericUnderscore,
        "1-63 lowercase letters, digits and underscores, starting with a letter",
    )
};

/// Microsoft.Search/searchServices.
pub const SEARCH_SERVICE: Rule = Rule {
    first: Edge::Alphanumeric,
    last: Edge::Alphanumeric,
    no_double_hyphen: true,
    ..rule(
        "search service",
        2,
        60,
        Chars::LowerAlphanumericHyphen,
        "2-60 lowercase letters, digits and hyphens, not starting or ending with a hyphen, no consecutive hyphens",
    )
};
/// Microsoft.CognitiveServices/accounts.
pub const COGNITIVE_ACCOUNT: Rule = Rule {
    first: Edge::Alphanumeric,
    ..rule(
        "Foundry resource",
        2,
        64,
        Chars::AlphanumericHyphenUnderscoreDot,
        "2-64 letters, digits, hyphens, underscores and periods, starting with a letter or digit",
    )
};
/// Microsoft.CognitiveServices/accounts/projects (the account's rule assumed; not documented apart).
pub const FOUNDRY_PROJECT: Rule = Rule { what: "Foundry project", ..COGNITIVE_ACCOUNT };

/// Every rule, for the tests and the docs.
pub const RULES: &[Rule] = &[
    RESOURCE_GROUP,
    DEPLOYMENT_ID,
    AUTOMATION_ACCOUNT,
    RUNBOOK,
    RUNTIME_ENVIRONMENT,
    USER_RUNTIME_ENVIRONMENT,
    KEY_VAULT,
    SECRET,
    STORAGE_ACCOUNT,
    CONTAINER,
    BLOB,
    CONTAINER_REGISTRY,
    SEARCH_INDEX,
    AGENT,
    K8S_NAMESPACE,
    HELM_CHART,
    AKS_CLUSTER,
    POSTGRES_NAME,
    SEARCH_SERVICE,
    COGNITIVE_ACCOUNT,
    FOUNDRY_PROJECT,
];

/// A name that breaks its rule. `Display` is the end of an error line: "is 200 characters; a
/// runbook name is 1-63 letters, ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NameError {
    pub rule: Rule,
    pub name: String,
    pub why: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.name.chars().count();
        let shown: String =
            if len > 40 { self.name.chars().take(40).chain("...".chars()).collect() } else { self.name.clone() };
        let what = self.rule.what;
        if self.why == "length" {
            write!(f, "{shown:?} is {len} characters; a {what} name is {}", self.rule.describe)
        } else {
            write!(f, "{shown:?} is not a valid {what} name ({}): it must be {}", self.why, self.rule.describe)
        }
    }
}

impl Rule {
    /// Checks `name` against the rule.
    pub fn check(&self, name: &str) -> Result<(), NameError> {
        let fail = |why| Err(NameError { rule: *self, name: name.to_owned(), why });
        let len = name.chars().count();
        if len < self.min || len > self.max {
            return fail("length");
        }
        if let Some(c) = name.chars().find(|c| !self.chars.allows(*c)) {
            return fail(if c == '/' { "it contains '/'" } else { "a character is not allowed" });
        }
        if !name.chars().next().is_some_and(|c| self.first.allows(c)) {
            return fail("its first character");
        }
        if !name.chars().last().is_some_and(|c| self.last.allows(c)) {
            return fail("its last character");
        }
        if self.no_double_hyphen && name.contains("--") {
            return fail("consecutive hyphens");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(rule, name, accepted)`: the edges of every rule.
    #[test]
    fn each_rule_accepts_and_refuses_what_azure_does() {
        let long = |n: usize| "a".repeat(n);
        let cases: &[(Rule, &str, bool)] = &[
            (RESOURCE_GROUP, "mrg-vibedata_local(1).x", true),
            (RESOURCE_GROUP, "mrg/providers/x", false),
            (RESOURCE_GROUP, "mrg.", false),
            (RESOURCE_GROUP, &long(90), true),
            (RESOURCE_GROUP, &long(91), false),
            (DEPLOYMENT_ID, "../../x", false),
            (DEPLOYMENT_ID, "..", false),
            (AUTOMATION_ACCOUNT, "aa-vibedata-local", true),
            (AUTOMATION_ACCOUNT, "aa/runbooks/x", false),
            (AUTOMATION_ACCOUNT, "aa-1", false),
            (AUTOMATION_ACCOUNT, "1aaaaa", false),
            (AUTOMATION_ACCOUNT, "aaaaa-", false),
            (RUNBOOK, "Rotate-Keys", true),
            (RUNBOOK, "Purge_Staging", true),
            (RUNBOOK, &long(63), true),
            (RUNBOOK, &long(64), false),
            (RUNBOOK, "1abc", false),
            (RUNBOOK, "a.b", false),
            (RUNTIME_ENVIRONMENT, "PowerShell-7.4", true),
            (USER_RUNTIME_ENVIRONMENT, "PowerShell-7.4", false),
            (USER_RUNTIME_ENVIRONMENT, "PowerShell74", true),
            (KEY_VAULT, "kv-vibedata", true),
            (KEY_VAULT, "kv--vibedata", false),
            (KEY_VAULT, "kv", false),
            (SECRET, "publisher-pull", true),
            (SECRET, "pull_secret", false),
            (STORAGE_ACCOUNT, "stvibedata", true),
            (STORAGE_ACCOUNT, "St-vibedata", false),
            (CONTAINER, "bootstrap-ledger", true),
            (CONTAINER, "Bad_Name", false),
            (CONTAINER, "a--b", false),
            (CONTAINER, "-ab", false),
            (BLOB, &long(1024), true),
            (BLOB, &long(1025), false),
            (CONTAINER_REGISTRY, "vibedatacustomer", true),
            (CONTAINER_REGISTRY, "vibe-data", false),
            (SEARCH_INDEX, "docs-v1", true),
            (SEARCH_INDEX, "-docs", false),
            (SEARCH_INDEX, "Docs", false),
            (SEARCH_INDEX, &long(129), false),
            (AGENT, "support-agent", true),
            (AGENT, &long(64), false),
            (AGENT, "agent_1", false),
        ];
        for (rule, name, ok) in cases {
            assert_eq!(rule.check(name).is_ok(), *ok, "{} {name:?}", rule.what);
        }
    }

    #[test]
    fn the_error_names_the_length_and_the_rule_once() {
        let e = RUNBOOK.check(&"r".repeat(200)).unwrap_err().to_string();
        assert!(e.contains("is 200 characters; a runbook name is 1-63"), "{e}");
        assert!(e.len() < 200, "the name is shortened: {e}");
        let e = RESOURCE_GROUP.check("mrg/providers/x").unwrap_err().to_string();
        assert_eq!(e, "\"mrg/providers/x\" is not a valid resource group name (it contains '/'): it must be 1-90 letters, digits, underscores, hyphens, periods and parentheses, not ending with a period");
    }

    #[test]
    fn every_rule_is_listed_once() {
        for r in RULES {
            assert!(r.min >= 1 && r.min <= r.max, "{}", r.what);
            assert_eq!(RULES.iter().filter(|x| x.what == r.what).count(), 1, "{}", r.what);
        }
    }
}
