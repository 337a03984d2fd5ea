// RFC-60 phase 11, Airbyte Deployment: the private AKS cluster, the storage Airbyte keeps its
// logs and state in, vibedata-UAMI's roles, then the Airbyte step (`vibedata-bootstrap run
// airbyte`: the release's Helm chart through ARM runCommand, specs/aks-runcommand.md).

param location string
param baseName string
@description('The cluster\'s name; main.bicep fixes it, since the function app names it too.')
param clusterName string
@description('The storage account Airbyte keeps logs and state in; main.bicep fixes it likewise.')
param airbyteStorageAccountName string
param workspaceId string
param aksSubnetId string
param privateEndpointSubnetId string
param blobZoneId string
param principalId string
param stepPlatform object
@secure()
param binaryUri string
param stepConfig object
param retryAttempt int = 0
param tags object = {}

var roles = {
  // In-cluster: the chart creates a namespace, Roles and RoleBindings (aks-runcommand.md).
  aksRbacClusterAdmin: 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b'
  // The step creates Airbyte's Blob containers with its own token.
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  networkContributor: '4d97b98b-1d4f-4787-a291-c67834d212e7'
}


resource aksSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-05-01' existing = {
  name: '${split(aksSubnetId, '/')[8]}/${last(split(aksSubnetId, '/'))}'
}

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' = {
  name: clusterName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  sku: {
    name: 'Base'
    tier: 'Standard'
  }
  properties: {
    dnsPrefix: 'aks-${baseName}'
    enableRBAC: true
    disableLocalAccounts: true
    aadProfile: {
      managed: true
      enableAzureRBAC: true
      tenantID: tenant().tenantId
    }
    apiServerAccessProfile: {
      enablePrivateCluster: true
      privateDNSZone: 'system'
      enablePrivateClusterPublicFQDN: false
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      podCidr: '192.168.0.0/16'
      serviceCidr: '172.16.0.0/16'
      dnsServiceIP: '172.16.0.10'
      outboundType: 'loadBalancer'
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        count: 3
        vmSize: 'Standard_D4ds_v5'
        osType: 'Linux'
        type: 'VirtualMachineScaleSets'
        vnetSubnetID: aksSubnetId
      }
    ]
    addonProfiles: {
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: workspaceId
        }
      }
    }
  }
}

// The cluster's identity manages load balancers and NICs in its subnet.
resource clusterNetwork 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(aksSubnet.id, cluster.id, roles.networkContributor)
  scope: aksSubnet
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.networkContributor)
    principalId: cluster.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// No built-in role holds exactly runCommand, its results and the cluster read; the one that
// does also hands out admin credentials (aks-runcommand.md).
resource runCommandRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'vibedata-aks-run-command')
  properties: {
    roleName: 'Vibedata AKS run command ${uniqueString(resourceGroup().id)}'
    description: 'Run commands on the platform AKS cluster through ARM and read their results.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerService/managedClusters/read'
          'Microsoft.ContainerService/managedClusters/runCommand/action'
          'Microsoft.ContainerService/managedClusters/commandResults/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource runCommand 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, runCommandRole.id)
  scope: cluster
  properties: {
    roleDefinitionId: runCommandRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource clusterAdmin 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, roles.aksRbacClusterAdmin)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksRbacClusterAdmin)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Airbyte's chart reaches Blob only with a connection string (no Entra option), so this
// account keeps shared keys, unlike the platform storage; it is still private-endpoint only.
resource airbyteStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: airbyteStorageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    publicNetworkAccess: 'Disabled'
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource airbyteBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: airbyteStorage
  name: 'default'
}

// The step reads the connection string through listKeys for the chart's values.
resource listKeysRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'vibedata-storage-list-keys')
  properties: {
    roleName: 'Vibedata storage list keys ${uniqueString(resourceGroup().id)}'
    description: 'Read a storage account and list its keys.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/read'
          'Microsoft.Storage/storageAccounts/listkeys/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource listKeys 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(airbyteStorage.id, principalId, listKeysRole.id)
  scope: airbyteStorage
  properties: {
    roleDefinitionId: listKeysRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }

resource blobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(airbyteStorage.id, principalId, roles.storageBlobDataContributor)
  scope: airbyteStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
}

module airbyteBlobEndpoint 'private-endpoint.bicep' = {
  name: 'pe-${airbyteStorage.name}-blob'
  params: {
    location: location
    targetId: airbyteStorage.id
    groupId: 'blob'
    subnetId: privateEndpointSubnetId
    zoneIds: [
      blobZoneId
    ]
    tags: tags
  }
}

resource clusterDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: cluster
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

resource airbyteStorageDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: airbyteStorage
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

resource airbyteBlobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: airbyteBlobService
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

module step 'bootstrap-step.bicep' = {
  name: 'bootstrap-airbyte'
  params: {
    location: location
    phase: 'airbyte'
    platform: stepPlatform
    binaryUri: binaryUri
    config: stepConfig
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    clusterNetwork
    runCommand
    clusterAdmin
    listKeys
    blobContributor
    airbyteBlobEndpoint
    clusterDiagnostics
    airbyteStorageDiagnostics
    airbyteBlobDiagnostics
  ]
}

output clusterName string = cluster.name
output airbyteStorageAccountName string = airbyteStorage.name
output step object = step.outputs.result
