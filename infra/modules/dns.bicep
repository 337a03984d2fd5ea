// RFC-60 phase 4, DNS Infrastructure: the private DNS zones of every private endpoint, each
// linked to the platform VNet so that the deploymentScript containers, the apps and AKS resolve
// the platform's names to private addresses.

param vnetId string
param tags object = {}

// Key: how the other modules refer to a zone. Public-cloud zone names (Azure's "private endpoint
// DNS zone values" table); the storage ones follow the cloud's storage suffix.
var zones = {
  vault: 'privatelink.vaultcore.azure.net'
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  registry: 'privatelink.azurecr.io'
  postgres: 'privatelink.postgres.database.azure.com'
  automation: 'privatelink.azure-automation.net'
  sites: 'privatelink.azurewebsites.net'
  search: 'privatelink.search.windows.net'
  cognitive: 'privatelink.cognitiveservices.azure.com'
  openai: 'privatelink.openai.azure.com'
  aiServices: 'privatelink.services.ai.azure.com'
}

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = [for z in items(zones): {
  name: z.value
  location: 'global'
  tags: tags
}]

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (z, i) in items(zones): {
  parent: zone[i]
  name: 'vnet-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}]

@description('Zone resource ids by key (vault, blob, queue, table, registry, postgres, automation, sites, search, cognitive, openai, aiServices).')
// By resourceId(): a lambda cannot index a resource collection. Module outputs exist only once
// every zone and link has been deployed, so consumers still wait for all of them.
output zoneIds object = toObject(items(zones), z => z.key, z => resourceId('Microsoft.Network/privateDnsZones', z.value))
