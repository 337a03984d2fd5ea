// The Vibedata Marketplace install: the fifteen RFC-60 phases, one module each, in the order that
// `vibedata-bootstrap plan --json` prints. Each module depends on the one before it (by using its
// outputs or by dependsOn), so ARM cannot start a phase before the previous one has finished;
// infra/verify checks that this graph gives exactly the plan's order.
//
// The phase modules are named after the plan's phase ids in camelCase (prereqs-identity ->
// prereqsIdentity). Imperative phases are a bootstrap step; mixed phases provision their resources
// and run their step inside their own module.
//
// Compiled to the package's mainTemplate.json by scripts/package, which also writes
// bootstrap.json (the binary's version and SHA-256) next to this file before `bicep build`.

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Lowercase letters and digits that start every resource name.')
@minLength(3)
@maxLength(10)
param namePrefix string

@description('Pull credential for the publisher registry (repository-scoped token password). Stored in Key Vault; the binary reads it from there.')
@secure()
param publisherPullCredential string

@description('Login server of the publisher registry.')
param publisherRegistry string = 'vibedatapublisher.azurecr.io'

@description('repository:tag of the release manifest in the publisher registry.')
param releaseManifest string = 'vibedata/release-manifest:latest'

@description('The publisher\'s root certificate(s), PEM, that the release manifest\'s Notary signature must chain to. The publisher pins them in the package; without them Artifact Bootstrap refuses to import (strict verification).')
param releaseTrustStore string = ''

@description('JSON array of the trusted release signers, each "x509.subject: C=.., O=.., CN=..".')
param releaseTrustedIdentities string = '[]'

@description('Raise to rerun every bootstrap step with unchanged inputs (it is part of each step\'s forceUpdateTag).')
@minValue(0)
param retryAttempt int = 0

@description('Address space of the platform VNet (a /16).')
param vnetAddressPrefix string = '10.20.0.0/16'

@description('Tags on every resource.')
param tags object = {}

@description('Base URI of the package\'s artifacts (set by the Managed Application service).')
param _artifactsLocation string = deployment().properties.templateLink.uri

@description('SAS token for the artifacts location, if it needs one.')
@secure()
param _artifactsLocationSasToken string = ''

// Written by scripts/package: {"version": "...", "sha256": "..."} of artifacts/vibedata-bootstrap.
var bootstrap = loadJsonContent('bootstrap.json')

var baseName = '${toLower(namePrefix)}-${take(uniqueString(resourceGroup().id), 6)}'

// The images the release must carry (RFC-60: "image list hardcoded in Bicep"); Artifact
// Bootstrap fails before importing anything when the manifest lacks one.
var images = [
  'vibedata/api'
  'vibedata/auth'
  'vibedata/catalog'
  'vibedata/exporter'
  'vibedata/gateway'
  'vibedata/health-probe'
  'vibedata/ingest'
  'vibedata/notifier'
  'vibedata/query-engine'
  'vibedata/scheduler'
  'vibedata/web'
  'vibedata/worker'
]

var publisherCredentialSecretName = 'publisher-pull-credential'
var canarySecretName = 'health-canary'

// What every bootstrap step needs (requiredConfig "every run" keys in plan --json).
var commonConfig = {
  VIBEDATA_SUBSCRIPTION_ID: subscription().subscriptionId
  VIBEDATA_RESOURCE_GROUP: resourceGroup().name
  VIBEDATA_TENANT_ID: tenant().tenantId
  VIBEDATA_LOCATION: location
  VIBEDATA_IDENTITY_CLIENT_ID: prereqsIdentity.outputs.clientId
  VIBEDATA_STORAGE_ACCOUNT: foundationPaas.outputs.storageAccountName
  VIBEDATA_KEY_VAULT_NAME: coreSecurity.outputs.keyVaultName
}

var artifactsConfig = {
  VIBEDATA_ACR_NAME: foundationPaas.outputs.registryName
  VIBEDATA_PUBLISHER_REGISTRY: publisherRegistry
  VIBEDATA_PUBLISHER_CREDENTIAL_SECRET: publisherCredentialSecretName
  VIBEDATA_IMAGES: join(images, ',')
  VIBEDATA_RELEASE_MANIFEST: releaseManifest
  VIBEDATA_RELEASE_TRUST_STORE: releaseTrustStore
  VIBEDATA_RELEASE_TRUSTED_IDENTITIES: releaseTrustedIdentities
}

var automationConfig = {
  VIBEDATA_AUTOMATION_ACCOUNT: foundationPaas.outputs.automationAccountName
}

var databaseConfig = {
  VIBEDATA_POSTGRES_HOST: database.outputs.host
  VIBEDATA_POSTGRES_DATABASE: database.outputs.databaseName
  VIBEDATA_POSTGRES_USER: database.outputs.user
}

var healthConfig = {
  VIBEDATA_HEALTH_CANARY_SECRET: coreSecurity.outputs.canarySecretName
}

// Names fixed here rather than read from the airbyte module's outputs: the function app
// (phase 10) carries them too, and it is laid down before AKS (phase 11).
var aksClusterName = 'aks-${baseName}'
var airbyteStorageAccountName = 'st${take(replace(baseName, '-', ''), 17)}ab'

var foundryName = 'ais-${baseName}'
var foundryProjectName = 'vibedata'
var searchName = 'srch-${baseName}'

var aiConfig = {
  VIBEDATA_SEARCH_SERVICE: searchName
  VIBEDATA_FOUNDRY_ACCOUNT: foundryName
  VIBEDATA_FOUNDRY_PROJECT: foundryProjectName
  VIBEDATA_ACR_NAME: foundationPaas.outputs.registryName
}

var airbyteConfig = {
  VIBEDATA_AKS_CLUSTER: aksClusterName
  VIBEDATA_AIRBYTE_STORAGE_ACCOUNT: airbyteStorageAccountName
  VIBEDATA_ACR_NAME: foundationPaas.outputs.registryName
}

// What every bootstrap step is given besides its phase and configuration.
var stepPlatform = {
  identityId: prereqsIdentity.outputs.id
  subnetId: network.outputs.scriptsSubnetId
  storageAccountName: foundationPaas.outputs.scriptsStorageAccountName
  binarySha256: bootstrap.sha256
}

// Carries the SAS token: only ever passed to @secure() parameters.
var binaryUri = uri(_artifactsLocation, 'artifacts/vibedata-bootstrap${_artifactsLocationSasToken}')
var functionsPackageUri = uri(_artifactsLocation, 'artifacts/functions.zip${_artifactsLocationSasToken}')

// 1. Prereqs and Identity
module prereqsIdentity 'modules/identity.bicep' = {
  name: 'rfc60-01-prereqs-identity'
  params: {
    location: location
    name: 'id-${baseName}'
    tags: tags
  }
}

// 2. Observability Foundation
module observability 'modules/observability.bicep' = {
  name: 'rfc60-02-observability'
  params: {
    location: location
    name: 'log-${baseName}'
    tags: tags
  }
  dependsOn: [
    prereqsIdentity
  ]
}

// 3. Network Foundation
module network 'modules/network.bicep' = {
  name: 'rfc60-03-network'
  params: {
    location: location
    baseName: baseName
    addressPrefix: vnetAddressPrefix
    workspaceId: observability.outputs.workspaceId
    tags: tags
  }
}

// 4. DNS Infrastructure
module dns 'modules/dns.bicep' = {
  name: 'rfc60-04-dns'
  params: {
    vnetId: network.outputs.vnetId
    tags: tags
  }
}

// 5. Core Security
module coreSecurity 'modules/key-vault.bicep' = {
  name: 'rfc60-05-core-security'
  params: {
    location: location
    name: 'kv-${baseName}'
    workspaceId: observability.outputs.workspaceId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    vaultZoneId: dns.outputs.zoneIds.vault
    principalId: prereqsIdentity.outputs.principalId
    publisherPullCredential: publisherPullCredential
    publisherCredentialSecretName: publisherCredentialSecretName
    canarySecretName: canarySecretName
    tags: tags
  }
}

// 6. Foundation PaaS Services
module foundationPaas 'modules/foundation.bicep' = {
  name: 'rfc60-06-foundation-paas'
  params: {
    location: location
    baseName: baseName
    workspaceId: observability.outputs.workspaceId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    scriptsSubnetId: network.outputs.scriptsSubnetId
    zoneIds: dns.outputs.zoneIds
    principalId: prereqsIdentity.outputs.principalId
    tags: tags
  }
  dependsOn: [
    coreSecurity
  ]
}

// 7. Artifact Bootstrap
module artifacts 'modules/bootstrap-step.bicep' = {
  name: 'rfc60-07-artifacts'
  params: {
    location: location
    phase: 'artifacts'
    platform: stepPlatform
    binaryUri: binaryUri
    config: union(commonConfig, artifactsConfig)
    retryAttempt: retryAttempt
    timeout: 'PT2H'
    tags: tags
  }
}

// 8. Runbook Bootstrap
module runbooks 'modules/bootstrap-step.bicep' = {
  name: 'rfc60-08-runbooks'
  params: {
    location: location
    phase: 'runbooks'
    platform: stepPlatform
    binaryUri: binaryUri
    config: union(commonConfig, automationConfig)
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    artifacts
  ]
}

// 9. DB Deployment
module database 'modules/database.bicep' = {
  name: 'rfc60-09-database'
  params: {
    location: location
    baseName: baseName
    workspaceId: observability.outputs.workspaceId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    postgresZoneId: dns.outputs.zoneIds.postgres
    identityName: prereqsIdentity.outputs.name
    principalId: prereqsIdentity.outputs.principalId
    stepPlatform: stepPlatform
    binaryUri: binaryUri
    stepConfig: commonConfig
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    runbooks
  ]
}

// 10. App Deployment
module apps 'modules/apps.bicep' = {
  name: 'rfc60-10-apps'
  params: {
    location: location
    baseName: baseName
    workspaceId: observability.outputs.workspaceId
    appsSubnetId: network.outputs.appsSubnetId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    sitesZoneId: dns.outputs.zoneIds.sites
    identityId: prereqsIdentity.outputs.id
    identityClientId: prereqsIdentity.outputs.clientId
    principalId: prereqsIdentity.outputs.principalId
    storageAccountName: foundationPaas.outputs.storageAccountName
    registryLoginServer: foundationPaas.outputs.registryLoginServer
    release: artifacts.outputs.release
    functionsPackageUri: functionsPackageUri
    // The handler runs the same phases over HTTP, so it gets the same configuration.
    vibedataConfig: union(commonConfig, artifactsConfig, automationConfig, databaseConfig, airbyteConfig, aiConfig, healthConfig)
    tags: tags
  }
}

// 11. Airbyte Deployment
module airbyte 'modules/airbyte.bicep' = {
  name: 'rfc60-11-airbyte'
  params: {
    location: location
    baseName: baseName
    clusterName: aksClusterName
    airbyteStorageAccountName: airbyteStorageAccountName
    workspaceId: observability.outputs.workspaceId
    aksSubnetId: network.outputs.aksSubnetId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    blobZoneId: dns.outputs.zoneIds.blob
    principalId: prereqsIdentity.outputs.principalId
    stepPlatform: stepPlatform
    binaryUri: binaryUri
    // Airbyte keeps its own database and role on the platform's server.
    stepConfig: union(commonConfig, databaseConfig, airbyteConfig)
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    apps
  ]
}

// 12. App GW Deployment
module appGateway 'modules/app-gateway.bicep' = {
  name: 'rfc60-12-app-gateway'
  params: {
    location: location
    baseName: baseName
    workspaceId: observability.outputs.workspaceId
    subnetId: network.outputs.appGatewaySubnetId
    portalHostName: apps.outputs.portalHostName
    apiHostName: apps.outputs.apiHostName
    tags: tags
  }
  dependsOn: [
    airbyte
  ]
}

// 13. AI Deployment
module ai 'modules/ai.bicep' = {
  name: 'rfc60-13-ai'
  params: {
    location: location
    baseName: baseName
    foundryName: foundryName
    projectName: foundryProjectName
    searchName: searchName
    // The release's project index assets (sample: foundry/indexes/docs-index.json) name it.
    searchConnectionName: 'vibedata-search'
    workspaceId: observability.outputs.workspaceId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    zoneIds: dns.outputs.zoneIds
    principalId: prereqsIdentity.outputs.principalId
    stepPlatform: stepPlatform
    binaryUri: binaryUri
    stepConfig: union(commonConfig, aiConfig)
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    appGateway
  ]
}

// 14. Registry Bootstrap
module registry 'modules/bootstrap-step.bicep' = {
  name: 'rfc60-14-registry'
  params: {
    location: location
    phase: 'registry'
    platform: stepPlatform
    binaryUri: binaryUri
    config: union(commonConfig, databaseConfig)
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    ai
  ]
}

// 15. Health Bootstrap
module health 'modules/bootstrap-step.bicep' = {
  name: 'rfc60-15-health'
  params: {
    location: location
    phase: 'health'
    platform: stepPlatform
    binaryUri: binaryUri
    config: union(commonConfig, automationConfig, databaseConfig, healthConfig)
    retryAttempt: retryAttempt
    tags: tags
  }
  dependsOn: [
    registry
  ]
}

output identityResourceId string = prereqsIdentity.outputs.id
output keyVaultName string = coreSecurity.outputs.keyVaultName
output registryLoginServer string = foundationPaas.outputs.registryLoginServer
output release string = artifacts.outputs.release
output appGatewayPublicIp string = appGateway.outputs.publicIpAddress
output health object = health.outputs.result
