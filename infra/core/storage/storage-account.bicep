// Storage for the Functions host (AzureWebJobsStorage, identity-based), the Flex Consumption
// deployment package, the Event Grid dead-letter container, Evidence Gate's shared state table
// (EVIDENCE_GATE_STATE, docs/state.md) and its intake queue with the poison queue
// (EVIDENCE_GATE_INTAKE, docs/deploy.md "Durable intake"). Shared-key access is disabled:
// every client authenticates with Entra ID.
@minLength(3)
@maxLength(24)
@description('Globally unique, 3-24 lowercase letters and digits.')
param name string
param location string = resourceGroup().location
param tags object = {}

@description('Blob containers to create (private).')
param containers array = []

@description('Tables to create.')
param tables array = []

@description('Queues to create.')
param queues array = []

@allowed([
  'Standard_LRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_ZRS'
  'Standard_GZRS'
])
param sku string = 'Standard_GRS'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its deployment package and host storage over the public endpoint; access is Entra-only (allowSharedKeyAccess false), there is no key to leak.
  // checkov:skip=CKV_AZURE_43: The name is 'stevgate' + uniqueString() (13 lowercase alphanumerics) = 21 characters, within the rule; checkov sometimes evaluates the un-interpolated template text instead (depends on its hash seed). tests/infra/test_templates.py checks the rule itself.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public network access is needed by the Functions host and Event Grid dead-lettering without a VNet; anonymous blob access and shared keys are disabled.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: sku
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tables: {
  parent: tableService
  name: table
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queues: {
  parent: queueService
  name: queue
}]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output queueEndpoint string = storage.properties.primaryEndpoints.queue
