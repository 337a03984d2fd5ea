//! A storage account's management plane: its keys, for the one consumer that takes nothing but
//! a connection string (Airbyte's chart).

use reqwest::Method;
use serde::Deserialize;

use super::arm::{decode, Arm};
use super::identity::Secret;
use super::permission::Permission;
use super::pipeline::Request;
use super::AzureError;

pub const API_VERSION: &str = "2023-05-01";

/// [`first_key`].
pub const LIST_KEYS: Permission =
    Permission::action("Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Storage/storageAccounts");

#[derive(Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<Key>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Key {
    #[serde(default)]
    key_name: String,
    value: String,
}

/// `POST …/storageAccounts/{name}/listKeys`: the first key. A read that ARM models as an action;
/// it changes nothing.
pub async fn first_key(arm: &Arm, subscription: &str, group: &str, account: &str) -> Result<Secret, AzureError> {
    let path = format!(
        "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}/listKeys"
    );
    // Safe to repeat: listing keys changes nothing.
    let req = Request::new(Method::POST, arm.url(&path, API_VERSION), &path, &LIST_KEYS).idempotent();
    let resp = arm.send(req).await?;
    let keys: Keys = decode(resp, &path).await?;
    match keys.keys.into_iter().find(|k| k.key_name == "key1") {
        Some(k) => Ok(Secret::new(k.value)),
        None => Err(AzureError::Decode { resource: path, detail: "listKeys returned no key1".into() }),
    }
}

/// The connection string Azure's SDKs and Airbyte read. The blob endpoint is given explicitly,
/// so a sovereign cloud or the local stack need no suffix guessing.
pub fn connection_string(account: &str, key: &Secret, blob_endpoint: &url::Url) -> Secret {
    Secret::new(format!(
        "DefaultEndpointsProtocol=https;AccountName={account};AccountKey={};BlobEndpoint={}",
        key.expose(),
        blob_endpoint.as_str().trim_end_matches('/')
    ))
}
