//! The sovereign clouds a Marketplace install can land in, and what differs between them.
//!
//! `deploymentScripts` tell the container its cloud in `AZ_SCRIPTS_AZURE_ENVIRONMENT`; every
//! endpoint and token audience follows from that unless configuration overrides an endpoint
//! (as the local stack does).

use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    AzureCloud,
    AzureUSGovernment,
    AzureChinaCloud,
}

impl Cloud {
    pub fn parse(name: &str) -> Option<Cloud> {
        match name {
            "AzureCloud" => Some(Cloud::AzureCloud),
            "AzureUSGovernment" => Some(Cloud::AzureUSGovernment),
            "AzureChinaCloud" => Some(Cloud::AzureChinaCloud),
            _ => None,
        }
    }

    pub fn arm_endpoint(self) -> Url {
        let host = match self {
            Cloud::AzureCloud => "management.azure.com",
            Cloud::AzureUSGovernment => "management.usgovcloudapi.net",
            Cloud::AzureChinaCloud => "management.chinacloudapi.cn",
        };
        Url::parse(&format!("https://{host}/")).expect("static url")
    }

    /// Token audience for Resource Manager (also accepted by the ACR token exchange).
    pub fn arm_scope(self) -> String {
        format!("{}.default", self.arm_endpoint())
    }

    pub fn vault_suffix(self) -> &'static str {
        match self {
            Cloud::AzureCloud => "vault.azure.net",
            Cloud::AzureUSGovernment => "vault.usgovcloudapi.net",
            Cloud::AzureChinaCloud => "vault.azure.cn",
        }
    }

    pub fn vault_scope(self) -> String {
        format!("https://{}/.default", self.vault_suffix())
    }

    pub fn storage_suffix(self) -> &'static str {
        match self {
            Cloud::AzureCloud => "core.windows.net",
            Cloud::AzureUSGovernment => "core.usgovcloudapi.net",
            Cloud::AzureChinaCloud => "core.chinacloudapi.cn",
        }
    }

    /// Storage accepts the same audience in every cloud.
    pub fn storage_scope(self) -> &'static str {
        "https://storage.azure.com/.default"
    }

    pub fn acr_suffix(self) -> &'static str {
        match self {
            Cloud::AzureCloud => "azurecr.io",
            Cloud::AzureUSGovernment => "azurecr.us",
            Cloud::AzureChinaCloud => "azurecr.cn",
        }
    }

    /// AI Search's data-plane domain.
    pub fn search_suffix(self) -> &'static str {
        match self {
            Cloud::AzureCloud => "search.windows.net",
            Cloud::AzureUSGovernment => "search.windows.us",
            Cloud::AzureChinaCloud => "search.azure.cn",
        }
    }

    pub fn postgres_scope(self) -> &'static str {
        match self {
            Cloud::AzureCloud => "https://ossrdbms-aad.database.windows.net/.default",
            Cloud::AzureUSGovernment => "https://ossrdbms-aad.database.usgovcloudapi.net/.default",
            Cloud::AzureChinaCloud => "https://ossrdbms-aad.database.chinacloudapi.cn/.default",
        }
    }
}
