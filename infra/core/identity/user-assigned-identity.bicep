// The one user-assigned managed identity that Evidence Gate uses for everything:
// host storage, deployment package, Service Bus, Key Vault references, Azure ML, telemetry.
param name string
param location string = resourceGroup().location
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
