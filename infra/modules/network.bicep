// RFC-60 phase 3, Network Foundation: the VNet, its subnets and their NSGs.

param location string
param baseName string
@description('A /16; the subnets take fixed offsets inside it.')
param addressPrefix string
param workspaceId string
param tags object = {}

var scriptsSubnetName = 'snet-deployment-scripts'

// Where the bootstrap steps may go. The deploymentScript container pulls its image from MCR,
// signs in through Entra ID and ARM, reads the publisher registry (and the storage it
// redirects blob downloads to) and downloads the binary from the package's storage; everything
// else on the Internet is denied. Private endpoints are reached over VirtualNetwork.
var scriptsEgress = [
  {
    name: 'allow-entra-id'
    tag: 'AzureActiveDirectory'
  }
  {
    name: 'allow-resource-manager'
    tag: 'AzureResourceManager'
  }
  {
    name: 'allow-publisher-registry'
    tag: 'AzureContainerRegistry'
  }
  {
    name: 'allow-storage'
    tag: 'Storage'
  }
  {
    name: 'allow-mcr'
    tag: 'MicrosoftContainerRegistry'
  }
  {
    name: 'allow-mcr-data'
    tag: 'AzureFrontDoor.FirstParty'
  }
]

resource scriptsNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${baseName}-scripts'
  location: location
  tags: tags
  properties: {
    securityRules: concat(
      map(range(0, length(scriptsEgress)), i => {
        name: scriptsEgress[i].name
        properties: {
          priority: 100 + 10 * i
          direction: 'Outbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: scriptsEgress[i].tag
          destinationPortRange: '443'
        }
      }),
      [
        {
          name: 'deny-internet'
          properties: {
            priority: 4000
            direction: 'Outbound'
            access: 'Deny'
            protocol: '*'
            sourceAddressPrefix: '*'
            sourcePortRange: '*'
            destinationAddressPrefix: 'Internet'
            destinationPortRange: '*'
          }
        }
      ]
    )
  }
}

resource privateEndpointsNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${baseName}-pe'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-vnet-inbound'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: 'VirtualNetwork'
          destinationPortRange: '*'
        }
      }
      {
        name: 'deny-all-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource appsNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${baseName}-apps'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource aksNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${baseName}-aks'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

// Application Gateway v2 needs GatewayManager on 65200-65535 and the load balancer's probes.
resource appGatewayNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${baseName}-agw'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-gateway-manager'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'GatewayManager'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '65200-65535'
        }
      }
      {
        name: 'allow-load-balancer'
        properties: {
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: '*'
          sourceAddressPrefix: 'AzureLoadBalancer'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
      {
        name: 'allow-https-inbound'
        properties: {
          priority: 120
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '443'
        }
      }
      {
        name: 'allow-http-inbound'
        properties: {
          priority: 130
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '80'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: 'vnet-${baseName}'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-private-endpoints'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 1)
          networkSecurityGroup: {
            id: privateEndpointsNsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
      {
        name: 'snet-apps'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 2)
          networkSecurityGroup: {
            id: appsNsg.id
          }
          delegations: [
            {
              name: 'Microsoft.Web.serverFarms'
              properties: {
                serviceName: 'Microsoft.Web/serverFarms'
              }
            }
          ]
        }
      }
      {
        name: 'snet-appgateway'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 3)
          networkSecurityGroup: {
            id: appGatewayNsg.id
          }
        }
      }
      {
        name: scriptsSubnetName
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 4)
          networkSecurityGroup: {
            id: scriptsNsg.id
          }
          // The scripts' storage admits this subnet through a service endpoint (deploymentScripts
          // cannot mount a file share through a private endpoint).
          serviceEndpoints: [
            {
              service: 'Microsoft.Storage'
            }
          ]
          delegations: [
            {
              name: 'Microsoft.ContainerInstance.containerGroups'
              properties: {
                serviceName: 'Microsoft.ContainerInstance/containerGroups'
              }
            }
          ]
        }
      }
      {
        name: 'snet-aks'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 20, 1)
          networkSecurityGroup: {
            id: aksNsg.id
          }
        }
      }
    ]
  }
}

resource vnetDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vnet
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

resource scriptsNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: scriptsNsg
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource privateEndpointsNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: privateEndpointsNsg
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource appsNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: appsNsg
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource aksNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: aksNsg
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource appGatewayNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: appGatewayNsg
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

output vnetId string = vnet.id
output privateEndpointSubnetId string = '${vnet.id}/subnets/snet-private-endpoints'
output appsSubnetId string = '${vnet.id}/subnets/snet-apps'
output appGatewaySubnetId string = '${vnet.id}/subnets/snet-appgateway'
output scriptsSubnetId string = '${vnet.id}/subnets/${scriptsSubnetName}'
output aksSubnetId string = '${vnet.id}/subnets/snet-aks'
