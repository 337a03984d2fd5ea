// RFC-60 phase 6, Foundation PaaS Services: the platform storage (blob, queue, table; artifact
// storage and the bootstrap ledger live here), the customer container registry, the Automation
// Account (no runbooks yet), the storage the deploymentScripts run on, and vibedata-UAMI's roles
// on each.

param location string
param baseName string
param workspaceId string
param privateEndpointSubnetId string
param scriptsSubnetId string
@description('Private DNS zone ids by key, from the DNS phase.')
param zoneIds object
param principalId string
param tags object = {}

// specs/permissions.md §2 (role definition names).
var roles = {
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  fileDataPrivilegedContributor: '69566ab7-960f-475b-8e7c-b3118f30c6bd'
  registryImporter: '577a9874-89fd-4f24-9dbd-b5034d0ad23a'
  registryPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  automationContributor: 'f353d9bd-d4a6-484e-a77a-8050b599b867'
}

var compactName = replace(baseName, '-', '')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${compactName}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    publicNetworkAccess: 'Disabled'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource artifactContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'artifacts'
}

resource ledgerContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'bootstrap-ledger'
}

// deploymentScripts mount a file share of this account into their container, which needs shared
// key access and, inside a VNet, a service endpoint rule for the scripts subnet: a private
// endpoint is not supported there (runtime-contracts.md §1.2, field-notes.md §1.2).
resource scriptsStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${take(compactName, 17)}ds'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      virtualNetworkRules: [
        {
          id: scriptsSubnetId
          action: 'Allow'
        }
      ]
    }
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: 'cr${compactName}'
  location: location
  tags: tags
  sku: {
    name: 'Premium'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Disabled'
    // importImage is performed by the registry service itself: a private registry must trust
    // Azure services or every import fails (runtime-contracts.md §3.2).
    networkRuleBypassOptions: 'AzureServices'
    policies: {
      azureADAuthenticationAsArmPolicy: {
        status: 'enabled'
      }
    }
  }
}

resource automation 'Microsoft.Automation/automationAccounts@2023-11-01' = {
  name: 'aa-${baseName}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'Basic'
    }
    publicNetworkAccess: false
    disableLocalAuth: true
  }
}

resource blobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.blobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Private-network deploymentScripts mount their file share with the identity.
resource scriptsFileContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scriptsStorage.id, principalId, roles.fileDataPrivilegedContributor)
  scope: scriptsStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.fileDataPrivilegedContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Import, pull and read-back of tags; also what the apps pull their images with.
resource registryImporter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roles.registryImporter)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.registryImporter)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The release's signature is carried into the registry by digest; where the registry has no
// referrers API its tag-schema index (sha256-<hex>) is pushed, which the importer role cannot do.
resource registryPush 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roles.registryPush)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.registryPush)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource automationContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(automation.id, principalId, roles.automationContributor)
  scope: automation
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.automationContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

module blobEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${storage.name}-blob'
  params: {
    location: location
    targetId: storage.id
    groupId: 'blob'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.blob
    ]
    tags: tags
  }
}

module queueEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${storage.name}-queue'
  params: {
    location: location
    targetId: storage.id
    groupId: 'queue'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.queue
    ]
    tags: tags
  }
}

module tableEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${storage.name}-table'
  params: {
    location: location
    targetId: storage.id
    groupId: 'table'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.table
    ]
    tags: tags
  }
}

module registryEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${registry.name}-registry'
  params: {
    location: location
    targetId: registry.id
    groupId: 'registry'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.registry
    ]
    tags: tags
  }
}

module automationEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${automation.name}-webhook'
  params: {
    location: location
    targetId: automation.id
    groupId: 'Webhook'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.automation
    ]
    tags: tags
  }
}

resource storageDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource scriptsStorageDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: scriptsStorage
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource registryDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: registry
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

resource automationDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: automation
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

output storageAccountName string = storage.name
output scriptsStorageAccountName string = scriptsStorage.name
output registryName string = registry.name
output registryLoginServer string = registry.properties.loginServer
output automationAccountName string = automation.name
