//! The emulator's HTTPS listeners as data: one row per listener (journal name, port offset from
//! `listen.base`, the token audiences its service accepts, which router serves it).
//!
//! A new data-plane service (AI Search, a Foundry project endpoint) is one row here plus its
//! routes: `scripts/stack` asks the binary for the ports (`--listeners`), the config needs no new
//! key (`listen.base` places it), and the service's handlers check tokens against the row's
//! `audiences`. Every `Services` listener serves every route of the main router; the ports
//! differ so that the runtime's "a token goes only to the host it was issued for" is exercised.

use std::collections::BTreeMap;

/// Which router answers a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The main router: every emulated service and the control API.
    Services,
    /// The apps listener's own router and SNI-aware certificate resolver (`apps.rs`).
    Apps,
    /// The publisher registry's front with the referrers API (`referrers.rs`).
    Registry,
    /// Azurite's Blob service behind the grant table (`storage_front.rs`).
    Storage,
}

#[derive(Debug)]
pub struct Listener {
    /// The `listen` key in `emulator.json` and the journal's `listener`.
    pub name: &'static str,
    /// Its port is `listen.base + offset` unless `listen.<name>` gives one (docs/local-stack.md
    /// fixes the offsets: P+4..P+10 belong to the stack's other components; P+12 and P+13 are
    /// Search and Foundry, P+14 the publisher registry's referrers front, P+15 the storage
    /// front).
    pub offset: u16,
    /// The `aud` values the service behind this listener accepts (none: it checks no AAD token).
    pub audiences: &'static [&'static str],
    /// Required listeners must get a port (from `base` or their own key); the others are bound
    /// only when they do.
    pub required: bool,
    pub served: Served,
}

/// ARM accepts tokens for either management audience (with or without a trailing slash).
pub const ARM: Listener = Listener {
    name: "arm",
    offset: 0,
    audiences: &["https://management.azure.com", "https://management.core.windows.net"],
    required: true,
    served: Served::Services,
};
pub const VAULT: Listener = Listener {
    name: "vault",
    offset: 1,
    audiences: &["https://vault.azure.net"],
    required: true,
    served: Served::Services,
};
/// The managed-identity endpoint issues tokens; it checks none.
pub const IDENTITY: Listener =
    Listener { name: "identity", offset: 2, audiences: &[], required: true, served: Served::Services };
/// The ACR exchange takes an ARM token (what the ACR docs use) or one for the ACR audience
/// (what the Azure SDKs request).
pub const ACR_AUTH: Listener = Listener {
    name: "acrAuth",
    offset: 3,
    audiences: &[
        "https://management.azure.com",
        "https://management.core.windows.net",
        "https://containerregistry.azure.net",
    ],
    required: true,
    served: Served::Services,
};
/// The health endpoints of the components the stack does not run.
pub const APPS: Listener = Listener { name: "apps", offset: 11, audiences: &[], required: false, served: Served::Apps };

/// The AI Search data plane (`search/`): the admin `api-key`, or tokens for Search's audience.
pub const SEARCH: Listener = Listener {
    name: "search",
    offset: 12,
    audiences: &["https://search.azure.com"],
    required: false,
    served: Served::Services,
};
/// The Foundry project endpoint (`foundry/`): tokens for `https://ai.azure.com` only.
pub const FOUNDRY: Listener = Listener {
    name: "foundry",
    offset: 13,
    audiences: &["https://ai.azure.com"],
    required: false,
    served: Served::Services,
};

/// The publisher registry behind a front that serves the OCI referrers API (`referrers.rs`):
/// a registry, its clients authenticate with the publisher's basic credentials.
pub const PUBLISHER_REFERRERS: Listener =
    Listener { name: "publisherReferrers", offset: 14, audiences: &[], required: false, served: Served::Registry };

/// Azurite's Blob service behind the grant table (`storage_front.rs`): Azurite checks the token.
pub const STORAGE_FRONT: Listener =
    Listener { name: "storageFront", offset: 15, audiences: &[], required: false, served: Served::Storage };

pub const LISTENERS: &[&Listener] =
    &[&ARM, &VAULT, &IDENTITY, &ACR_AUTH, &APPS, &SEARCH, &FOUNDRY, &PUBLISHER_REFERRERS, &STORAGE_FRONT];

/// `emulator.json` → `listen`: `{"base": P}` (each listener at `P + offset`), explicit ports by
/// name (`{"arm": 18400, ...}`, the older form), or both (a name overrides `base`).
#[derive(Debug, Clone)]
pub struct Listen {
    ports: Vec<(&'static Listener, u16)>,
}

impl Listen {
    pub fn resolve(raw: &BTreeMap<String, u16>) -> Result<Listen, String> {
        let known = || LISTENERS.iter().map(|l| l.name).collect::<Vec<_>>().join(", ");
        if let Some(unknown) = raw.keys().find(|k| *k != "base" && !LISTENERS.iter().any(|l| l.name == k.as_str())) {
            return Err(format!("listen.{unknown}: no such listener (known: base, {})", known()));
        }
        let base = raw.get("base").copied();
        let mut ports = Vec::new();
        for l in LISTENERS {
            let port = match (raw.get(l.name), base) {
                (Some(p), _) => Some(*p),
                (None, Some(b)) => Some(
                    b.checked_add(l.offset).ok_or_else(|| format!("listen.base {b} + {} is not a port", l.offset))?,
                ),
                (None, None) if l.required => {
                    return Err(format!("listen.{} is missing: give its port, or listen.base", l.name))
                }
                (None, None) => None,
            };
            if let Some(port) = port {
                ports.push((*l, port));
            }
        }
        Ok(Listen { ports })
    }

    /// The listeners to bind, with their ports, in table order.
    pub fn bound(&self) -> &[(&'static Listener, u16)] {
        &self.ports
    }

    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.iter().find(|(l, _)| l.name == name).map(|(_, p)| *p)
    }
}

impl<'de> serde::Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Listen, D::Error> {
        let raw = BTreeMap::<String, u16>::deserialize(d)?;
        Listen::resolve(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(json: &str) -> Result<Listen, String> {
        Listen::resolve(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn base_places_every_listener_and_names_override_it() {
        let l = listen(r#"{"base": 19400, "vault": 20000}"#).unwrap();
        let ports: Vec<(&str, u16)> = l.bound().iter().map(|(l, p)| (l.name, *p)).collect();
        assert_eq!(
            ports,
            [
                ("arm", 19400),
                ("vault", 20000),
                ("identity", 19402),
                ("acrAuth", 19403),
                ("apps", 19411),
                ("search", 19412),
                ("foundry", 19413),
                ("publisherReferrers", 19414),
                ("storageFront", 19415)
            ]
        );
    }

    #[test]
    fn the_explicit_form_still_works_and_optional_listeners_stay_unbound() {
        let l = listen(r#"{"arm": 1, "vault": 2, "identity": 3, "acrAuth": 4}"#).unwrap();
        assert_eq!(l.bound().len(), 4);
        assert_eq!(l.port("apps"), None);
        assert_eq!(l.port("acrAuth"), Some(4));
    }

    #[test]
    fn bad_listen_sections_name_the_key() {
        assert_eq!(
            listen(r#"{"arm": 1, "vault": 2, "identity": 3}"#).unwrap_err(),
            "listen.acrAuth is missing: give its port, or listen.base"
        );
        assert!(listen(r#"{"base": 1, "searchx": 5}"#).unwrap_err().starts_with("listen.searchx: no such listener"));
        assert!(listen(r#"{"base": 65530}"#).unwrap_err().contains("is not a port"));
    }
}
