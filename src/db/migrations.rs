//! Migration sets: the embedded platform-registry schema and a release's migrations artifact,
//! both parsed by `sqlx`'s rules so either could be applied by `sqlx migrate` too.
//!
//! A file is `<version>_<description>.sql` with a positive integer version; its first line
//! `-- no-transaction` opts it out of the transaction; its checksum is `sqlx`'s (SHA-384 of the
//! text). Unlike `sqlx`, which silently skips files it does not recognise, a set here is refused
//! whole when any file is off: a typo in a release must not mean a migration quietly not run.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

use sqlx::migrate::MigrationType;
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::DbError;

/// The tracking tables' schema.
pub const TRACKING_SCHEMA: &str = "vibedata_bootstrap";

/// A release's migrations artifact larger than this, unpacked, is not one of ours.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// More files than this in one artifact is not a migration set either.
pub const MAX_FILES: usize = 10_000;

/// This binary's own schema, in version order. A unit test checks that this list is exactly the
/// `migrations/` folder and pins each file's checksum.
const EMBEDDED: &[(&str, &str)] = &[
    ("0001_registry.sql", include_str!("../../migrations/0001_registry.sql")),
    ("0002_health.sql", include_str!("../../migrations/0002_health.sql")),
    ("0003_registry_details.sql", include_str!("../../migrations/0003_registry_details.sql")),
    ("0004_release_objects.sql", include_str!("../../migrations/0004_release_objects.sql")),
];

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The file name, which every message about the migration uses.
    pub file: String,
    /// `sqlx`'s migration: version, description, SQL, checksum, `no_tx`.
    pub inner: sqlx::migrate::Migration,
}

impl Migration {
    pub fn version(&self) -> i64 {
        self.inner.version
    }

    pub fn description(&self) -> &str {
        &self.inner.description
    }

    pub fn sql(&self) -> &str {
        self.inner.sql.as_str()
    }

    pub fn checksum(&self) -> &[u8] {
        &self.inner.checksum
    }

    pub fn no_tx(&self) -> bool {
        self.inner.no_tx
    }
}

/// A set of migrations tracked in one table.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// `registry` or `release`: names the set in progress lines and outputs.
    pub name: &'static str,
    /// Schema-qualified tracking table.
    pub table: String,
    /// Where the files came from, for messages (e.g. `embedded`, `release 2026.11.0 (sha256:…)`).
    pub origin: String,
    /// Sorted by version; versions are unique.
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Builds a set from `(file name, contents)` pairs, refusing the whole set on any bad file.
    pub fn from_files(
        name: &'static str,
        origin: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<MigrationSet, DbError> {
        let bad = |message: String| DbError::BadMigrations { origin: origin.to_owned(), message };
        let mut by_version: BTreeMap<i64, Migration> = BTreeMap::new();
        for (file, bytes) in files {
            let (version, description) = parse_file_name(&file).map_err(|m| bad(format!("{file:?}: {m}")))?;
            let sql = String::from_utf8(bytes).map_err(|_| bad(format!("{file} is not UTF-8 text")))?;
            // sqlx's own rule: the opt-out is the very start of the file.
            let no_tx = sql.starts_with("-- no-transaction");
            let inner = sqlx::migrate::Migration::new(
                version,
                Cow::Owned(description),
                MigrationType::Simple,
                AssertSqlSafe(sql).into_sql_str(),
                no_tx,
            );
            if let Some(other) = by_version.get(&version) {
                return Err(bad(format!("{file} and {} both have version {version}", other.file)));
            }
            by_version.insert(version, Migration { file, inner });
        }
        Ok(MigrationSet {
            name,
            table: format!("{TRACKING_SCHEMA}.{name}_migrations"),
            origin: origin.to_owned(),
            migrations: by_version.into_values().collect(),
        })
    }

    /// A release's migrations artifact layer: a gzip tar of flat `<version>_<description>.sql`
    /// files (DESIGN §4). Anything else in it is bad input.
    pub fn from_tar_gz(name: &'static str, origin: &str, layer: &[u8]) -> Result<MigrationSet, DbError> {
        let bad = |message: String| DbError::BadMigrations { origin: origin.to_owned(), message };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
        let mut files = Vec::new();
        let mut total = 0u64;
        for entry in archive.entries().map_err(|e| bad(format!("not a gzip tar: {e}")))? {
            let entry = entry.map_err(|e| bad(format!("not a gzip tar: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| bad(format!("an entry has an unusable name: {e}")))?
                .to_string_lossy()
                .into_owned();
            let name = path.strip_prefix("./").unwrap_or(&path).to_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() && (name.is_empty() || name == ".") {
                continue;
            }
            if !kind.is_file() {
                return Err(bad(format!("{path:?} is not a regular file; the artifact holds only flat .sql files")));
            }
            if name.contains('/') {
                return Err(bad(format!("{path:?} is in a folder; the artifact holds only flat .sql files")));
            }
            total += entry.header().size().unwrap_or(u64::MAX);
            if total > MAX_UNPACKED_BYTES || files.len() >= MAX_FILES {
                return Err(bad(format!("more than {MAX_FILES} files or {MAX_UNPACKED_BYTES} bytes unpacked")));
            }
            let mut bytes = Vec::new();
            // `take` bounds the read whatever the header claimed.
            entry.take(MAX_UNPACKED_BYTES).read_to_end(&mut bytes).map_err(|e| bad(format!("{name}: {e}")))?;
            files.push((name, bytes));
        }
        if files.is_empty() {
            return Err(bad("holds no migration files".into()));
        }
        Self::from_files(name, origin, files)
    }
}

/// This binary's platform-registry schema.
pub fn embedded() -> MigrationSet {
    let files = EMBEDDED.iter().map(|(n, sql)| ((*n).to_owned(), sql.as_bytes().to_vec())).collect();
    MigrationSet::from_files("registry", "embedded registry schema", files)
        .expect("the embedded migrations are valid; a unit test checks it")
}

/// `<version>_<description>.sql` → `(version, description with '_' as ' ')`, as `sqlx` reads it.
/// Reversible (`.up.sql`/`.down.sql`) files are refused: a deployment only moves forward.
pub fn parse_file_name(file: &str) -> Result<(i64, String), String> {
    let stem = file.strip_suffix(".sql").ok_or("expected <version>_<description>.sql")?;
    if stem.ends_with(".up") || stem.ends_with(".down") {
        return Err("reversible (.up.sql/.down.sql) migrations are not supported; ship forward-only files".into());
    }
    let (version, description) = stem.split_once('_').ok_or("expected <version>_<description>.sql")?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the version {version:?} is not a whole number"));
    }
    let version: i64 = version.parse().map_err(|_| format!("the version {version} is too large"))?;
    if version <= 0 {
        return Err("the version must be greater than zero".into());
    }
    if description.is_empty() || !description.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!("the description {description:?} must be letters, digits, '_', '-' or '.'"));
    }
    Ok((version, description.replace('_', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-384 of each shipped migration. A shipped migration is never edited: an applied one
    /// with another checksum stops every later deployment. Add a new file instead; then add its
    /// line here.
    const PINNED: &[(&str, &str)] = &[
        (
            "0001_registry.sql",
            "16649996d61511334d866d23e58ae09ccb16b690fb55e5d2b4531ec3c31588151ff20f8d413c8ba4d99ab60609c66f72",
        ),
        (
            "0002_health.sql",
            "0a70f4110f28f0b7cbc333c11bc0a7c79307e573068c0fee68ad5da6bc6a5d6fa580d1345ec8643f4a66f12c92b27c06",
        ),
        (
            "0003_registry_details.sql",
            "a396b506807370c67f700858a1eb206e4e7c3bb8fbe0cca6ded42c8765b2f14a8abbb717efffc0c98f66327f6acc3aa2",
        ),
        (
            "0004_release_objects.sql",
            "c6f96339eadc48bad41dfe4a7f02375653538f468ede7a0717302a1ca0584243ad6bfd7947c50b9df78c2dc0de3fb528",
        ),
    ];

    #[test]
    fn shipped_migrations_are_never_edited() {
        let set = embedded();
        let got: Vec<(String, String)> =
            set.migrations.iter().map(|m| (m.file.clone(), hex::encode(m.checksum()))).collect();
        let want: Vec<(String, String)> = PINNED.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect();
        assert_eq!(got, want, "an embedded migration changed or was added without pinning its checksum");
    }

    #[test]
    fn the_embedded_list_is_the_migrations_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        on_disk.sort();
        let listed: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, listed, "every file in migrations/ must be listed in EMBEDDED (and pinned)");
        // And sqlx resolves the folder to the same versions and checksums.
        let resolved =
            sqlx::migrate::resolve_blocking(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")))
                .unwrap();
        let ours = embedded();
        assert_eq!(resolved.len(), ours.migrations.len());
        for ((theirs, _), mine) in resolved.iter().zip(&ours.migrations) {
            assert_eq!(
                (theirs.version, &*theirs.checksum, theirs.no_tx),
                (mine.version(), mine.checksum(), mine.no_tx())
            );
        }
    }

    #[test]
    fn file_names_follow_sqlx() {
        assert_eq!(
            parse_file_name("20261101000001_create_tenants.sql").unwrap(),
            (20261101000001, "create tenants".into())
        );
        assert_eq!(parse_file_name("1_x.sql").unwrap(), (1, "x".into()));
        for bad in [
            "create.sql",
            "0_x.sql",
            "x_y.sql",
            "1_.sql",
            "1_x.txt",
            "1_x.up.sql",
            "1_x.down.sql",
            "-1_x.sql",
            "99999999999999999999_x.sql",
            "1_a b.sql",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn no_transaction_is_the_first_line_only() {
        let set = MigrationSet::from_files(
            "release",
            "test",
            vec![
                ("2_b.sql".into(), b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);".to_vec()),
                ("1_a.sql".into(), b"SELECT 1;\n-- no-transaction".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(
            set.migrations.iter().map(|m| (m.version(), m.no_tx())).collect::<Vec<_>>(),
            [(1, false), (2, true)]
        );
        assert_eq!(set.table, "vibedata_bootstrap.release_migrations");
    }

    #[test]
    fn duplicate_versions_and_non_utf8_refuse_the_set() {
        let dup = MigrationSet::from_files(
            "release",
            "t",
            vec![("1_a.sql".into(), b"".to_vec()), ("01_b.sql".into(), b"".to_vec())],
        )
        .unwrap_err();
        assert!(dup.to_string().contains("both have version 1"), "{dup}");
        let bin = MigrationSet::from_files("release", "t", vec![("1_a.sql".into(), vec![0xff, 0xfe])]).unwrap_err();
        assert!(bin.to_string().contains("not UTF-8"), "{bin}");
    }

    fn tar_gz(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        for (name, data, kind) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn artifact_layers_are_flat_sql_files() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let ok = tar_gz(&[("1_a.sql", b"SELECT 1;", Regular), ("./2_b.sql", b"SELECT 2;", Regular)]);
        let set = MigrationSet::from_tar_gz("release", "t", &ok).unwrap();
        assert_eq!(set.migrations.iter().map(|m| m.file.as_str()).collect::<Vec<_>>(), ["1_a.sql", "2_b.sql"]);

        for (entries, why) in [
            (tar_gz(&[("sub/1_a.sql", b"", Regular)]), "in a folder"),
            (tar_gz(&[("sub/", b"", Directory)]), "not a regular file"),
            (tar_gz(&[("1_a.sql", b"", Symlink)]), "not a regular file"),
            (tar_gz(&[("README.md", b"", Regular)]), "README.md"),
            (tar_gz(&[]), "no migration files"),
            (b"not gzip".to_vec(), "not a gzip tar"),
        ] {
            let e = MigrationSet::from_tar_gz("release", "t", &entries).unwrap_err();
            assert!(matches!(e, DbError::BadMigrations { .. }) && e.to_string().contains(why), "{e}");
        }
    }
}
