//! The request journal: one entry per request to an emulated service (never for `/_emulator`),
//! so tests can assert what a run did, e.g. "the second run sent no mutating call".

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339, when the request arrived.
    pub time: String,
    /// Which listener took it (a name of `crate::listeners::LISTENERS`).
    pub listener: &'static str,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The api name faults are armed with (`keyvault`, `arm.deployments`, ...).
    pub api: &'static str,
    /// Whether the call would change platform state (the provider table's `effect`), whatever
    /// its answer: a refused or faulted PUT is still a mutating call.
    pub mutating: bool,
    /// `null` when the connection was reset without a response.
    pub status: Option<u16>,
    /// What a handler adds about the call (AKS runCommand: the command, its zip members with
    /// their SHA-256, the caller); absent for every other call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// A handler's word on its own journal entry, carried in the response's extensions: a call the
/// provider table marks as mutating that only reads (a runCommand of `helm status`), and detail.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub mutating: Option<bool>,
    pub detail: Option<Value>,
}

#[derive(Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    entries: Vec<Entry>,
}

impl Journal {
    /// Appends an entry; `seq` keeps counting across `clear` so entries are never confused.
    pub fn record(&self, mut entry: Entry) {
        let mut inner = self.inner.lock().unwrap();
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        inner.entries.push(entry);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.inner.lock().unwrap().entries.clone()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().entries.clear();
    }
}
