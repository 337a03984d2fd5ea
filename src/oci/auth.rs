//! Who we are to a registry, and where each secret may go.
//!
//! Three credentials: none, a username/password (the publisher pull credential), and the managed
//! identity through the ACR token exchange (runtime-contracts §3.3): AAD token →
//! `POST {auth endpoint}/oauth2/exchange` → ACR refresh token → `POST {auth endpoint}/oauth2/token`
//! → access token for the repository scopes of one operation.
//!
//! The rules, each with a test below:
//! - the AAD token only ever goes to the configured auth endpoint's origin;
//! - a 401 challenge whose `realm` names any host other than the registry or its configured auth
//!   endpoint is refused before anything is sent there (a registry cannot redirect our secrets);
//! - a password only goes to the registry it belongs to;
//! - secrets are [`Secret`]s, whose `Debug` never shows them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::WWW_AUTHENTICATE;
use serde::Deserialize;
use url::Url;

use super::{transport, OciError};
use crate::azure::acr;
use crate::azure::identity::{Secret, Tokens};
use crate::azure::permission::Permission;
use crate::azure::retry::RetryPolicy;

/// How we authenticate to one registry.
#[derive(Debug, Clone)]
pub enum Credentials {
    Anonymous,
    /// HTTP Basic, or Basic to the registry's own token realm (htpasswd, ACR repository tokens).
    Basic {
        username: String,
        password: Secret,
    },
    /// The managed identity through the ACR token exchange.
    AcrIdentity(AcrIdentity),
}

/// The managed identity as an ACR client.
#[derive(Clone)]
pub struct AcrIdentity {
    pub tokens: Arc<Tokens>,
    /// The AAD scope of the token handed to the exchange (the cloud's ARM scope, as the ACR docs
    /// use it).
    pub aad_scope: String,
    /// Where `/oauth2/exchange` and `/oauth2/token` are sent: `ArtifactsConfig::acr_auth_endpoint`,
    /// by default the registry itself, as on ACR.
    pub auth_endpoint: Url,
    pub tenant: Option<String>,
}

impl std::fmt::Debug for AcrIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcrIdentity")
            .field("aad_scope", &self.aad_scope)
            .field("auth_endpoint", &self.auth_endpoint.as_str())
            .finish()
    }
}

/// One repository scope of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Scope {
    pub repository: String,
    pub push: bool,
}

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope { repository: repository.to_owned(), push: false }
    }
    pub fn push(repository: &str) -> Scope {
        Scope { repository: repository.to_owned(), push: true }
    }
    fn as_param(&self) -> String {
        format!("repository:{}:{}", self.repository, if self.push { "pull,push" } else { "pull" })
    }
}

/// What goes into the `Authorization` header of one registry request.
#[derive(Debug, Clone)]
pub(crate) enum Authz {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// How the registry answered an anonymous `GET /v2/`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Challenge {
    /// 200: no authentication.
    Open,
    Basic,
    Bearer {
        realm: Url,
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value: the scheme, lowercased, and its `key="value"` parameters.
pub(crate) fn parse_challenge(header: &str) -> Option<(String, BTreeMap<String, String>)> {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key.trim().to_ascii_lowercase(), value);
        rest = remaining;
    }
    Some((scheme.to_ascii_lowercase(), params))
}

struct Cached {
    token: Secret,
    until: Instant,
}

impl Cached {
    /// Keeps a token until a little before it expires, so it never dies in flight.
    fn new(token: Secret, lifetime: Duration) -> Cached {
        let margin = (lifetime / 4).min(Duration::from_secs(60));
        Cached { token, until: Instant::now() + lifetime.saturating_sub(margin) }
    }
    fn fresh(&self) -> Option<&Secret> {
        (Instant::now() < self.until).then_some(&self.token)
    }
}

#[derive(Default)]
struct State {
    challenge: Option<Challenge>,
    refresh: Option<Cached>,
    access: HashMap<String, Cached>,
}

/// Negotiates and caches the tokens of one registry.
pub(crate) struct Authenticator {
    registry: String,
    origin: Url,
    creds: Credentials,
    http: reqwest::Client,
    policy: RetryPolicy,
    state: tokio::sync::Mutex<State>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Authenticator {
    pub fn new(
        registry: &str,
        origin: Url,
        creds: Credentials,
        http: reqwest::Client,
        policy: RetryPolicy,
    ) -> Authenticator {
        Authenticator { registry: registry.to_owned(), origin, creds, http, policy, state: Default::default() }
    }

    /// What a registry call for `scopes` needs granted: with the managed identity, the ACR's
    /// pull or push permission; with the registry's own credentials, no Azure role.
    pub(crate) fn permission(&self, scopes: &[Scope]) -> &'static Permission {
        match &self.creds {
            Credentials::AcrIdentity(_) if scopes.iter().any(|s| s.push) => &acr::PUSH,
            Credentials::AcrIdentity(_) => &acr::PULL,
            _ => &acr::CREDENTIALS,
        }
    }

    /// The `Authorization` for requests needing `scopes`, negotiating a token when none is cached.
    /// Concurrent callers wait for one negotiation rather than each running their own.
    pub async fn authorize(&self, scopes: &[Scope]) -> Result<Authz, OciError> {
        let mut st = self.state.lock().await;
        let challenge = match &st.challenge {
            Some(c) => c.clone(),
            None => {
                let c = self.challenge().await?;
                st.challenge = Some(c.clone());
                c
            }
        };
        let (realm, service) = match (&challenge, &self.creds) {
            (Challenge::Open, _) | (Challenge::Basic, Credentials::Anonymous) => return Ok(Authz::None),
            (Challenge::Basic, Credentials::Basic { username, password }) => {
                return Ok(Authz::Basic { username: username.clone(), password: password.clone() })
            }
            (Challenge::Basic, Credentials::AcrIdentity(_)) => {
                return Err(self.auth_error(
                    "the registry asks for Basic auth; the managed identity needs a token registry".into(),
                ))
            }
            (Challenge::Bearer { realm, service }, _) => {
                (realm.clone(), service.clone().unwrap_or_else(|| self.registry.clone()))
            }
        };
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let key = scopes.iter().map(Scope::as_param).collect::<Vec<_>>().join(" ");
        if let Some(t) = st.access.get(&key).and_then(Cached::fresh) {
            return Ok(Authz::Bearer(t.clone()));
        }
        // A pull,push token of the same repository serves a pull (a copy HEADs what it pushes).
        if let [only] = scopes.as_slice() {
            let wider = Scope::push(&only.repository).as_param();
            if let Some(t) = st.access.get(&wider).and_then(Cached::fresh) {
                return Ok(Authz::Bearer(t.clone()));
            }
        }
        let (token, lifetime) = match &self.creds {
            Credentials::AcrIdentity(acr) => {
                let refresh = match st.refresh.as_ref().and_then(Cached::fresh) {
                    Some(r) => r.clone(),
                    None => {
                        let r = self.exchange(acr, &service).await?;
                        st.refresh = Some(Cached::new(r.clone(), transport::token_lifetime(r.expose(), None)));
                        r
                    }
                };
                self.acr_access_token(acr, &service, &scopes, &refresh).await?
            }
            creds => self.realm_token(&realm, &service, &scopes, creds).await?,
        };
        st.access.insert(key, Cached::new(token.clone(), lifetime));
        Ok(Authz::Bearer(token))
    }

    /// After the registry refused a token: forget it, and the ACR refresh token behind it, so the
    /// next [`Self::authorize`] exchanges anew.
    pub async fn invalidate(&self) {
        let mut st = self.state.lock().await;
        st.access.clear();
        st.refresh = None;
    }

    /// `GET /v2/` without credentials, and what its 401 asks for. A Bearer realm on any host but
    /// the registry (or, for the managed identity, its configured auth endpoint) is refused here,
    /// before anything is sent to it.
    async fn challenge(&self) -> Result<Challenge, OciError> {
        let url = self.origin.join("/v2/").expect("static path");
        let permission = self.permission(&[]);
        let resp =
            transport::send(&self.policy, &self.registry, "/v2/", true, permission, || self.http.get(url.clone()))
                .await?;
        match resp.status().as_u16() {
            200..=299 => return Ok(Challenge::Open),
            401 => {}
            s => return Err(transport::from_status(s, &resp.text().await.unwrap_or_default(), &self.registry, "/v2/")),
        }
        let header = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let (scheme, params) =
            parse_challenge(&header).ok_or_else(|| self.auth_error(format!("unreadable challenge {header:?}")))?;
        match scheme.as_str() {
            "basic" => Ok(Challenge::Basic),
            "bearer" => {
                let raw =
                    params.get("realm").ok_or_else(|| self.auth_error("a Bearer challenge without a realm".into()))?;
                let realm = Url::parse(raw)
                    .map_err(|_| self.auth_error(format!("the challenge realm {raw:?} is not a URL")))?;
                let allowed = self.allowed_realm_origins();
                if !allowed.contains(&realm.origin()) {
                    return Err(OciError::RealmRefused {
                        registry: self.registry.clone(),
                        realm: raw.clone(),
                        allowed: allowed.iter().map(|o| o.ascii_serialization()).collect::<Vec<_>>().join(" or "),
                    });
                }
                Ok(Challenge::Bearer { realm, service: params.get("service").cloned() })
            }
            other => Err(self.auth_error(format!("unsupported authentication scheme {other:?}"))),
        }
    }

    /// The registry itself; the configured ACR auth endpoint too for the managed identity.
    fn allowed_realm_origins(&self) -> Vec<url::Origin> {
        let mut allowed = vec![self.origin.origin()];
        if let Credentials::AcrIdentity(acr) = &self.creds {
            allowed.push(acr.auth_endpoint.origin());
        }
        allowed
    }

    /// The AAD token → an ACR refresh token. The only request that carries the AAD token.
    async fn exchange(&self, acr: &AcrIdentity, service: &str) -> Result<Secret, OciError> {
        let url = endpoint_url(&acr.auth_endpoint, "oauth2/exchange");
        guard_origin("the AAD token", &url, &acr.auth_endpoint)?;
        let aad = acr.tokens.token(&acr.aad_scope).await?;
        let mut form = vec![("grant_type", "access_token"), ("service", service), ("access_token", aad.expose())];
        if let Some(t) = acr.tenant.as_deref() {
            form.push(("tenant", t));
        }
        let body = self.post_form(&url, &form, &[]).await?;
        body.refresh_token
            .map(Secret::new)
            .ok_or_else(|| self.auth_error("the exchange answered without a refresh_token".into()))
    }

    async fn acr_access_token(
        &self,
        acr: &AcrIdentity,
        service: &str,
        scopes: &[Scope],
        refresh: &Secret,
    ) -> Result<(Secret, Duration), OciError> {
        let url = endpoint_url(&acr.auth_endpoint, "oauth2/token");
        guard_origin("the ACR refresh token", &url, &acr.auth_endpoint)?;
        let params: Vec<String> = scopes.iter().map(Scope::as_param).collect();
        let mut form = vec![("grant_type", "refresh_token"), ("service", service), ("refresh_token", refresh.expose())];
        form.extend(params.iter().map(|p| ("scope", p.as_str())));
        let body = self.post_form(&url, &form, scopes).await?;
        let token = body
            .access_token
            .ok_or_else(|| self.auth_error("the token endpoint answered without an access_token".into()))?;
        let lifetime = transport::token_lifetime(&token, body.expires_in);
        Ok((Secret::new(token), lifetime))
    }

    /// Docker's token flow: `GET realm?service=..&scope=..`, with Basic auth when we have a
    /// password. The realm was already checked to be the registry's own origin.
    async fn realm_token(
        &self,
        realm: &Url,
        service: &str,
        scopes: &[Scope],
        creds: &Credentials,
    ) -> Result<(Secret, Duration), OciError> {
        let mut url = realm.clone();
        url.query_pairs_mut().append_pair("service", service);
        for s in scopes {
            url.query_pairs_mut().append_pair("scope", &s.as_param());
        }
        if let Credentials::Basic { .. } = creds {
            // Only ever to the registry the password belongs to.
            guard_origin("the registry password", &url, &self.origin)?;
        }
        let permission = self.permission(scopes);
        let resp = transport::send(&self.policy, &self.registry, realm.path(), true, permission, || match creds {
            Credentials::Basic { username, password } => {
                self.http.get(url.clone()).basic_auth(username, Some(password.expose()))
            }
            _ => self.http.get(url.clone()),
        })
        .await?;
        let body = self.token_body(resp, realm.path()).await?;
        let token = body
            .token
            .or(body.access_token)
            .ok_or_else(|| self.auth_error("the token realm answered without a token".into()))?;
        let lifetime = transport::token_lifetime(&token, body.expires_in);
        Ok((Secret::new(token), lifetime))
    }

    async fn post_form(&self, url: &Url, form: &[(&str, &str)], scopes: &[Scope]) -> Result<TokenResponse, OciError> {
        // Not idempotent in the HTTP sense, but harmless to repeat: each call only mints a token.
        let permission = self.permission(scopes);
        let resp = transport::send(&self.policy, &self.registry, url.path(), true, permission, || {
            self.http.post(url.clone()).form(form)
        })
        .await?;
        self.token_body(resp, url.path()).await
    }

    async fn token_body(&self, resp: reqwest::Response, path: &str) -> Result<TokenResponse, OciError> {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.auth_error(format!("{path}: {e}")))?;
        if !(200..300).contains(&status) {
            let (code, message) = crate::azure::error::parse_error(status, None, &bytes);
            return Err(self.auth_error(format!("{path}: HTTP {status} {code}: {message}")));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.auth_error(format!("{path}: not a token response: {e}")))
    }

    fn auth_error(&self, detail: String) -> OciError {
        OciError::Auth { registry: self.registry.clone(), detail }
    }
}

/// `{endpoint}/{path}`, keeping any path prefix of the endpoint.
fn endpoint_url(endpoint: &Url, path: &str) -> Url {
    Url::parse(&format!("{}/{path}", endpoint.as_str().trim_end_matches('/'))).expect("endpoint + static path")
}

/// Refuses to send `what` anywhere but `allowed`'s origin.
pub(crate) fn guard_origin(what: &'static str, url: &Url, allowed: &Url) -> Result<(), OciError> {
    if url.origin() == allowed.origin() {
        Ok(())
    } else {
        Err(OciError::SecretHostMismatch {
            what,
            host: url.origin().ascii_serialization(),
            allowed: allowed.origin().ascii_serialization(),
        })
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
