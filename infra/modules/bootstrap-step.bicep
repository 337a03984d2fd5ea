// One imperative RFC-60 step: a deploymentScript that downloads vibedata-bootstrap from the
// package's artifacts, checks its SHA-256, runs `--version` and then `run <phase>`
// (scripts/bootstrap-entry.sh). Every imperative phase uses this module and nothing else.

@description('Region of the script resource.')
param location string

@description('The step to run: `vibedata-bootstrap run <phase>`.')
@allowed([
  'artifacts'
  'runbooks'
  'database'
  'airbyte'
  'ai'
  'registry'
  'health'
])
param phase string

@description('identityId, subnetId, storageAccountName (the scripts\' storage) and binarySha256.')
param platform object

@description('Where to download vibedata-bootstrap; it carries the artifacts\' SAS token.')
@secure()
param binaryUri string

@description('VIBEDATA_* configuration, passed as environment variables.')
param config object

@description('VIBEDATA_* values that are secrets, passed as secureValue (never returned by ARM).')
@secure()
param secureConfig object = {}

@description('Part of forceUpdateTag: raise it to rerun the step with unchanged inputs.')
param retryAttempt int = 0

@description('ISO 8601 limit of one run.')
param timeout string = 'PT1H'

param tags object = {}

// The images up to azure-cli 2.63.0 were Alpine (musl), where the glibc binary cannot start; from
// 2.65.0 on they are Azure Linux 3. This is the version the AVM deployment-script modules pin.
var azCliVersion = '2.84.0'

var scriptEnvironment = concat(
  [
    {
      name: 'BOOTSTRAP_PHASE'
      value: phase
    }
    {
      name: 'BOOTSTRAP_BINARY_SHA256'
      value: platform.binarySha256
    }
    {
      // The URI carries the artifacts' SAS token.
      name: 'BOOTSTRAP_BINARY_URL'
      secureValue: binaryUri
    }
  ],
  map(items(config), item => {
    name: item.key
    value: string(item.value)
  }),
  map(items(secureConfig), item => {
    name: item.key
    secureValue: string(item.value)
  })
)

// Same inputs and binary: same tag, so an unchanged redeploy does not rerun the step; any changed
// input, a new binary or a raised retryAttempt reruns it.
var forceUpdateTag = uniqueString(phase, string(config), platform.binarySha256, string(retryAttempt))

resource step 'Microsoft.Resources/deploymentScripts@2023-08-01' = {
  name: 'bootstrap-${phase}'
  location: location
  tags: tags
  kind: 'AzureCLI'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${platform.identityId}': {}
    }
  }
  properties: {
    azCliVersion: azCliVersion
    scriptContent: loadTextContent('../../scripts/bootstrap-entry.sh')
    environmentVariables: scriptEnvironment
    forceUpdateTag: forceUpdateTag
    timeout: timeout
    retentionInterval: 'PT26H'
    cleanupPreference: 'OnSuccess'
    containerSettings: {
      // One container group per phase: two scripts sharing a name conflict while one runs.
      containerGroupName: 'bootstrap-${phase}-${uniqueString(resourceGroup().id)}'
      subnetIds: [
        {
          id: platform.subnetId
        }
      ]
    }
    storageAccountSettings: {
      storageAccountName: platform.storageAccountName
    }
  }
}

@description('The step\'s outputs object (phase, status, changes, summary).')
output result object = step.properties.outputs

@description('The release the step worked on, where its summary names one.')
output release string = step.properties.outputs.?summary.?release ?? ''
