// RFC-60 phase 9, DB Deployment: the Postgres flexible server (private endpoint only, Entra
// authentication only, vibedata-UAMI its Entra administrator), the platform database, then the
// database step (`vibedata-bootstrap run database`: the registry schema and the release's
// migrations).

param location string
param baseName string
param workspaceId string
param privateEndpointSubnetId string
param postgresZoneId string
@description('Name of vibedata-UAMI: the Postgres role the steps connect as.')
param identityName string
param principalId string
param stepPlatform object
@secure()
param binaryUri string
@description('The configuration every step gets; this module adds the Postgres keys.')
param stepConfig object
param retryAttempt int = 0
param tags object = {}

var databaseName = 'vibedata'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: 'psql-${baseName}'
  location: location
  tags: tags
  sku: {
    name: 'Standard_D2ds_v5'
    tier: 'GeneralPurpose'
  }
  properties: {
    version: '16'
    storage: {
      storageSizeGB: 64
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 14
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Disabled'
    }
    // No password exists: the steps sign in with Entra tokens (runtime-contracts.md §5).
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: tenant().tenantId
    }
  }
}

// Entra authentication stays off for a principal without this record (field-notes.md §5).
resource entraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: principalId
  properties: {
    principalName: identityName
    principalType: 'ServicePrincipal'
    tenantId: tenant().tenantId
  }
}

resource platformDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

module serverEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${server.name}-postgresqlserver'
  params: {
    location: location
    targetId: server.id
    groupId: 'postgresqlServer'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      postgresZoneId
    ]
    tags: tags
  }
}

resource serverDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: server
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

var postgresConfig = {
  VIBEDATA_POSTGRES_HOST: server.properties.fullyQualifiedDomainName
  VIBEDATA_POSTGRES_DATABASE: platformDatabase.name
  VIBEDATA_POSTGRES_USER: entraAdmin.properties.principalName
}

module step 'bootstrap-step.bicep' = {
  name: 'bootstrap-database'
  params: {
    location: location
    phase: 'database'
    platform: stepPlatform
    binaryUri: binaryUri
    config: union(stepConfig, postgresConfig)
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    serverEndpoint
    serverDiagnostics
  ]
}

output host string = server.properties.fullyQualifiedDomainName
output databaseName string = platformDatabase.name
output user string = entraAdmin.properties.principalName
output step object = step.outputs.result
