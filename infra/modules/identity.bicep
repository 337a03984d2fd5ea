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

// Registry Bootstrap lists each web app's settings (`POST {site}/config/appsettings/list`) to
// record configuration references; Reader's `*/read` does not cover that action, and the only
// built-in roles that do (Website Contributor, Contributor) can change the apps.
resource appSettingsReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'vibedata-app-settings-reader')
  properties: {
    roleName: 'Vibedata app settings reader ${uniqueString(resourceGroup().id)}'
    description: 'List the settings of the web apps in the platform resource group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Web/sites/config/list/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource appSettingsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, identity.id, appSettingsReaderRole.id)
  properties: {
    roleDefinitionId: appSettingsReaderRole.id
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
