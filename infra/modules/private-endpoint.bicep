// A private endpoint for one sub-resource of a PaaS resource, with its DNS zone group, so the
// zone gets the endpoint's A records. Every PaaS module uses it.

param location string
@description('Resource id of the PaaS resource.')
param targetId string
@description('The sub-resource (group id), e.g. vault, blob, registry.')
param groupId string
param subnetId string
@description('Resource ids of the private DNS zones that get the endpoint\'s records.')
param zoneIds array
param tags object = {}

var name = 'pe-${last(split(targetId, '/'))}-${toLower(groupId)}'

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [for zoneId in zoneIds: {
      name: replace(last(split(zoneId, '/')), '.', '-')
      properties: {
        privateDnsZoneId: zoneId
      }
    }]
  }
}

output id string = endpoint.id
