//! Checks of single values, each recording a problem instead of failing, so validation can
//! report everything at once.

use url::Url;

use super::keys::KEYS;
use super::source::{Problem, Source};
use crate::names::{self, Rule};

/// Collects every problem of a configuration while it is read; phases read their own section
/// through it (`Phase::configure`).
pub struct Validator<'a> {
    pub(super) source: &'a Source,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    pub fn new(source: &'a Source) -> Validator<'a> {
        Validator { source, problems: Vec::new() }
    }

    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.source.get(name).map(str::trim).filter(|s| !s.is_empty())
    }

    pub fn or_default(&self, name: &str) -> String {
        self.raw(name)
            .map(str::to_owned)
            .or_else(|| KEYS.iter().find(|k| k.name == name).and_then(|k| k.default).map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn problem(&mut self, key: &str, message: String) {
        // Sections shared by several phases (the database's) are read once per phase.
        if !self.problems.iter().any(|p| p.key == key && p.message == message) {
            self.problems.push(Problem { key: key.to_owned(), message });
        }
    }

    pub fn url(&mut self, name: &str) -> Option<Url> {
        let given = self.raw(name)?.to_owned();
        // Azurite and the blob crate need account URLs without a trailing slash; the value is
        // echoed as given.
        let raw = given.trim_end_matches('/').to_owned();
        match Url::parse(&raw) {
            Ok(u) if u.scheme() == "https" => Some(u),
            Ok(_) => {
                self.problem(name, format!("is {given:?}; only https endpoints are allowed"));
                None
            }
            Err(e) => {
                self.problem(name, format!("is {given:?}, not a URL: {e}"));
                None
            }
        }
    }

    /// The value of `key`, checked against the naming rule of what it names; `None` (and a
    /// problem) when it breaks the rule.
    pub fn named(&mut self, key: &str, rule: &Rule) -> Option<String> {
        let n = self.raw(key)?.to_owned();
        match rule.check(&n) {
            Ok(()) => Some(n),
            Err(e) => {
                self.problem(key, e.to_string());
                None
            }
        }
    }

    /// Like [`Validator::named`], for a key with a default.
    pub fn named_or_default(&mut self, key: &str, rule: &Rule) -> String {
        let n = self.or_default(key);
        if let Err(e) = rule.check(&n) {
            self.problem(key, e.to_string());
        }
        n
    }

    pub fn uuid(&mut self, key: &str, value: &str) {
        if uuid::Uuid::parse_str(value).is_err() {
            self.problem(key, format!("is {value:?}, not a GUID"));
        }
    }

    pub fn boolean(&mut self, key: &str) -> bool {
        match self.or_default(key).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                self.problem(key, format!("is {other:?}; expected true or false"));
                true
            }
        }
    }

    pub fn number(&mut self, key: &str, min: u64, max: u64) -> u64 {
        let raw = self.or_default(key);
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(key, format!("is {raw:?}; expected a whole number from {min} to {max}"));
                min
            }
        }
    }

    pub fn container(&mut self, key: &str) -> String {
        self.named_or_default(key, &names::CONTAINER)
    }
}
