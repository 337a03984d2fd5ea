//! The pure plan of the Runbook Bootstrap: from the release's runbooks and what the Automation
//! Account holds now, what to do with each runbook and runtime environment. No I/O, so every
//! decision is unit-tested here.

use std::collections::BTreeMap;

use crate::azure::automation::Runtime;
use crate::config::RuntimeEnvironment;

/// A runbook as the release wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired<'a> {
    pub name: &'a str,
    pub runbook_type: &'a str,
    pub runtime_environment: &'a str,
    /// `sha256:<hex>` of the script.
    pub digest: &'a str,
}

/// A runbook as the account has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Current {
    pub runbook_type: Option<String>,
    pub runtime_environment: Option<String>,
    pub state: String,
    /// `sha256:<hex>` of the published content, when something is published.
    pub published_digest: Option<String>,
}

/// The calls that change a runbook, as the plan and the outputs name them.
pub const PUT_RUNBOOK: &str = "put draft runbook";
pub const PUT_CONTENT: &str = "put draft content";
pub const PUBLISH: &str = "publish";

/// What to do with one runbook. The calls each makes are in [`Action::calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Absent: create the draft, put the content, publish.
    Create,
    /// Present with another type or runtime environment: re-create the draft with ours, put the
    /// content, publish.
    Reconfigure,
    /// Published with other content: put the content, publish.
    Update,
    /// Present but not published (`New`/`Edit`, e.g. a run killed between draft and publish):
    /// put the content, publish.
    Resume,
    /// Published with our content, type and runtime environment.
    Skip,
}

impl Action {
    /// Whether the runbook resource is PUT with `draft: {}`. Only when it must be: on a published
    /// runbook that PUT would drop the live version until the publish, where a draft-content PUT
    /// leaves it running.
    pub fn puts_runbook(self) -> bool {
        matches!(self, Action::Create | Action::Reconfigure)
    }

    /// The mutating calls the action makes, in order: what it adds to `changes`.
    pub fn calls(self) -> &'static [&'static str] {
        match self {
            Action::Create | Action::Reconfigure => &[PUT_RUNBOOK, PUT_CONTENT, PUBLISH],
            Action::Update | Action::Resume => &[PUT_CONTENT, PUBLISH],
            Action::Skip => &[],
        }
    }

    /// For a dry run's outputs and logs: what a real run would do.
    pub fn planned(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Reconfigure => "reconfigure",
            Action::Update => "update",
            Action::Resume => "resume",
            Action::Skip => "skip",
        }
    }

    /// For outputs and logs, in the past tense of a finished run.
    pub fn done(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Reconfigure => "reconfigured",
            Action::Update => "updated",
            Action::Resume => "resumed",
            Action::Skip => "unchanged",
        }
    }
}

pub fn decide(want: &Desired<'_>, current: Option<&Current>) -> Action {
    let Some(c) = current else { return Action::Create };
    let same = |have: &Option<String>, want: &str| have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(want));
    if !same(&c.runbook_type, want.runbook_type) || !same(&c.runtime_environment, want.runtime_environment) {
        Action::Reconfigure
    } else if !c.state.eq_ignore_ascii_case("Published") {
        Action::Resume
    } else if c.published_digest.as_deref() == Some(want.digest) {
        Action::Skip
    } else {
        Action::Update
    }
}

/// A configured runtime environment and whether it must be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPlan {
    pub name: String,
    pub runtime: Runtime,
    pub create: bool,
}

/// Why the runtime environments stop the run before anything is published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A configured environment exists with another language or version; both are immutable, so
    /// it cannot be made to match.
    #[error("runtime environment {name} exists as {existing_language} {existing_version}; the configuration asks for {language} {version}, and a runtime environment's language and version cannot change")]
    Conflict { name: String, existing_language: String, existing_version: String, language: String, version: String },

    /// A runbook names an environment that neither exists nor is configured to be created.
    #[error("runbook {runbook} names runtime environment {environment}, which the Automation Account does not have and VIBEDATA_RUNTIME_ENVIRONMENTS does not create")]
    Missing { runbook: String, environment: String },

    /// A runbook's type is not the language of the environment it names.
    #[error("runbook {runbook} is {runbook_type} but its runtime environment {environment} runs {language}")]
    WrongLanguage { runbook: String, runbook_type: String, environment: String, language: String },
}

/// Plans the configured environments against `existing` (keyed by lower-case name) and checks
/// that every runbook's environment will exist with the runbook's language.
pub fn plan_environments(
    configured: &[RuntimeEnvironment],
    existing: &BTreeMap<String, Runtime>,
    runbooks: &[Desired<'_>],
) -> Result<Vec<EnvPlan>, EnvError> {
    let mut plans = Vec::new();
    for c in configured {
        let runtime = Runtime { language: c.language.clone(), version: c.version.clone() };
        match existing.get(&c.name.to_ascii_lowercase()) {
            Some(e) if !(e.language.eq_ignore_ascii_case(&runtime.language) && e.version == runtime.version) => {
                return Err(EnvError::Conflict {
                    name: c.name.clone(),
                    existing_language: e.language.clone(),
                    existing_version: e.version.clone(),
                    language: runtime.language,
                    version: runtime.version,
                })
            }
            found => plans.push(EnvPlan { name: c.name.clone(), runtime, create: found.is_none() }),
        }
    }
    for rb in runbooks {
        let key = rb.runtime_environment.to_ascii_lowercase();
        let runtime = existing
            .get(&key)
            .or_else(|| plans.iter().find(|p| p.name.to_ascii_lowercase() == key).map(|p| &p.runtime));
        let Some(runtime) = runtime else {
            return Err(EnvError::Missing { runbook: rb.name.into(), environment: rb.runtime_environment.into() });
        };
        if !runtime.language.eq_ignore_ascii_case(rb.runbook_type) {
            return Err(EnvError::WrongLanguage {
                runbook: rb.name.into(),
                runbook_type: rb.runbook_type.into(),
                environment: rb.runtime_environment.into(),
                language: runtime.language.clone(),
            });
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aa";

    fn want() -> Desired<'static> {
        Desired { name: "Rotate-Keys", runbook_type: "PowerShell", runtime_environment: "PowerShell-7.4", digest: D }
    }

    fn have(state: &str, digest: Option<&str>) -> Current {
        Current {
            runbook_type: Some("PowerShell".into()),
            runtime_environment: Some("PowerShell-7.4".into()),
            state: state.into(),
            published_digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn each_runbook_action_follows_the_account_state() {
        assert_eq!(decide(&want(), None), Action::Create);
        assert_eq!(decide(&want(), Some(&have("Published", Some(D)))), Action::Skip);
        assert_eq!(decide(&want(), Some(&have("Published", Some("sha256:bb")))), Action::Update);
        assert_eq!(decide(&want(), Some(&have("New", None))), Action::Resume);
        assert_eq!(
            decide(&want(), Some(&have("Edit", Some(D)))),
            Action::Resume,
            "a pending draft is published even over equal content"
        );
        let other_env = Current { runtime_environment: Some("PowerShell-7.2".into()), ..have("Published", Some(D)) };
        assert_eq!(decide(&want(), Some(&other_env)), Action::Reconfigure);
        let other_type = Current { runbook_type: Some("Python".into()), ..have("Published", Some(D)) };
        assert_eq!(decide(&want(), Some(&other_type)), Action::Reconfigure);
        let case = Current { runbook_type: Some("powershell".into()), ..have("published", Some(D)) };
        assert_eq!(decide(&want(), Some(&case)), Action::Skip, "Azure compares names and enums case-insensitively");
    }

    #[test]
    fn only_create_and_reconfigure_rewrite_the_runbook() {
        let calls: Vec<_> = [Action::Create, Action::Reconfigure, Action::Update, Action::Resume, Action::Skip]
            .iter()
            .map(|a| (a.puts_runbook(), a.calls().len()))
            .collect();
        assert_eq!(calls, [(true, 3), (true, 3), (false, 2), (false, 2), (false, 0)]);
    }

    fn env(name: &str, language: &str, version: &str) -> RuntimeEnvironment {
        RuntimeEnvironment { name: name.into(), language: language.into(), version: version.into() }
    }

    fn rt(language: &str, version: &str) -> Runtime {
        Runtime { language: language.into(), version: version.into() }
    }

    #[test]
    fn configured_environments_are_created_when_missing_and_checked_when_present() {
        let existing = BTreeMap::from([("powershell-7.4".to_owned(), rt("PowerShell", "7.4"))]);
        let configured = [env("PowerShell-7.4", "PowerShell", "7.4"), env("Python-3-10", "Python", "3.10")];
        let py =
            Desired { name: "Purge_Staging", runbook_type: "Python", runtime_environment: "Python-3-10", digest: D };
        let plans = plan_environments(&configured, &existing, &[want(), py]).unwrap();
        assert_eq!(
            plans.iter().map(|p| (p.name.as_str(), p.create)).collect::<Vec<_>>(),
            [("PowerShell-7.4", false), ("Python-3-10", true)]
        );

        let conflict = plan_environments(&[env("PowerShell-7.4", "PowerShell", "7.2")], &existing, &[]).unwrap_err();
        assert!(matches!(conflict, EnvError::Conflict { .. }), "{conflict}");
    }

    #[test]
    fn a_runbook_environment_must_exist_or_be_configured_and_speak_its_language() {
        let none = BTreeMap::new();
        assert!(matches!(plan_environments(&[], &none, &[want()]), Err(EnvError::Missing { .. })));
        let python = BTreeMap::from([("powershell-7.4".to_owned(), rt("Python", "3.10"))]);
        let err = plan_environments(&[], &python, &[want()]).unwrap_err();
        assert!(err.to_string().contains("runs Python"), "{err}");
        let configured = [env("PowerShell-7.4", "PowerShell", "7.4")];
        assert!(plan_environments(&configured, &none, &[want()]).is_ok(), "created by this run");
    }
}
