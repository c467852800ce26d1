// Deployed into the resource group of the existing Azure ML workspace: read access for the app
// identity, and the facts (region, MLflow tracking URI) the app settings need.
param workspaceName string
param principalId string

// Reader: models, jobs (MLflow runs) and their metadata are control-plane reads on the workspace.
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource workspaceReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, readerRoleId)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output location string = workspace.location
@description('MLflow tracking URI of the workspace, as the workspace reports it (mlFlowTrackingUri: private-link and sovereign-cloud workspaces have their own host).')
output trackingUri string = workspace.properties.mlFlowTrackingUri
