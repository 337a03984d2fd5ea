//! A database and a login role of their own for a platform service (Airbyte), on the platform's
//! Postgres: what Bicep cannot create.
//!
//! Names are held to `names::POSTGRES_NAME` (lower case, digits, `_`), so they are written into
//! statements without quoting; the password is generated from an alphanumeric alphabet and
//! written as a literal, since DDL takes no bind parameters. The connecting role needs CREATEROLE
//! and CREATEDB (the Entra administrator of a flexible server has both).

use sqlx::{Connection, PgConnection};

use super::{Db, DbError};
use crate::azure::identity::Secret;

/// What the server holds of a service's database and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Present {
    pub role: bool,
    pub database: bool,
}

/// Reads what exists. Reads only.
pub async fn present(db: &Db, database: &str, role: &str) -> Result<Present, DbError> {
    let mut conn = db.connect("vibedata-bootstrap provision").await?;
    let result = read(&mut conn, database, role).await;
    let _ = conn.close().await;
    result
}

async fn read(conn: &mut PgConnection, database: &str, role: &str) -> Result<Present, DbError> {
    let role_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("reading pg_roles"))?;
    let db_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("reading pg_database"))?;
    Ok(Present { role: role_exists, database: db_exists })
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Provisioned {
    pub role_created: bool,
    pub password_set: bool,
    pub database_created: bool,
}

/// Creates the role (with `password`) and the database it owns when missing; sets the
/// password of an existing role only when `set_password` (a new secret was generated).
pub async fn ensure(
    db: &Db,
    database: &str,
    role: &str,
    password: &Secret,
    set_password: bool,
) -> Result<Provisioned, DbError> {
    assert_plain(database);
    assert_plain(role);
    assert!(password.expose().chars().all(|c| c.is_ascii_alphanumeric()), "generated passwords are alphanumeric");
    let mut conn = db.connect("vibedata-bootstrap provision").await?;
    let result = async {
        let now = read(&mut conn, database, role).await?;
        let mut done = Provisioned::default();
        if !now.role {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN PASSWORD '{}'", password.expose())))
                .execute(&mut conn)
                .await
                .map_err(DbError::query(format!("creating role {role}")))?;
            done.role_created = true;
        } else if set_password {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER ROLE {role} LOGIN PASSWORD '{}'", password.expose())))
                .execute(&mut conn)
                .await
                .map_err(DbError::query(format!("setting the password of role {role}")))?;
            done.password_set = true;
        }
        if !now.database {
            // OWNER needs membership in the role when the connecting role is not a superuser
            // (PostgreSQL 15; a flexible server's administrators are not).
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("GRANT {role} TO CURRENT_USER")))
                .execute(&mut conn)
                .await
                .map_err(DbError::query(format!("granting role {role}")))?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database} OWNER {role}")))
                .execute(&mut conn)
                .await
                .map_err(DbError::query(format!("creating database {database}")))?;
            done.database_created = true;
        }
        Ok(done)
    }
    .await;
    let _ = conn.close().await;
    result
}

/// The caller validated the name against its rule; this keeps an unchecked one out of a statement.
fn assert_plain(name: &str) {
    assert!(crate::names::POSTGRES_NAME.check(name).is_ok(), "{name:?} reached a statement without being validated");
}

/// A new password: 32 characters from a 62-character alphabet (about 190 bits).
pub fn generate_password() -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    Secret::new((0..32).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect::<String>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_long_alphanumeric_and_differ() {
        let (a, b) = (super::generate_password(), super::generate_password());
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
    }
}
