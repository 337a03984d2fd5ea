//! The RFC-60 deployment sequence as data.
//!
//! This table is the only place that knows the order of the fifteen phases. `plan`, `run all`,
//! `plan --json` (which `infra/` and the tests read) and the configuration's per-phase
//! requirements all derive from it, so reordering or adding a phase is a one-line change here.

use serde::Serialize;

/// How a phase is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Bicep alone lays it down.
    Declarative,
    /// Nothing in the phase is Bicep; this binary does it.
    Imperative,
    /// Bicep provisions, then this binary runs a step that Bicep cannot express.
    Mixed,
}

/// The imperative steps this binary owns. Each maps to `run <id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    Artifacts,
    Runbooks,
    Database,
    Airbyte,
    Ai,
    Registry,
    Health,
}

impl Step {
    pub fn id(self) -> &'static str {
        match self {
            Step::Artifacts => "artifacts",
            Step::Runbooks => "runbooks",
            Step::Database => "database",
            Step::Airbyte => "airbyte",
            Step::Ai => "ai",
            Step::Registry => "registry",
            Step::Health => "health",
        }
    }

    pub fn parse(id: &str) -> Option<Step> {
        SEQUENCE.iter().filter_map(|p| p.step).find(|s| s.id() == id)
    }

    /// The RFC-60 phase this step belongs to.
    pub fn phase(self) -> &'static Phase {
        SEQUENCE.iter().find(|p| p.step == Some(self)).expect("every step appears in SEQUENCE")
    }
}

/// One row of the RFC-60 table.
#[derive(Debug)]
pub struct Phase {
    pub order: u8,
    pub id: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// What Bicep does and what this binary does, in a sentence.
    pub summary: &'static str,
    pub step: Option<Step>,
}

impl Phase {
    pub fn command(&self) -> Option<String> {
        self.step.map(|s| format!("run {}", s.id()))
    }
}

/// RFC-60, in order.
pub static SEQUENCE: [Phase; 15] = [
    Phase { order: 1, id: "prereqs-identity", name: "Prereqs and Identity", kind: Kind::Declarative,
        summary: "create vibedata-UAMI and its Day-2 baseline RBAC", step: None },
    Phase { order: 2, id: "observability", name: "Observability Foundation", kind: Kind::Declarative,
        summary: "Log Analytics workspace; diagnostic settings from here on", step: None },
    Phase { order: 3, id: "network", name: "Network Foundation", kind: Kind::Declarative,
        summary: "VNet, subnets and NSG rules", step: None },
    Phase { order: 4, id: "dns", name: "DNS Infrastructure", kind: Kind::Declarative,
        summary: "private DNS zones linked to the VNet", step: None },
    Phase { order: 5, id: "core-security", name: "Core Security", kind: Kind::Declarative,
        summary: "Key Vault (private, soft delete, purge protection) and UAMI RBAC", step: None },
    Phase { order: 6, id: "foundation-paas", name: "Foundation PaaS Services", kind: Kind::Declarative,
        summary: "storage (blob, queue, table), Automation Account, UAMI RBAC", step: None },
    Phase { order: 7, id: "artifacts", name: "Artifact Bootstrap", kind: Kind::Imperative,
        summary: "import the release manifest and every image/artifact it pins into the customer ACR; store them in artifact storage",
        step: Some(Step::Artifacts) },
    Phase { order: 8, id: "runbooks", name: "Runbook Bootstrap", kind: Kind::Imperative,
        summary: "extract runbook artifacts from artifact storage, publish them to Automation, validate",
        step: Some(Step::Runbooks) },
    Phase { order: 9, id: "database", name: "DB Deployment", kind: Kind::Mixed,
        summary: "Bicep: Postgres and its RBAC; here: release and registry schema migrations",
        step: Some(Step::Database) },
    Phase { order: 10, id: "apps", name: "App Deployment", kind: Kind::Declarative,
        summary: "App Service plan, apps and Functions", step: None },
    Phase { order: 11, id: "airbyte", name: "Airbyte Deployment", kind: Kind::Mixed,
        summary: "Bicep: AKS; here: deploy Airbyte to AKS", step: Some(Step::Airbyte) },
    Phase { order: 12, id: "app-gateway", name: "App GW Deployment", kind: Kind::Declarative,
        summary: "Application Gateway, WAF and backend pools", step: None },
    Phase { order: 13, id: "ai", name: "AI Deployment", kind: Kind::Mixed,
        summary: "Bicep: AI Foundry and AI Search; here: hubs, projects, indexes and agents",
        step: Some(Step::Ai) },
    Phase { order: 14, id: "registry", name: "Registry Bootstrap", kind: Kind::Imperative,
        summary: "discover deployed resources through ARM; write endpoints and references to the platform registry",
        step: Some(Step::Registry) },
    Phase { order: 15, id: "health", name: "Health Bootstrap", kind: Kind::Imperative,
        summary: "run the health checks and record per-check results and the overall status",
        step: Some(Step::Health) },
];

/// Every imperative step, in RFC-60 order.
pub fn steps() -> impl Iterator<Item = Step> {
    SEQUENCE.iter().filter_map(|p| p.step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_phases_in_order_with_unique_ids() {
        assert_eq!(SEQUENCE.len(), 15);
        for (i, p) in SEQUENCE.iter().enumerate() {
            assert_eq!(p.order as usize, i + 1, "{} out of order", p.id);
        }
        let mut ids: Vec<_> = SEQUENCE.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 15);
    }

    #[test]
    fn imperative_commands_are_the_design_ids() {
        let ids: Vec<_> = steps().map(Step::id).collect();
        assert_eq!(ids, ["artifacts", "runbooks", "database", "airbyte", "ai", "registry", "health"]);
        for s in steps() {
            assert_eq!(Step::parse(s.id()), Some(s));
            assert_eq!(s.phase().step, Some(s));
        }
        assert_eq!(Step::parse("preflight"), None);
    }

    #[test]
    fn declarative_phases_have_no_command() {
        for p in &SEQUENCE {
            assert_eq!(p.kind == Kind::Declarative, p.command().is_none(), "{}", p.id);
        }
    }

    #[test]
    fn artifacts_precede_runbooks_and_database_and_health_is_last() {
        let pos = |s: Step| s.phase().order;
        assert!(pos(Step::Artifacts) < pos(Step::Runbooks));
        assert!(pos(Step::Runbooks) < pos(Step::Database));
        assert!(pos(Step::Registry) < pos(Step::Health));
        assert_eq!(SEQUENCE.last().unwrap().step, Some(Step::Health));
    }
}
