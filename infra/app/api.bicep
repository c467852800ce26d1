// The Evidence Gate Function App on the Flex Consumption plan (Linux, Python 3.11).
// Every connection is identity-based through one user-assigned identity; secrets are Key Vault
// references resolved with that identity. The app settings below are checked against the
// settings table of the code (shared/settings.py) by tests/infra/test_settings_contract.py.
param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('azd service name this app hosts (azure.yaml).')
param serviceName string = 'api'

param identityId string
param identityClientId string

param storageAccountName string
@description('The shared state table on the storage account (EVIDENCE_GATE_STATE_TABLE).')
param stateTableName string = 'evidencegate'
@description('The durable intake queue on the storage account (EVIDENCE_GATE_INTAKE_QUEUE); its poison queue is <name>-poison.')
param intakeQueueName string = 'evidence-gate-intake'
param deploymentContainerName string
param applicationInsightsConnectionString string
param keyVaultUri string
param serviceBusFullyQualifiedNamespace string
param topicName string
param logAnalyticsCustomerId string

@description('Default registry (MLFLOW_TRACKING_URI).')
param mlflowTrackingUri string
@description('Registries the reconcile timer sweeps, comma-separated (EVIDENCE_GATE_REGISTRIES).')
param registries string
@description('Region of the Azure ML workspace (EVIDENCE_GATE_AZUREML_REGION).')
param azuremlRegion string
param databricksHost string = ''
@description('Unity Catalog schemas and catalogs the reconcile sweep lists, comma-separated (EVIDENCE_GATE_UC_SCHEMAS); empty: every model the identity may see.')
param ucSchemas string = ''
@description('Other Databricks workspaces where a Unity Catalog version\'s run is read, <workspace id>=<host>, comma-separated (EVIDENCE_GATE_DATABRICKS_WORKSPACES).')
param databricksWorkspaces string = ''
param databricksClientId string = ''
param databricksJobsWebhookUsername string = ''
@description('Policy file path inside the deployed package, e.g. /home/site/wwwroot/policy.yaml; empty uses the built-in default policy.')
param policyPath string = ''
param waiversPath string = ''
param reconcileSchedule string = '0 */15 * * * *'

// 512 MB: one function process peaks at 149 MB after 1,000 checks with every registry backend
// loaded (bench/footprint.py, docs/performance.md "Function app footprint").
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 512

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

// HTTP requests one instance takes at once before Flex adds an instance. A registration check
// costs 10-14 ms of CPU in the function process and answers in ~200 ms (p50, one at a time), so a
// 512 MB instance (0.25 vCPU) is CPU-bound at ~17 checks/s, reached with ~3.4 in flight: 4.
// More would only queue behind the CPU (bench/throughput.py, docs/performance.md "Throughput per
// instance"); raise it with instanceMemoryMB (2048 MB, 1 vCPU: ~14; 4096 MB: ~28).
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 4

// Key Vault secret names: the setting name in lower case with '-' for '_'.
var secretUri = '${keyVaultUri}secrets/'

var appSettings = {
  // Functions host storage (identity-based; read by the host, not by Evidence Gate's code).
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: stg.properties.primaryEndpoints.blob

  // Registries.
  MLFLOW_TRACKING_URI: mlflowTrackingUri
  EVIDENCE_GATE_REGISTRIES: registries
  EVIDENCE_GATE_AZUREML_REGION: azuremlRegion
  DATABRICKS_HOST: databricksHost
  EVIDENCE_GATE_UC_SCHEMAS: ucSchemas
  EVIDENCE_GATE_DATABRICKS_WORKSPACES: databricksWorkspaces
  DATABRICKS_CLIENT_ID: databricksClientId
  DATABRICKS_JOBS_WEBHOOK_USERNAME: databricksJobsWebhookUsername
  AZURE_CLIENT_ID: identityClientId

  // Secrets: Key Vault references, resolved with the user-assigned identity (keyVaultReferenceIdentity).
  MLFLOW_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${secretUri}mlflow-webhook-secret)'
  DATABRICKS_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${secretUri}databricks-webhook-secret)'
  DATABRICKS_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretUri}databricks-client-secret)'
  DATABRICKS_JOBS_WEBHOOK_PASSWORD: '@Microsoft.KeyVault(SecretUri=${secretUri}databricks-jobs-webhook-password)'
  TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${secretUri}teams-webhook-url)'

  // Policy and reconcile.
  EVIDENCE_GATE_POLICY: policyPath
  EVIDENCE_GATE_WAIVERS: waiversPath
  EVIDENCE_GATE_RECONCILE_SCHEDULE: reconcileSchedule
  // One deadline per check across every registry request and retry (webhooks give up after ~30 s).
  EVIDENCE_GATE_CHECK_DEADLINE_SECONDS: '30'
  EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS: '120'

  // Outputs: Service Bus topic through the identity-based connection EVIDENCE_GATE_SERVICEBUS.
  EVIDENCE_GATE_TOPIC: topicName
  EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  EVIDENCE_GATE_SERVICEBUS__credential: 'managedidentity'
  EVIDENCE_GATE_SERVICEBUS__clientId: identityClientId

  // Shared state (reports, alias holders, watermarks) in a table of the app's storage account,
  // through the identity-based connection EVIDENCE_GATE_STATE (docs/state.md).
  EVIDENCE_GATE_STATE__tableServiceUri: stg.properties.primaryEndpoints.table
  EVIDENCE_GATE_STATE__credential: 'managedidentity'
  EVIDENCE_GATE_STATE__clientId: identityClientId
  EVIDENCE_GATE_STATE_TABLE: stateTableName

  // Durable intake: webhooks and Event Grid queue the parsed event (answered 202) and the queue
  // trigger `intake` checks it, through the identity-based connection EVIDENCE_GATE_INTAKE
  // (docs/deploy.md "Durable intake").
  EVIDENCE_GATE_INTAKE__queueServiceUri: stg.properties.primaryEndpoints.queue
  EVIDENCE_GATE_INTAKE__credential: 'managedidentity'
  EVIDENCE_GATE_INTAKE__clientId: identityClientId
  EVIDENCE_GATE_INTAKE_QUEUE: intakeQueueName
  EVIDENCE_GATE_INTAKE_MAX_AGE_MINUTES: '60'
  EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS: '60'

  // Telemetry (Entra-authenticated ingestion) and the reports query.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  EVIDENCE_GATE_LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsCustomerId
}

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption offers zone redundancy only in regions with availability zones; enabling it unconditionally would make `azd up` fail elsewhere. The senders retry (Event Grid, webhooks) and the reconcile sweep catches what a zonal outage loses.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The HTTP functions receive webhooks from Databricks, open-source MLflow servers and Event Grid over the internet; every request is authenticated (HMAC signatures, Basic credentials; Event Grid deliveries carry the extension system key).
  // checkov:skip=CKV_AZURE_17: Webhook senders (Databricks, MLflow, Event Grid, Teams is outbound only) cannot present client certificates; requests are authenticated by HMAC signatures and Basic credentials instead.
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no fixed instance count: it scales out per trigger from zero (maximumInstanceCount is a parameter); senders retry and the reconcile sweep recovers lost events, so always-ready instances are a cost, not a failover need.
  // checkov:skip=CKV_AZURE_213: The app has no health endpoint to probe (its HTTP routes are authenticated webhooks); Flex Consumption replaces unhealthy instances itself.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${stg.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
