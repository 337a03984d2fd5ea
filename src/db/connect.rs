//! Connections: TLS always, `verify-full` against the platform roots plus the named extra CA
//! unless `require` is configured; the password is a Key Vault secret or an Entra token.
//!
//! Azure Database for PostgreSQL checks an Entra token only when a session starts, and an
//! established session outlives its token. So the token matters at each (re)connect: every
//! connect asks the identity for one, and one that would expire within [`MIN_TOKEN_VALIDITY`]
//! is thrown away for a fresh one, so a reconnect late in a long run never presents the stale
//! token the run started with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection};
use time::OffsetDateTime;

use super::{is_connection_error, sqlstate, DbError};
use crate::azure::identity::{Secret, Tokens};
use crate::config::DatabaseConfig;

/// A token must stay valid at least this long to be used for a new session.
pub const MIN_TOKEN_VALIDITY: Duration = Duration::from_secs(120);

/// Where the password comes from.
#[derive(Clone)]
pub enum PasswordSource {
    /// Read from Key Vault once per run.
    Fixed(Secret),
    /// An Entra access token for `scope` (the cloud's `ossrdbms-aad` audience), per connect.
    Entra { tokens: Arc<Tokens>, scope: String },
}

/// How to reach one database. Cheap to clone; each [`Db::connect`] opens a new session.
#[derive(Clone)]
pub struct Db {
    host: String,
    port: u16,
    database: String,
    user: String,
    verify_full: bool,
    ca_file: Option<PathBuf>,
    password: PasswordSource,
    connect_timeout: Duration,
}

impl Db {
    pub fn new(
        cfg: &DatabaseConfig,
        ca_file: Option<PathBuf>,
        password: PasswordSource,
        connect_timeout: Duration,
    ) -> Db {
        Db {
            host: cfg.host.clone(),
            port: cfg.port,
            database: cfg.database.clone(),
            user: cfg.user.clone(),
            verify_full: cfg.verify_full,
            ca_file,
            password,
            connect_timeout,
        }
    }

    /// `host:port/database`, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// `verify-full` or `require`.
    pub fn ssl_mode(&self) -> &'static str {
        if self.verify_full {
            "verify-full"
        } else {
            "require"
        }
    }

    /// `entra` or `keyVaultSecret`.
    pub fn auth_kind(&self) -> &'static str {
        match self.password {
            PasswordSource::Fixed(_) => "keyVaultSecret",
            PasswordSource::Entra { .. } => "entra",
        }
    }

    fn options(&self, password: &Secret, application: &str) -> PgConnectOptions {
        // `new_without_pgpass` still reads PG* variables; every field that matters is set here.
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(password.expose())
            .database(&self.database)
            .application_name(application)
            // Migration SQL is not secret, but it is long and the log is for progress.
            .disable_statement_logging()
            .ssl_mode(if self.verify_full { PgSslMode::VerifyFull } else { PgSslMode::Require });
        if let Some(ca) = &self.ca_file {
            // Added to the platform roots (webpki), not instead of them.
            o = o.ssl_root_cert(ca);
        }
        o
    }

    /// Opens a session as `application` (shown in `pg_stat_activity`, so a lock holder can be
    /// named). Fails without retrying; callers that want retries wrap it.
    pub async fn connect(&self, application: &str) -> Result<PgConnection, DbError> {
        let password = self.password().await?;
        let options = self.options(&password, application);
        match tokio::time::timeout(self.connect_timeout, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) if matches!(sqlstate(&e).as_deref(), Some("28P01" | "28000")) => {
                Err(DbError::Auth { target: self.target(), user: self.user.clone(), detail: first_line(&e) })
            }
            Ok(Err(e)) if is_connection_error(&e) => {
                Err(DbError::Connect { target: self.target(), detail: first_line(&e) })
            }
            Ok(Err(e)) => Err(DbError::Query { context: format!("connecting to {}", self.target()), source: e }),
            Err(_) => Err(DbError::Connect {
                target: self.target(),
                detail: format!("no session within {:?}", self.connect_timeout),
            }),
        }
    }

    async fn password(&self) -> Result<Secret, DbError> {
        match &self.password {
            PasswordSource::Fixed(s) => Ok(s.clone()),
            PasswordSource::Entra { tokens, scope } => entra_token(tokens, scope).await,
        }
    }
}

/// A token for `scope` that stays valid for [`MIN_TOKEN_VALIDITY`]; a nearer expiry makes the
/// identity's cache be dropped and a new token fetched.
pub async fn entra_token(tokens: &Tokens, scope: &str) -> Result<Secret, DbError> {
    let fetch = || async {
        tokens.get_token(&[scope], None).await.map_err(|e| DbError::Token {
            scope: scope.to_owned(),
            detail: e.to_string().lines().next().unwrap_or_default().to_owned(),
        })
    };
    let token = fetch().await?;
    if !needs_refresh(token.expires_on, OffsetDateTime::now_utc()) {
        return Ok(Secret::new(token.token.secret()));
    }
    tracing::info!(scope, expires_on = %token.expires_on, "the Postgres token expires too soon for a new session; fetching a fresh one");
    tokens.refresh();
    let fresh = fetch().await?;
    if needs_refresh(fresh.expires_on, OffsetDateTime::now_utc()) {
        // The identity endpoint hands out short tokens; use it, it is valid now.
        tracing::warn!(scope, expires_on = %fresh.expires_on, "the identity issued a token that expires within {}s", MIN_TOKEN_VALIDITY.as_secs());
    }
    Ok(Secret::new(fresh.token.secret()))
}

/// Pure: whether a token expiring at `expires_on` is too close to expiry to open a session.
pub fn needs_refresh(expires_on: OffsetDateTime, now: OffsetDateTime) -> bool {
    expires_on - now < MIN_TOKEN_VALIDITY
}

fn first_line(e: &sqlx::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::{AccessToken, TokenRequestOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Issues `token-<n>`, where `n` counts credentials built; the first expires in 30 s, the
    /// later ones in an hour — as when a cached token is near expiry.
    #[derive(Debug)]
    struct Fake {
        generation: usize,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Fake {
        async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
            let life = if self.generation == 1 { 30 } else { 3600 };
            Ok(AccessToken::new(
                format!("token-{}", self.generation),
                OffsetDateTime::now_utc() + time::Duration::seconds(life),
            ))
        }
    }

    #[test]
    fn refresh_threshold() {
        let now = OffsetDateTime::now_utc();
        assert!(needs_refresh(now + time::Duration::seconds(30), now));
        assert!(needs_refresh(now - time::Duration::seconds(1), now));
        assert!(!needs_refresh(now + time::Duration::seconds(3600), now));
    }

    #[tokio::test]
    async fn a_token_near_expiry_is_replaced_before_connecting() {
        let built = Arc::new(AtomicUsize::new(0));
        let counter = built.clone();
        let tokens = Tokens::from_factory(Box::new(move || {
            let generation = counter.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Arc::new(Fake { generation }) as Arc<dyn TokenCredential>)
        }))
        .unwrap();
        let t = entra_token(&tokens, "https://ossrdbms-aad.database.windows.net/.default").await.unwrap();
        assert_eq!(t.expose(), "token-2");
        // The fresh one is good for an hour: no further refresh.
        let again = entra_token(&tokens, "https://ossrdbms-aad.database.windows.net/.default").await.unwrap();
        assert_eq!(again.expose(), "token-2");
        assert_eq!(built.load(Ordering::SeqCst), 2);
    }
}
