// Azure Monitor workbook "Evidence Gate" over the Log Analytics workspace. Every chart runs one of
// the queries in infra/queries/*.kql (loaded at build time, so the files are the single source).
param name string = guid(resourceGroup().id, 'evidence-gate-workbook')
param displayName string = 'Evidence Gate'
param location string = resourceGroup().location
param tags object = {}
param logAnalyticsWorkspaceId string

var logs = {
  queryType: 0
  resourceType: 'microsoft.operationalinsights/workspaces'
  crossComponentResources: [
    logAnalyticsWorkspaceId
  ]
  timeContextFromParameter: 'TimeRange'
  version: 'KqlItem/1.0'
  size: 0
}

var charts = [
  {
    name: 'verdicts-over-time'
    title: 'Verdicts over time'
    visualization: 'timechart'
    query: loadTextContent('../queries/verdicts-over-time.kql')
  }
  {
    name: 'top-failing-rules'
    title: 'Top failing rules (unwaived errors)'
    visualization: 'barchart'
    query: loadTextContent('../queries/top-failing-rules.kql')
  }
  {
    name: 'models-without-passing-report'
    title: 'Models without a passing report'
    visualization: 'table'
    query: loadTextContent('../queries/models-without-passing-report.kql')
  }
  {
    name: 'failing-models-this-week'
    title: 'Failing models this week'
    visualization: 'table'
    query: loadTextContent('../queries/failing-models-this-week.kql')
  }
  {
    name: 'findings-by-rule-over-time'
    title: 'Findings by rule over time'
    visualization: 'timechart'
    query: loadTextContent('../queries/findings-by-rule-over-time.kql')
  }
  {
    name: 'unapproved-promotions'
    title: 'Unapproved promotions (GOV-001, GOV-002)'
    visualization: 'table'
    query: loadTextContent('../queries/unapproved-promotions.kql')
  }
  {
    name: 'credential-findings'
    title: 'Credential findings (SEC-001, SEC-002)'
    visualization: 'table'
    query: loadTextContent('../queries/credential-findings.kql')
  }
  {
    name: 'event-to-report-latency'
    title: 'Event-to-report latency (ms)'
    visualization: 'timechart'
    query: loadTextContent('../queries/event-to-report-latency.kql')
  }
  {
    name: 'reconcile-lag'
    title: 'Reconcile lag (seconds behind the watermark)'
    visualization: 'timechart'
    query: loadTextContent('../queries/reconcile-lag.kql')
  }
]

var header = [
  {
    type: 1
    name: 'title'
    content: {
      json: '## Evidence Gate\nLineage and evidence reports for model registrations and promotions. Queries: infra/queries in the Evidence Gate repository.'
    }
  }
  {
    type: 9
    name: 'parameters'
    content: {
      version: 'KqlParameterItem/1.0'
      style: 'pills'
      queryType: 0
      resourceType: 'microsoft.operationalinsights/workspaces'
      parameters: [
        {
          id: 'a5b7b0f4-6c61-4c3e-9a4e-1f0e9d3c2b71'
          version: 'KqlParameterItem/1.0'
          name: 'TimeRange'
          label: 'Time range'
          type: 4
          isRequired: true
          value: {
            durationMs: 604800000
          }
          typeSettings: {
            selectableValues: [
              {
                durationMs: 86400000
              }
              {
                durationMs: 604800000
              }
              {
                durationMs: 2592000000
              }
            ]
          }
        }
      ]
    }
  }
]

var chartItems = [for chart in charts: {
  type: 3
  name: chart.name
  content: union(logs, {
    title: chart.title
    query: chart.query
    visualization: chart.visualization
  })
}]

var workbookContent = {
  version: 'Notebook/1.0'
  items: concat(header, chartItems)
  fallbackResourceIds: [
    logAnalyticsWorkspaceId
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: logAnalyticsWorkspaceId
    serializedData: string(workbookContent)
  }
}

output id string = workbook.id
