//! Names in the OCI distribution grammar, checked before they reach a URL.

/// A repository path: lowercase components of `[a-z0-9]+([._-][a-z0-9]+)*` joined by `/`.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A sha256 digest: `sha256:` and 64 lowercase hex digits.
pub fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

/// What a reference points at: a tag (resolved once, then pinned) or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(String),
}

impl Target {
    /// The path segment of `/v2/<repo>/manifests/<this>`.
    pub fn as_str(&self) -> &str {
        match self {
            Target::Tag(t) | Target::Digest(t) => t,
        }
    }

    /// Parses a tag or a `sha256:` digest.
    pub fn parse(s: &str) -> Option<Target> {
        if s.contains(':') {
            valid_digest(s).then(|| Target::Digest(s.to_owned()))
        } else {
            valid_tag(s).then(|| Target::Tag(s.to_owned()))
        }
    }
}

/// `host[:port]/repository[:tag|@sha256:...]`, as the `copy` command takes them. The registry is
/// always explicit: there is no default registry to fall back to, so a typo cannot send
/// credentials to Docker Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The login server, `host[:port]`.
    pub registry: String,
    pub repository: String,
    /// `None` when neither a tag nor a digest was given.
    pub target: Option<Target>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let (registry, rest) = s.split_once('/').ok_or("expected host[:port]/repository[:tag|@digest]")?;
        // As docker reads references: a first component without a dot or a port is a path
        // component, not a host ("vibedata/api" names no registry, and is refused).
        if !valid_registry(registry) || !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(format!("{registry:?} is not a registry host[:port]"));
        }
        let (repository, target) = if let Some((repo, digest)) = rest.split_once('@') {
            if !valid_digest(digest) {
                return Err(format!("{digest:?} is not a sha256 digest"));
            }
            (repo, Some(Target::Digest(digest.to_owned())))
        } else {
            match rest.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => {
                    if !valid_tag(tag) {
                        return Err(format!("{tag:?} is not a tag"));
                    }
                    (repo, Some(Target::Tag(tag.to_owned())))
                }
                _ => (rest, None),
            }
        };
        if !valid_repository(repository) {
            return Err(format!("{repository:?} is not a repository name"));
        }
        Ok(ImageRef { registry: registry.to_owned(), repository: repository.to_owned(), target })
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.target {
            Some(Target::Tag(t)) => write!(f, ":{t}"),
            Some(Target::Digest(d)) => write!(f, "@{d}"),
            None => Ok(()),
        }
    }
}

/// A login server: a DNS name or IPv4 address, optionally `:port`. No scheme, no path, no
/// userinfo (which would let `user@host` smuggle a different host past a reader).
pub fn valid_registry(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        assert!(valid_repository("vibedata/api"));
        assert!(valid_repository("vibedata/runbooks/rotate-keys"));
        assert!(!valid_repository("Vibedata/api"));
        assert!(!valid_repository("evil.example.com:5000/x/../y"));
        assert!(!valid_repository("a//b"));
        assert!(!valid_repository(""));
    }

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("2026.11.0"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a:b"));
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest(&format!("md5:{}", "a".repeat(64))));
    }

    #[test]
    fn image_references() {
        let r = ImageRef::parse("127.0.0.1:18407/vibedata/api:2026.11.0").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("127.0.0.1:18407", "vibedata/api"));
        assert_eq!(r.target, Some(Target::Tag("2026.11.0".into())));
        assert_eq!(r.to_string(), "127.0.0.1:18407/vibedata/api:2026.11.0");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("reg.azurecr.io/a/b@{d}")).unwrap();
        assert_eq!(r.target, Some(Target::Digest(d.clone())));
        assert_eq!(ImageRef::parse("reg.azurecr.io/a/b").unwrap().target, None);
        for bad in [
            "vibedata/api",
            "https://reg/a",
            "user@reg/a",
            "reg:99999/a",
            "reg/A",
            "reg/a:-x",
            "reg/a@sha256:1",
            "reg/",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Target::parse(&d), Some(Target::Digest(d.clone())));
        assert_eq!(Target::parse("latest"), Some(Target::Tag("latest".into())));
        assert_eq!(Target::parse("sha256:zz"), None);
    }
}
