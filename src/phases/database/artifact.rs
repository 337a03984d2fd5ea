//! The release's migrations, from artifact storage (DESIGN §4), digest-verified all the way: the
//! stored release ([`StoredRelease`]) pins the migrations artifact, whose one layer is the set.

use crate::context::Context;
use crate::db::MigrationSet;
use crate::error::PhaseError;
use crate::release;
use crate::stored_release::{paths, StoredRelease};

/// The release whose migrations are applied.
pub struct ReleaseMigrations {
    pub release: String,
    pub manifest_digest: String,
    /// The migrations artifact's digest and its set; `None` when the release ships none.
    pub migrations: Option<(String, MigrationSet)>,
}

/// Reads the current release's migrations from artifact storage.
pub async fn load(ctx: &Context) -> Result<ReleaseMigrations, PhaseError> {
    let stored = StoredRelease::load(ctx).await?;
    let (release, manifest_digest) = (stored.release.clone(), stored.manifest_digest.clone());
    let Some(pin) = &stored.manifest.migrations else {
        tracing::info!(release = %release, "the release ships no migrations");
        return Ok(ReleaseMigrations { release, manifest_digest, migrations: None });
    };
    let digest = pin.artifact.digest.clone();
    let layer = stored
        .artifact_layer(
            &paths::migrations_ref(&release),
            &digest,
            release::MIGRATIONS_ARTIFACT_TYPE,
            release::MIGRATIONS_LAYER_TYPE,
            crate::db::migrations::MAX_UNPACKED_BYTES,
        )
        .await?;
    let origin = format!("release {release} migrations ({digest})");
    // The error's origin already names the digest; the resource says where the set was read.
    let resource = format!("{} {}", ctx.config.artifact_container, paths::migrations_ref(&release));
    let set = MigrationSet::from_tar_gz("release", &origin, &layer)
        .map_err(|e| PhaseError::bad_input(resource, e.to_string()))?;
    tracing::info!(release = %release, digest = %digest, files = set.migrations.len(), "release migrations read and verified");
    Ok(ReleaseMigrations { release, manifest_digest, migrations: Some((digest, set)) })
}
