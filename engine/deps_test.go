package engine

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestEngineLinksNoNetlink: the engine decides what the kernel holds but
// never touches it; everything that does lives in the NCC. So the engine's
// binary links no netlink, nftables or kernel package of the NCC's.
func TestEngineLinksNoNetlink(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "github.com/seesawlb/seesaw/engine/cmd/seesaw_engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{
		"github.com/mdlayher/netlink", "github.com/mdlayher/genetlink", "github.com/vishvananda/netlink",
		"github.com/vishvananda/netns", "github.com/google/nftables",
		"github.com/seesawlb/seesaw/ncc/ipvs", "github.com/seesawlb/seesaw/ncc/netconf", "github.com/seesawlb/seesaw/ncc/nft",
		"github.com/seesawlb/seesaw/ncc/reconcile", "github.com/seesawlb/seesaw/ncc/announce",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list gave %d packages: %q", len(deps), out)
	}
	for _, d := range deps {
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b+"/") {
				t.Errorf("seesaw_engine links %s", d)
			}
		}
	}
}
