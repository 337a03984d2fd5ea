// RFC-60 phase 1, Prereqs and Identity: vibedata-UAMI, the one identity every bootstrap step runs
// as, and its resource-group baseline. Every later module assigns the roles on its own resources.

param location string
param name string
param tags object = {}

// Reader on the managed resource group: discovery (Registry Bootstrap), preflight's harmless
// reads and private endpoint resolution are all reads (specs/permissions.md §1).
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

resource groupReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, identity.id, readerRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: identity.properties.principalId
    // A fresh identity may not have replicated yet; naming the type avoids PrincipalNotFound.
    principalType: 'ServicePrincipal'
  }
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
