//! Everything the handlers share. Each part locks itself; no lock is held across an `.await`.

use std::sync::Arc;

use crate::config::Config;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::tokens::Signer;
use crate::{arm, identity, keyvault};

pub struct AppState {
    pub config: Config,
    pub signer: Signer,
    pub journal: Journal,
    pub faults: Faults,
    /// What the stack identity is granted (`grants.rs`).
    pub grants: crate::grants::Grants,
    pub identity: identity::IdentityState,
    pub vault: keyvault::Vault,
    pub arm: arm::ArmState,
    pub imports: arm::import::ImportState,
    pub automation: arm::automation::AutomationState,
    pub aks: arm::aks::AksState,
    /// The health endpoints of the components the stack does not run (`apps.rs`).
    pub apps: Arc<crate::apps::AppsState>,
    /// AI Search indexes and the Foundry project's agents and index assets.
    pub search: crate::search::SearchState,
    pub foundry: crate::foundry::FoundryState,
    /// The referrers front's knobs (`referrers.rs`).
    pub referrers: crate::referrers::ReferrersState,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(config: Config, signer: Signer, grants: crate::grants::Grants) -> AppState {
        AppState {
            identity: identity::IdentityState::default(),
            vault: keyvault::Vault::seeded(&config.secrets),
            arm: arm::ArmState::new(&config),
            imports: arm::import::ImportState::new(&config),
            automation: arm::automation::AutomationState::new(&config),
            aks: arm::aks::AksState::new(&config),
            apps: crate::apps::AppsState::new(&config),
            search: crate::search::SearchState::default(),
            foundry: crate::foundry::FoundryState::new(&config),
            referrers: crate::referrers::ReferrersState::default(),
            journal: Journal::default(),
            faults: Faults::default(),
            grants,
            signer,
            config,
        }
    }
}
