// RFC-60 phase 10, App Deployment: the App Service plan, the portal and API apps (images of the
// release that Artifact Bootstrap imported) and the function app that runs
// `vibedata-bootstrap serve` as a Functions custom handler. All private: VNet integration for
// egress, a private endpoint for ingress.

param location string
param baseName string
param workspaceId string
param appsSubnetId string
param privateEndpointSubnetId string
param sitesZoneId string
param identityId string
param identityClientId string
param principalId string
@description('The platform storage account; the function host keeps its state there.')
param storageAccountName string
param registryLoginServer string
@description('The release Artifact Bootstrap imported: the images\' tag.')
param release string
@description('WEBSITE_RUN_FROM_PACKAGE: the function app\'s zip in the package\'s artifacts (carries the SAS token).')
@secure()
param functionsPackageUri string
@description('VIBEDATA_* configuration of the handler: the same the bootstrap steps get.')
param vibedataConfig object
param tags object = {}

// The Functions host with an identity-based AzureWebJobsStorage needs blob (leases, timers),
// queue and table access on its storage account.
var hostStorageRoles = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
]

var webApps = {
  portal: 'vibedata/web'
  api: 'vibedata/api'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'asp-${baseName}'
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: 'P1v3'
    tier: 'PremiumV3'
  }
  properties: {
    reserved: true
  }
}

resource portal 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app-${baseName}-portal'
  location: location
  tags: tags
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Disabled'
    virtualNetworkSubnetId: appsSubnetId
    vnetRouteAllEnabled: true
    siteConfig: {
      linuxFxVersion: 'DOCKER|${registryLoginServer}/${webApps.portal}:${release}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identityClientId
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      healthCheckPath: '/health'
    }
  }
}

resource api 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app-${baseName}-api'
  location: location
  tags: tags
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Disabled'
    virtualNetworkSubnetId: appsSubnetId
    vnetRouteAllEnabled: true
    siteConfig: {
      linuxFxVersion: 'DOCKER|${registryLoginServer}/${webApps.api}:${release}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identityClientId
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      healthCheckPath: '/health'
      appSettings: [
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
      ]
    }
  }
}

// The handler: host.json and one folder per function in the zip, the binary as the handler.
var functionSettings = concat(
  [
    {
      name: 'FUNCTIONS_EXTENSION_VERSION'
      value: '~4'
    }
    {
      name: 'FUNCTIONS_WORKER_RUNTIME'
      value: 'custom'
    }
    {
      name: 'WEBSITE_RUN_FROM_PACKAGE'
      value: functionsPackageUri
    }
    {
      name: 'AzureWebJobsStorage__accountName'
      value: storage.name
    }
    {
      name: 'AzureWebJobsStorage__credential'
      value: 'managedidentity'
    }
    {
      name: 'AzureWebJobsStorage__clientId'
      value: identityClientId
    }
    {
      // The health timer's NCRONTAB (functions/health/function.json reads %VIBEDATA_HEALTH_SCHEDULE%).
      name: 'VIBEDATA_HEALTH_SCHEDULE'
      value: '0 */15 * * * *'
    }
  ],
  map(items(vibedataConfig), item => {
    name: item.key
    value: string(item.value)
  })
)

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${baseName}'
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Disabled'
    virtualNetworkSubnetId: appsSubnetId
    vnetRouteAllEnabled: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      alwaysOn: true
      appSettings: functionSettings
    }
  }
  dependsOn: [
    hostStorage
  ]
}

resource hostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in hostStorageRoles: {
  name: guid(storage.id, principalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

module portalEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${portal.name}-sites'
  params: {
    location: location
    targetId: portal.id
    groupId: 'sites'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      sitesZoneId
    ]
    tags: tags
  }
}

module apiEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${api.name}-sites'
  params: {
    location: location
    targetId: api.id
    groupId: 'sites'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      sitesZoneId
    ]
    tags: tags
  }
}

module functionEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${functionApp.name}-sites'
  params: {
    location: location
    targetId: functionApp.id
    groupId: 'sites'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      sitesZoneId
    ]
    tags: tags
  }
}

resource planDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: plan
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource portalDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: portal
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

resource apiDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: api
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

resource functionDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionApp
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

output portalHostName string = portal.properties.defaultHostName
output apiHostName string = api.properties.defaultHostName
output functionAppName string = functionApp.name
