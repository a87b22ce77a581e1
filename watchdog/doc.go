// Package watchdog is Seesaw's process supervisor: it reads watchdog.cfg,
// starts the appliance's daemons in dependency order with their log files,
// nice values and credentials, restarts them with a growing backoff when they
// exit, stops them in reverse dependency order, and reports their status for
// the Watchdog.Services RPC.
package watchdog
