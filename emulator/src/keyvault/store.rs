//! The vault's secrets in memory: versions, soft delete, recover, purge.
//!
//! Key Vault object names are case-insensitive, so entries are keyed by the lowercased name and
//! keep the name as first written. Deletion is immediate (the real service may take a moment;
//! clients already poll for it, so that difference is harmless).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tokens::now;

/// Soft-delete retention: the real default, and what `recoverableDays` reports.
pub const RECOVERABLE_DAYS: i64 = 90;

#[derive(Clone, Serialize, Deserialize)]
pub struct Version {
    /// 32 lowercase hex digits, as Key Vault's version ids.
    pub id: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: Option<Value>,
    pub enabled: bool,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    /// Oldest first; the last one is the current version.
    pub versions: Vec<Version>,
}

impl Secret {
    pub fn latest(&self) -> &Version {
        self.versions.last().expect("a secret always has a version")
    }

    pub fn version(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id.eq_ignore_ascii_case(id))
    }
}

#[derive(Clone)]
pub struct Deleted {
    pub secret: Secret,
    pub deleted_date: i64,
    pub scheduled_purge_date: i64,
}

/// What `SecretSetParameters` carries.
pub struct SetParams {
    pub value: String,
    pub content_type: Option<String>,
    pub tags: Option<Value>,
    pub enabled: Option<bool>,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
}

#[derive(Default)]
pub struct Store {
    pub live: BTreeMap<String, Secret>,
    pub deleted: BTreeMap<String, Deleted>,
}

pub enum SetError {
    /// The name is soft-deleted: 409 `ObjectIsDeletedButRecoverable`.
    DeletedButRecoverable,
}

pub enum RestoreError {
    /// A live secret has the name: 409 `Conflict`.
    Exists,
    /// The name is soft-deleted: 409 `ObjectIsDeletedButRecoverable`.
    DeletedButRecoverable,
}

impl Store {
    /// Adds a version (creating the secret if needed); refused while the name is soft-deleted.
    pub fn set(&mut self, name: &str, p: SetParams) -> Result<(Secret, Version), SetError> {
        let key = name.to_ascii_lowercase();
        if self.deleted.contains_key(&key) {
            return Err(SetError::DeletedButRecoverable);
        }
        let now = now();
        let version = Version {
            id: uuid::Uuid::new_v4().simple().to_string(),
            value: p.value,
            content_type: p.content_type,
            tags: p.tags,
            enabled: p.enabled.unwrap_or(true),
            nbf: p.nbf,
            exp: p.exp,
            created: now,
            updated: now,
        };
        let secret = self.live.entry(key).or_insert_with(|| Secret { name: name.to_owned(), versions: Vec::new() });
        secret.versions.push(version.clone());
        Ok((secret.clone(), version))
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.live.get(&name.to_ascii_lowercase())
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Secret> {
        self.live.get_mut(&name.to_ascii_lowercase())
    }

    pub fn delete(&mut self, name: &str) -> Option<Deleted> {
        let key = name.to_ascii_lowercase();
        let secret = self.live.remove(&key)?;
        let now = now();
        let deleted = Deleted { secret, deleted_date: now, scheduled_purge_date: now + RECOVERABLE_DAYS * 86_400 };
        self.deleted.insert(key, deleted.clone());
        Some(deleted)
    }

    pub fn deleted(&self, name: &str) -> Option<&Deleted> {
        self.deleted.get(&name.to_ascii_lowercase())
    }

    pub fn recover(&mut self, name: &str) -> Option<Secret> {
        let key = name.to_ascii_lowercase();
        let deleted = self.deleted.remove(&key)?;
        self.live.insert(key, deleted.secret.clone());
        Some(deleted.secret)
    }

    /// Puts a backed-up secret back with all its versions (ids kept, as Key Vault does), only
    /// where the name is free.
    pub fn restore(&mut self, secret: Secret) -> Result<Secret, RestoreError> {
        let key = secret.name.to_ascii_lowercase();
        if self.deleted.contains_key(&key) {
            return Err(RestoreError::DeletedButRecoverable);
        }
        if self.live.contains_key(&key) {
            return Err(RestoreError::Exists);
        }
        self.live.insert(key, secret.clone());
        Ok(secret)
    }

    pub fn purge(&mut self, name: &str) -> bool {
        self.deleted.remove(&name.to_ascii_lowercase()).is_some()
    }
}

/// The vault: a [`Store`] behind a lock.
pub struct Vault {
    store: Mutex<Store>,
}

impl Vault {
    /// A vault holding the config's `secrets`, each with one version.
    pub fn seeded(secrets: &BTreeMap<String, String>) -> Vault {
        let mut store = Store::default();
        for (name, value) in secrets {
            let params =
                SetParams { value: value.clone(), content_type: None, tags: None, enabled: None, nbf: None, exp: None };
            // A fresh store has no deleted names, so this cannot fail.
            let _ = store.set(name, params);
        }
        Vault { store: Mutex::new(store) }
    }

    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }
}
