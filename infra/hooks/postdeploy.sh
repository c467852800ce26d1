#!/bin/sh
# azd postdeploy hook: the Event Grid subscription to the azureml_events function can only be
# created once the function exists, i.e. after the first deploy. Turn it on and provision again.
set -eu

if [ "${EVIDENCE_GATE_EVENTGRID_SUBSCRIPTION:-false}" = "true" ]; then
  echo "postdeploy: Event Grid subscription already enabled"
  exit 0
fi

azd env set EVIDENCE_GATE_EVENTGRID_SUBSCRIPTION true
azd provision --no-prompt
