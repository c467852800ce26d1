// Evidence Gate: everything one `azd up` provisions. Subscription scope: creates the resource
// group, and deploys into the existing Azure ML workspace's resource group the Event Grid system
// topic and the app identity's read access.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used to derive a short unique token for resource names.')
param environmentName string

@minLength(1)
@description('Region of the Evidence Gate resources (one that offers Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource id of the existing Azure ML workspace whose model and run events are checked: /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{name}.')
param azureMlWorkspaceId string

@description('Create the Event Grid subscription to the azureml_events function. The function must exist first: azd sets this to true in the postdeploy hook and provisions again.')
param createEventSubscription bool = false

@description('Object id of the user or principal running azd (AZURE_PRINCIPAL_ID): gets Key Vault Secrets Officer to set the secrets. Empty: none.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Override MLFLOW_TRACKING_URI; empty: the Azure ML workspace tracking URI.')
param mlflowTrackingUri string = ''

@description('EVIDENCE_GATE_REGISTRIES: comma-separated registries the reconcile timer sweeps; empty: the default registry.')
param registries string = ''

@description('DATABRICKS_HOST, e.g. https://adb-123.4.azuredatabricks.net; empty when Databricks is not used.')
param databricksHost string = ''
@description('EVIDENCE_GATE_UC_SCHEMAS: comma-separated Unity Catalog schemas (catalog.schema) and catalogs the reconcile sweep lists; empty: every model the identity may see.')
param ucSchemas string = ''
@description('EVIDENCE_GATE_DATABRICKS_WORKSPACES: comma-separated <workspace id>=<host> of other workspaces where a Unity Catalog version\'s run is read (the same service principal); empty: such runs are reported unreadable.')
param databricksWorkspaces string = ''

@description('DATABRICKS_CLIENT_ID: Databricks service principal (OAuth M2M); its secret goes to Key Vault.')
param databricksClientId string = ''

@description('DATABRICKS_JOBS_WEBHOOK_USERNAME: Basic user name of the job notification destination; the password goes to Key Vault.')
param databricksJobsWebhookUsername string = 'evidence-gate'

@description('EVIDENCE_GATE_POLICY: policy file path in the deployed package (e.g. /home/site/wwwroot/policy.yaml); empty: built-in default policy.')
param policyPath string = ''

@description('EVIDENCE_GATE_WAIVERS: waivers file path in the deployed package; empty: none.')
param waiversPath string = ''

@description('EVIDENCE_GATE_RECONCILE_SCHEDULE (NCRONTAB, six fields).')
param reconcileSchedule string = '0 */15 * * * *'

@description('EVIDENCE_GATE_TOPIC: the findings topic.')
param topicName string = 'evidence-gate-findings'

@description('Service Bus duplicate detection window (ISO 8601, at least PT1H).')
param duplicateDetectionWindow string = 'P1D'

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory (MB); 512 fits one function process with every registry backend loaded (docs/performance.md).')
param instanceMemoryMB int = 512

@minValue(1)
@maxValue(1000)
@description('Flex Consumption maximum instance count.')
param maximumInstanceCount int = 40

@minValue(1)
@maxValue(1000)
@description('Flex Consumption HTTP requests per instance at once (scaleAndConcurrency.triggers.http.perInstanceConcurrency); see docs/performance.md.')
param httpPerInstanceConcurrency int = 4

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 90

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'evidence-gate'
}
var functionAppName = 'func-evgate-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var deadLetterContainerName = 'eventgrid-deadletter'
// Evidence Gate's shared state (EVIDENCE_GATE_STATE_TABLE, docs/state.md).
var stateTableName = 'evidencegate'
// The durable intake queue and its poison queue (EVIDENCE_GATE_INTAKE_QUEUE, docs/deploy.md).
var intakeQueueName = 'evidence-gate-intake'

// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{name}
var workspaceIdParts = split(azureMlWorkspaceId, '/')
var workspaceSubscriptionId = workspaceIdParts[2]
var workspaceResourceGroupName = workspaceIdParts[4]
var workspaceName = last(workspaceIdParts)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity/user-assigned-identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-evgate-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stevgate${resourceToken}'
    location: location
    tags: tags
    containers: [
      deploymentContainerName
      deadLetterContainerName
    ]
    tables: [
      stateTableName
    ]
    queues: [
      intakeQueueName
      '${intakeQueueName}-poison'
    ]
  }
}

module monitoring 'core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-evgate-${resourceToken}'
    applicationInsightsName: 'appi-evgate-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module serviceBus 'core/servicebus/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: 'sb-evgate-${resourceToken}'
    location: location
    tags: tags
    topicName: topicName
    duplicateDetectionWindow: duplicateDetectionWindow
  }
}

module keyVault 'core/security/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-evgate-${resourceToken}'
    location: location
    tags: tags
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    stateTableName: stateTableName
    intakeQueueName: intakeQueueName
    serviceBusNamespaceName: serviceBus.outputs.name
    topicName: serviceBus.outputs.topicName
    teamsSubscriptionName: serviceBus.outputs.teamsSubscriptionName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    logAnalyticsName: monitoring.outputs.logAnalyticsWorkspaceName
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module azureMlWorkspace 'app/azureml-workspace.bicep' = {
  name: 'azureml-workspace'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    principalId: identity.outputs.principalId
  }
}

var defaultTrackingUri = empty(mlflowTrackingUri) ? azureMlWorkspace.outputs.trackingUri : mlflowTrackingUri

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-evgate-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    stateTableName: stateTableName
    intakeQueueName: intakeQueueName
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    keyVaultUri: keyVault.outputs.uri
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    topicName: serviceBus.outputs.topicName
    logAnalyticsCustomerId: monitoring.outputs.logAnalyticsCustomerId
    mlflowTrackingUri: defaultTrackingUri
    registries: empty(registries) ? defaultTrackingUri : registries
    azuremlRegion: azureMlWorkspace.outputs.location
    databricksHost: databricksHost
    ucSchemas: ucSchemas
    databricksWorkspaces: databricksWorkspaces
    databricksClientId: databricksClientId
    databricksJobsWebhookUsername: databricksJobsWebhookUsername
    policyPath: policyPath
    waiversPath: waiversPath
    reconcileSchedule: reconcileSchedule
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
  }
  dependsOn: [
    // The Flex deployment storage and Key Vault references must be readable when the app starts.
    rbac
  ]
}

module azureMlEvents 'app/azureml-events.bicep' = {
  name: 'azureml-events'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    systemTopicName: 'evgt-azureml-${resourceToken}'
    tags: tags
    identityId: identity.outputs.id
    functionAppId: api.outputs.id
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
    createEventSubscription: createEventSubscription
  }
  dependsOn: [
    rbac
  ]
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

// azd stores these in the environment (.azure/<env>/.env); the hooks and docs/deploy.md use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output EVIDENCE_GATE_BASE_URL string = 'https://${api.outputs.defaultHostName}'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output AZURE_SERVICEBUS_NAMESPACE string = serviceBus.outputs.name
output EVIDENCE_GATE_TOPIC string = serviceBus.outputs.topicName
output AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsCustomerId
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.applicationInsightsConnectionString
output AZURE_EVENTGRID_SYSTEM_TOPIC string = azureMlEvents.outputs.systemTopicName
output AZURE_ML_WORKSPACE_RESOURCE_GROUP string = workspaceResourceGroupName
