//! The auth rules of `auth.rs`, one test each, against loopback servers that record everything.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use serde_json::json;

use super::*;
use crate::testserver::{Reply, TestServer};

const AAD: &str = "aad-SECRET-token";
const PASSWORD: &str = "p@ss-SECRET";

#[derive(Debug)]
struct FakeAad;

#[async_trait::async_trait]
impl TokenCredential for FakeAad {
    async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(AAD.to_owned(), time::OffsetDateTime::now_utc() + time::Duration::hours(1)))
    }
}

fn acr(auth_endpoint: url::Url) -> Credentials {
    let tokens = Tokens::from_factory(Box::new(|| Ok(Arc::new(FakeAad) as Arc<dyn TokenCredential>))).unwrap();
    Credentials::AcrIdentity(AcrIdentity {
        tokens,
        aad_scope: "https://management.azure.com/.default".into(),
        auth_endpoint,
        tenant: Some("t1".into()),
    })
}

fn basic() -> Credentials {
    Credentials::Basic { username: "publisher".into(), password: Secret::new(PASSWORD) }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 1,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        rbac_deadline: Duration::ZERO,
    }
}

fn auth(registry: &TestServer, creds: Credentials) -> Authenticator {
    Authenticator::new(&registry.host(), registry.url(), creds, reqwest::Client::new(), policy())
}

/// A registry whose `/v2/` challenges with `challenge`, and which answers 200 elsewhere.
fn registry(challenge: String) -> TestServer {
    TestServer::start(move |r| {
        if r.target == "/v2/" {
            Reply::new(401).header("WWW-Authenticate", &challenge).json(json!({"errors": [{"code": "UNAUTHORIZED"}]}))
        } else {
            Reply::new(200).json(json!({"token": "realm-token"}))
        }
    })
}

/// A registry whose token realm is on its own origin (as on ACR): `{self}/oauth2/token`.
fn registry_with_own_realm() -> TestServer {
    let own = Arc::new(std::sync::OnceLock::<String>::new());
    let realm = own.clone();
    let srv = TestServer::start(move |r| match r.target.as_str() {
        "/v2/" => Reply::new(401).header(
            "WWW-Authenticate",
            &format!("Bearer realm=\"{}/oauth2/token\",service=\"svc\"", realm.get().unwrap()),
        ),
        _ => Reply::new(200).json(json!({"token": "T", "expires_in": 300})),
    });
    own.set(format!("http://{}", srv.addr)).unwrap();
    srv
}

fn token_service() -> TestServer {
    TestServer::start(|r| match r.target.as_str() {
        "/oauth2/exchange" => Reply::new(200).json(json!({"refresh_token": "REFRESH-1"})),
        "/oauth2/token" => Reply::new(200).json(json!({"access_token": "ACCESS-1"})),
        _ => Reply::new(404),
    })
}

#[tokio::test]
async fn the_aad_token_only_goes_to_the_configured_exchange_endpoint() {
    let exchange = token_service();
    // The realm is the registry itself (ACR); the exchange endpoint is configured elsewhere.
    let reg = registry_with_own_realm();
    let a = auth(&reg, acr(exchange.url()));
    let Authz::Bearer(t) = a.authorize(&[Scope::pull("vibedata/api")]).await.unwrap() else { panic!("want a bearer") };
    assert_eq!(t.expose(), "ACCESS-1");

    let seen = exchange.recorded();
    assert_eq!(seen.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(), ["/oauth2/exchange", "/oauth2/token"]);
    assert!(
        seen[0].body.contains(AAD)
            && seen[0].body.contains("grant_type=access_token")
            && seen[0].body.contains("service=svc")
    );
    assert!(seen[0].body.contains("tenant=t1"));
    assert!(!seen[1].body.contains(AAD), "the token request carries the refresh token, not the AAD token");
    assert!(
        seen[1].body.contains("refresh_token=REFRESH-1")
            && seen[1].body.contains("scope=repository%3Avibedata%2Fapi%3Apull")
    );
    for r in reg.recorded() {
        assert!(!r.everything().contains(AAD), "the registry saw the AAD token: {r:?}");
        assert!(r.header("authorization").is_none());
    }
    // The guard itself, for a URL that is not the endpoint's.
    let other = url::Url::parse("https://evil.example/oauth2/exchange").unwrap();
    assert!(matches!(guard_origin("the AAD token", &other, &exchange.url()), Err(OciError::SecretHostMismatch { .. })));
}

#[tokio::test]
async fn a_realm_on_any_other_host_is_refused_and_gets_nothing() {
    let elsewhere = token_service();
    let exchange = token_service();
    for creds in [Credentials::Anonymous, basic(), acr(exchange.url())] {
        let reg = registry(format!(r#"Bearer realm="{}oauth2/token",service="svc""#, elsewhere.url()));
        let err = auth(&reg, creds.clone()).authorize(&[Scope::push("a/b")]).await.unwrap_err();
        assert!(matches!(err, OciError::RealmRefused { .. }), "{creds:?}: {err}");
        let seen = reg.recorded();
        assert_eq!(seen.len(), 1, "only the anonymous /v2/ probe");
        assert!(seen[0].header("authorization").is_none());
    }
    assert!(elsewhere.recorded().is_empty(), "nothing went to the foreign realm");
    assert!(exchange.recorded().is_empty(), "no exchange for a registry that names a foreign realm");
}

#[tokio::test]
async fn basic_credentials_only_go_to_their_registry() {
    // A Basic challenge: the password goes to the registry itself.
    let reg = registry(r#"Basic realm="registry""#.into());
    let a = auth(&reg, basic());
    assert!(matches!(a.authorize(&[Scope::pull("a")]).await.unwrap(), Authz::Basic { .. }));

    let same = TestServer::start(|r| match r.target.as_str() {
        "/v2/" => Reply::new(401).header("WWW-Authenticate", "Bearer realm=\"/token\""),
        _ => Reply::new(200).json(json!({"token": "T", "expires_in": 300})),
    });
    // A relative realm is not a URL; registries send absolute ones.
    assert!(matches!(auth(&same, basic()).authorize(&[Scope::pull("a")]).await.unwrap_err(), OciError::Auth { .. }));

    // A token realm on the registry's own origin gets the password (docker's flow); a realm on
    // any other origin is refused (see the test above).
    let srv = registry_with_own_realm();
    let Authz::Bearer(t) = auth(&srv, basic()).authorize(&[Scope::pull("a")]).await.unwrap() else { panic!() };
    assert_eq!(t.expose(), "T");
    let seen = srv.recorded();
    assert!(
        seen[1].target.starts_with("/oauth2/token?service=svc&scope=repository%3Aa%3Apull"),
        "{:?}",
        seen[1].target
    );
    assert!(seen[1].header("authorization").is_some_and(|h| h.starts_with("Basic ")));
}

#[tokio::test]
async fn tokens_are_cached_and_exchanged_again_after_a_401() {
    let exchange = token_service();
    let reg = registry(format!(r#"Bearer realm="{}oauth2/token",service="svc""#, exchange.url()));
    let a = auth(&reg, acr(exchange.url()));
    a.authorize(&[Scope::pull("a")]).await.unwrap();
    a.authorize(&[Scope::pull("a")]).await.unwrap();
    a.authorize(&[Scope::push("b"), Scope::pull("a")]).await.unwrap();
    let targets = |s: &TestServer| s.recorded().iter().map(|r| r.target.clone()).collect::<Vec<_>>();
    assert_eq!(
        targets(&exchange),
        ["/oauth2/exchange", "/oauth2/token", "/oauth2/token"],
        "one exchange, one token per scope set"
    );
    assert!(exchange.recorded()[2].body.contains("scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull%2Cpush"));
    a.invalidate().await;
    a.authorize(&[Scope::pull("a")]).await.unwrap();
    assert_eq!(targets(&exchange).len(), 5, "a refused token means a fresh exchange");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let shown = format!(
        "{:?} {:?} {:?}",
        basic(),
        Authz::Bearer(Secret::new("tok-SECRET")),
        Authz::Basic { username: "u".into(), password: Secret::new(PASSWORD) }
    );
    assert!(!shown.contains("SECRET"), "{shown}");
    let shown = format!("{:?}", acr(url::Url::parse("https://x").unwrap()));
    assert!(!shown.contains(AAD), "{shown}");
}

#[test]
fn parses_challenges() {
    let (s, p) = parse_challenge(
        r#"Bearer realm="https://r.azurecr.io/oauth2/token",service="r.azurecr.io",scope="repository:a/b:pull,push""#,
    )
    .unwrap();
    assert_eq!(s, "bearer");
    assert_eq!(p["realm"], "https://r.azurecr.io/oauth2/token");
    assert_eq!(p["service"], "r.azurecr.io");
    assert_eq!(p["scope"], "repository:a/b:pull,push");
    let (s, p) = parse_challenge(r#"Basic realm="Registry \"x\"""#).unwrap();
    assert_eq!((s.as_str(), p["realm"].as_str()), ("basic", r#"Registry "x""#));
    let (_, p) = parse_challenge("Bearer realm=https://a/t, service=svc").unwrap();
    assert_eq!((p["realm"].as_str(), p["service"].as_str()), ("https://a/t", "svc"));
    assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
}
