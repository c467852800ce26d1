// Key Vault in RBAC mode for Evidence Gate's secrets (webhook secrets, Databricks credentials,
// the Teams Workflows URL). The templates create no secret: values are set after provisioning
// (infra/hooks/postprovision.sh generates the webhook secrets; docs/deploy.md shows the others).
param name string
param location string = resourceGroup().location
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: The Function App resolves Key Vault references over the public endpoint (no VNet in this template); a deny-by-default firewall would break them. Access is RBAC-only (Key Vault Secrets User for the app identity).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: public network access is required for Key Vault reference resolution without VNet integration.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
