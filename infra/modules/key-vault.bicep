// RFC-60 phase 5, Core Security: the platform's Key Vault (RBAC, private only, soft delete and
// purge protection), the publisher pull credential, the health canary, and vibedata-UAMI's role.

param location string
param name string
param workspaceId string
param privateEndpointSubnetId string
param vaultZoneId string
param principalId string
@secure()
param publisherPullCredential string
param publisherCredentialSecretName string
param canarySecretName string
param tags object = {}

// Key Vault Secrets Officer: the steps read the pull credential and the canary, and Airbyte
// keeps the password it generates for its database role here (specs/permissions.md §1).
var secretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource pullCredential 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: publisherCredentialSecretName
  properties: {
    value: publisherPullCredential
    contentType: 'publisher registry pull credential'
  }
}

// Health Bootstrap reads this secret to prove the vault answers through its private endpoint.
// Its value is not a secret; it is unique per deployment so a stale vault is noticed.
resource canary 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: canarySecretName
  properties: {
    value: guid(vault.id, canarySecretName)
    contentType: 'health canary'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, secretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

module vaultEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${name}-vault'
  params: {
    location: location
    targetId: vault.id
    groupId: 'vault'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      vaultZoneId
    ]
    tags: tags
  }
}

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output keyVaultName string = vault.name
output keyVaultUri string = vault.properties.vaultUri
output canarySecretName string = canary.name
