//! A hosted version's image pull, as the platform would attempt it: the image must be in the
//! customer registry (the only registry the project's identity can pull from here). The
//! check runs in a task; the version stays `creating` until it has answered.

use std::sync::{Arc, OnceLock};

use crate::arm::import::parse_image;
use crate::oci_copy::{self, Auth, Registry, Side};
use crate::state::Shared;

/// `Ok`, or the version's `error` `(code, message)` (F4's codes).
pub type ImageCheck = OnceLock<Result<(), (String, String)>>;

/// The registry tokens the check mints name this subject.
const SUBJECT: &str = "foundry-hosted-agent";

/// Starts checking `image` (`<login server>/<repo>[:tag][@digest]`).
pub fn check(st: &Shared, image: &str) -> Arc<ImageCheck> {
    let result = Arc::new(ImageCheck::new());
    let (st, image, out) = (st.clone(), image.to_owned(), result.clone());
    tokio::spawn(async move {
        let _ = out.set(pull(&st, &image).await);
    });
    result
}

fn fail(code: &str, message: String) -> Result<(), (String, String)> {
    Err((code.to_owned(), message))
}

async fn pull(st: &Shared, image: &str) -> Result<(), (String, String)> {
    let cfg = &st.config;
    let login_server = &cfg.customer_registry.login_server;
    let (host, rest) = image.split_once('/').unwrap_or(("", image));
    let is_host = host.contains('.') || host.contains(':') || host == "localhost";
    if !is_host || !host.eq_ignore_ascii_case(login_server) {
        let shown = if is_host { host } else { "docker.io" };
        return fail(
            "RegistryNotFound",
            format!("The registry '{shown}' of image '{image}' was not found; hosted agent images must be in the project's Azure Container Registry ('{login_server}')."),
        );
    }
    let Some(reference) = parse_image(rest) else {
        return fail("image_pull_failed", format!("Failed to pull image '{image}': invalid reference format."));
    };
    let Some(ca) = &cfg.ca_file else {
        return fail("image_pull_failed", format!("Failed to pull image '{image}': the emulator has no caFile."));
    };
    let http =
        match std::fs::read(ca).map_err(|e| e.to_string()).and_then(|pem| oci_copy::client_for(login_server, &pem)) {
            Ok(h) => h,
            Err(e) => return fail("image_pull_failed", format!("Failed to pull image '{image}': {e}")),
        };
    let scope = format!("repository:{}:pull", reference.repo);
    let token = crate::acr_auth::service_access_token(st, SUBJECT, &[scope.as_str()]);
    let registry = Registry::new(login_server, http, Auth::Bearer(token), Side::Target);
    match registry.manifest_exists(&reference.repo, &reference.reference()).await {
        Ok(true) => Ok(()),
        Ok(false) => fail(
            "AcrImageNotFound",
            format!(
                "The image '{image}' was not found in registry '{login_server}': repository '{}', reference '{}'.",
                reference.repo,
                reference.reference()
            ),
        ),
        Err(e) => {
            let status = e.status.map(|s| format!(" ({s})")).unwrap_or_default();
            fail("image_pull_failed", format!("Failed to pull image '{image}': {}{status}: {}", e.context, e.detail))
        }
    }
}
