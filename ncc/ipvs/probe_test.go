package ipvs

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestProbeConnFound(t *testing.T) {
	c := genltest.Dial(genltest.ServeFamily(genetlink.Family{ID: 31, Version: 1, Name: FamilyName},
		func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			t.Error("probe sent something other than a family lookup")
			return nil, nil
		}))
	defer c.Close()
	f, err := ProbeConn(c)
	if err != nil {
		t.Fatal(err)
	}
	if f != (GenlFamily{ID: 31, Version: 1}) {
		t.Errorf("family %+v", f)
	}
}

func TestProbeConnMissing(t *testing.T) {
	// What the controller answers on a kernel without ip_vs.
	c := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.ENOENT))
	})
	defer c.Close()
	_, err := ProbeConn(c)
	if !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("err = %v, want ErrNotAvailable", err)
	}
	if !strings.Contains(err.Error(), "modprobe ip_vs") {
		t.Errorf("no hint in %q", err)
	}
}

func TestProbeConnOtherError(t *testing.T) {
	c := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.EPERM))
	})
	defer c.Close()
	_, err := ProbeConn(c)
	if err == nil || errors.Is(err, ErrNotAvailable) {
		t.Fatalf("err = %v, want a plain failure, not ErrNotAvailable", err)
	}
}

// TestProbeHost runs the real probe. This host's kernel may or may not have
// IPVS; either answer is fine, but it must be one of the two clean ones.
func TestProbeHost(t *testing.T) {
	f, err := Probe()
	switch {
	case err == nil:
		if f.ID == 0 {
			t.Errorf("IPVS found with family id 0")
		}
		t.Logf("IPVS present: family id %d version %d", f.ID, f.Version)
	case errors.Is(err, ErrNotAvailable):
		t.Logf("IPVS absent: %v", err)
	case errors.Is(err, os.ErrPermission):
		t.Skipf("generic netlink not allowed here: %v", err)
	default:
		t.Errorf("probe: %v", err)
	}
}
