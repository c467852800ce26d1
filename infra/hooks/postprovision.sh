#!/bin/sh
# azd postprovision hook: create the webhook secrets in Key Vault if they do not exist yet.
# Values are random (32 bytes, hex), written from a private temporary file (never on a command
# line) and never printed. Existing secrets are left alone: rotate them as docs/deploy.md shows.
set -eu

vault="${AZURE_KEY_VAULT_NAME:?AZURE_KEY_VAULT_NAME is not set: run through azd}"

if ! command -v az >/dev/null 2>&1; then
  echo "postprovision: the Azure CLI (az) is required to create the webhook secrets" >&2
  exit 1
fi

umask 077
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT INT TERM

for name in mlflow-webhook-secret databricks-webhook-secret databricks-jobs-webhook-password; do
  if az keyvault secret show --vault-name "$vault" --name "$name" --query id --output none 2>/dev/null; then
    echo "postprovision: secret $name exists, kept"
    continue
  fi
  openssl rand -hex 32 | tr -d '\n' > "$tmp"
  # The deployer's Key Vault Secrets Officer assignment can take a minute to propagate.
  attempt=1
  until az keyvault secret set --vault-name "$vault" --name "$name" --file "$tmp" \
        --content-type "text/plain" --output none 2>/dev/null; do
    if [ "$attempt" -ge 10 ]; then
      echo "postprovision: could not write secret $name to $vault (role assignment not effective yet?); re-run 'azd provision'" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep 15
  done
  echo "postprovision: secret $name created"
done

for name in teams-webhook-url databricks-client-secret; do
  if ! az keyvault secret show --vault-name "$vault" --name "$name" --query id --output none 2>/dev/null; then
    echo "postprovision: secret $name is not set yet; see docs/deploy.md to set it"
  fi
done
