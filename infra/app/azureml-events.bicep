// Event Grid system topic on the existing Azure ML workspace (deployed into the workspace's
// resource group: a system topic lives beside its source) and the subscription that delivers
// model and run events to the `azureml_events` function. Undeliverable events are dead-lettered
// to a blob container, written with the user-assigned identity.
param workspaceName string
param systemTopicName string
param tags object = {}

param identityId string
param functionAppId string

@description('Function that receives the events (contract: azureml_events).')
param functionName string = 'azureml_events'

param deadLetterStorageAccountId string
param deadLetterContainerName string

@description('Create the event subscription. It needs the function to exist, so the first `azd up` provisions without it and the postdeploy hook provisions again with it (see infra/hooks/postdeploy.sh).')
param createEventSubscription bool = true

@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: workspace.location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (createEventSubscription) {
  parent: systemTopic
  name: 'evidence-gate-azureml-events'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.ModelRegistered'
        'Microsoft.MachineLearningServices.ModelDeployed'
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.RunStatusChanged'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output systemTopicName string = systemTopic.name
output subscriptionCreated bool = createEventSubscription
