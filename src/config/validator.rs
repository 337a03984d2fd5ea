//! Checks of single values, each recording a problem instead of failing, so validation can
//! report everything at once.

use url::Url;

use super::keys::KEYS;
use super::source::{Problem, Source};

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
        let raw = self.raw(name)?.trim_end_matches('/').to_owned();
        match Url::parse(&raw) {
            Ok(u) if u.scheme() == "https" => Some(u),
            Ok(_) => {
                self.problem(name, format!("is {raw:?}; only https endpoints are allowed"));
                None
            }
            Err(e) => {
                self.problem(name, format!("is {raw:?}, not a URL: {e}"));
                None
            }
        }
    }

    pub fn name(&mut self, key: &str, min: usize, max: usize, ok: impl Fn(char) -> bool) -> Option<String> {
        let n = self.raw(key)?.to_owned();
        if n.len() < min || n.len() > max || !n.chars().all(ok) {
            self.problem(key, format!("is {n:?}, not a valid name ({min}-{max} characters)"));
            return None;
        }
        Some(n)
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
        let c = self.or_default(key);
        let valid = (3..=63).contains(&c.len())
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            && !c.starts_with('-')
            && !c.contains("--");
        if !valid {
            self.problem(key, format!("is {c:?}, not a valid blob container name"));
        }
        c
    }
}
