package ipc

import (
	"fmt"
	"testing"
)

func ExampleDefaultSocket() {
	fmt.Println(DefaultSocket("engine"))
	fmt.Println(DefaultSocket("healthcheck"))
	// Output:
	// /var/run/seesaw/engine/engine.sock
	// /var/run/seesaw/healthcheck/healthcheck.sock
}

// TestDefaultSocket pins the paths the daemons' flags show in --help and the
// README documents.
func TestDefaultSocket(t *testing.T) {
	for c, want := range map[string]string{
		"engine":      "/var/run/seesaw/engine/engine.sock",
		"ncc":         "/var/run/seesaw/ncc/ncc.sock",
		"ha":          "/var/run/seesaw/ha/ha.sock",
		"healthcheck": "/var/run/seesaw/healthcheck/healthcheck.sock",
		"ecu":         "/var/run/seesaw/ecu/ecu.sock",
		"watchdog":    "/var/run/seesaw/watchdog/watchdog.sock",
	} {
		if got := DefaultSocket(c); got != want {
			t.Errorf("DefaultSocket(%q) = %q, want %q", c, got, want)
		}
	}
}
