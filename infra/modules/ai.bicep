// RFC-60 phase 13, AI Deployment: the Foundry resource (AI Services account; RFC-60's "Hub")
// with the platform project, AI Search with Entra authentication, the project's connection to
// Search, the roles, then the AI step (`vibedata-bootstrap run ai`: Search indexes, project
// index assets and agents, specs/ai-search-foundry.md).

param location string
param baseName string
@description('The Foundry resource, project and Search service names; main.bicep fixes them, since the function app names them too.')
param foundryName string
param projectName string
param searchName string
@description('The project connection to Search, as the release\'s index assets name it.')
param searchConnectionName string
param workspaceId string
param privateEndpointSubnetId string
@description('Private DNS zone ids by key, from the DNS phase.')
param zoneIds object
param principalId string
param stepPlatform object
@secure()
param binaryUri string
param stepConfig object
param retryAttempt int = 0
param tags object = {}

// specs/ai-search-foundry.md and specs/permissions.md; matched by GUID, names change.
var roles = {
  searchServiceContributor: '7ca78c08-252a-4471-8644-bb5ff32d4ba0'
  searchIndexDataContributor: '8ebe5a00-799e-43f5-93ac-243d3dce84a7'
  searchIndexDataReader: '1407120a-92aa-4202-b7e9-c0e197c71c8f'
  foundryUser: '53ca6127-db72-4b80-b1b0-d745d6d5456d'
  foundryProjectManager: 'eadc314b-1a2d-4efa-be10-5d325db5065e'
}

resource foundry 'Microsoft.CognitiveServices/accounts@2025-06-01' = {
  name: foundryName
  location: location
  tags: tags
  kind: 'AIServices'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: foundryName
    allowProjectManagement: true
    publicNetworkAccess: 'Disabled'
    disableLocalAuth: true
    networkAcls: {
      defaultAction: 'Deny'
    }
  }
}

resource project 'Microsoft.CognitiveServices/accounts/projects@2025-06-01' = {
  parent: foundry
  name: projectName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Vibedata'
    description: 'The Vibedata platform project.'
  }
}

resource search 'Microsoft.Search/searchServices@2023-11-01' = {
  name: searchName
  location: location
  tags: tags
  sku: {
    name: 'standard'
  }
  properties: {
    replicaCount: 1
    partitionCount: 1
    hostingMode: 'default'
    publicNetworkAccess: 'disabled'
    // Bearer tokens work only once Entra authentication is on; keys stay for the portal.
    authOptions: {
      aadOrApiKey: {
        aadAuthFailureMode: 'http401WithBearerChallenge'
      }
    }
  }
}

resource searchConnection 'Microsoft.CognitiveServices/accounts/projects/connections@2025-06-01' = {
  parent: project
  name: searchConnectionName
  properties: {
    category: 'CognitiveSearch'
    target: 'https://${search.name}.search.windows.net'
    authType: 'AAD'
    metadata: {
      ApiType: 'Azure'
      ResourceId: search.id
      location: location
    }
  }
}

resource searchContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(search.id, principalId, roles.searchServiceContributor)
  scope: search
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.searchServiceContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource searchDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(search.id, principalId, roles.searchIndexDataContributor)
  scope: search
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.searchIndexDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The project's agents query the indexes through the connection with the project's identity.
resource projectSearchReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(search.id, project.id, roles.searchIndexDataReader)
  scope: search
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.searchIndexDataReader)
    principalId: project.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource foundryUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(foundry.id, principalId, roles.foundryUser)
  scope: foundry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.foundryUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource foundryProjectManager 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(foundry.id, principalId, roles.foundryProjectManager)
  scope: foundry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.foundryProjectManager)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

module foundryEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${foundry.name}-account'
  params: {
    location: location
    targetId: foundry.id
    groupId: 'account'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.cognitive
      zoneIds.openai
      zoneIds.aiServices
    ]
    tags: tags
  }
}

module searchEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${search.name}-searchservice'
  params: {
    location: location
    targetId: search.id
    groupId: 'searchService'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      zoneIds.search
    ]
    tags: tags
  }
}

resource foundryDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: foundry
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

resource searchDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: search
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

module step 'bootstrap-step.bicep' = {
  name: 'bootstrap-ai'
  params: {
    location: location
    phase: 'ai'
    platform: stepPlatform
    binaryUri: binaryUri
    config: stepConfig
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    searchConnection
    searchContributor
    searchDataContributor
    projectSearchReader
    foundryUser
    foundryProjectManager
    foundryEndpoint
    searchEndpoint
    foundryDiagnostics
    searchDiagnostics
  ]
}

output foundryName string = foundry.name
output projectEndpoint string = project.properties.endpoints['AI Foundry API']
output searchName string = search.name
output step object = step.outputs.result
