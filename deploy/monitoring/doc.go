// Package monitoring holds what Prometheus and Grafana need to watch a
// Seesaw cluster: seesaw-alerts.yml (alert rules, with their promtool unit
// tests in seesaw-alerts.test.yml) and seesaw-dashboard.json (a Grafana
// dashboard), all on the metrics of the ECU (package ecu). Its tests check
// them with promtool and against the ECU's metric names.
package monitoring
