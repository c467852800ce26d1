// Service Bus namespace (Standard: topics need it) with the findings topic and its two
// subscriptions. Local (SAS key) authentication is disabled: only Entra identities with data roles
// can send or receive.
param name string
param location string = resourceGroup().location
param tags object = {}

@description('Topic that receives one message per report (setting EVIDENCE_GATE_TOPIC).')
param topicName string = 'evidence-gate-findings'

@description('Duplicate detection window (ISO 8601, at least PT1H). The same event always yields the same report id (message_id), so a redelivery inside the window is dropped by Service Bus. Event Grid retries for up to 24 hours.')
param duplicateDetectionWindow string = 'P1D'

@description('How long a report message lives in a subscription before it is dead-lettered (ISO 8601).')
param messageTimeToLive string = 'P14D'

@minValue(1)
@maxValue(100)
@description('Deliveries of one message to a subscription before it is dead-lettered.')
param maxDeliveryCount int = 10

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: topicName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: messageTimeToLive
    maxSizeInMegabytes: 1024
    enableBatchedOperations: true
    enablePartitioning: false
    supportOrdering: false
  }
}

// Release managers' Teams cards: only reports that need attention (application property
// `verdict` is pass | warn | fail). Consumed by the notify_teams function.
resource teamsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: topic
  name: 'teams'
  properties: {
    maxDeliveryCount: maxDeliveryCount
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    enableBatchedOperations: true
    requiresSession: false
  }
}

// A subscription is created with a `$Default` rule that accepts everything; a rule of the same
// name replaces it (a second rule would be OR-ed with the accept-all rule and filter nothing).
resource teamsFilter 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = {
  parent: teamsSubscription
  name: '$Default'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: {
      sqlExpression: 'verdict <> \'pass\''
    }
  }
}

// Every report, for model-risk / audit consumers (kept by the default accept-all rule).
resource auditSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: topic
  name: 'audit'
  properties: {
    maxDeliveryCount: maxDeliveryCount
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    enableBatchedOperations: true
    requiresSession: false
  }
}

output id string = namespace.id
output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output topicName string = topic.name
output topicId string = topic.id
output teamsSubscriptionName string = teamsSubscription.name
output teamsSubscriptionId string = teamsSubscription.id
output auditSubscriptionName string = auditSubscription.name
