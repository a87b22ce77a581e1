package ecu

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seesawlb/seesaw/cli"
	enginepb "github.com/seesawlb/seesaw/proto/engine"
)

// TestCLIRemote: `seesaw --remote host:port` runs the CLI's commands
// through a real ECU's remote control against a real engine: a reader
// reads, a reader's write is refused with the ECU's reason and exit
// status 1 and changes nothing, an admin's write reaches the engine, and
// a certificate from another CA or a missing file says what is wrong.
// The engine records the certificate's name as the override's setter.
func TestCLIRemote(t *testing.T) {
	ca, other := newCA(t, "cluster CA"), newCA(t, "another CA")
	ssl, home := t.TempDir(), t.TempDir()
	crt, key := ca.issue(t, "lb1.example.com", true)
	must(t, os.WriteFile(filepath.Join(ssl, "ca.crt"), ca.pem, 0o644))
	must(t, os.WriteFile(filepath.Join(ssl, "seesaw.crt"), crt, 0o644))
	must(t, os.WriteFile(filepath.Join(ssl, "seesaw.key"), key, 0o600))
	certFiles := func(from *testCA, name string) (string, string) {
		c, k := from.issue(t, name, false)
		cf, kf := filepath.Join(home, name+".crt"), filepath.Join(home, name+".key")
		if from == other {
			cf, kf = filepath.Join(home, "other-"+name+".crt"), filepath.Join(home, "other-"+name+".key")
		}
		must(t, os.WriteFile(cf, c, 0o644))
		must(t, os.WriteFile(kf, k, 0o600))
		return cf, kf
	}

	ctlc := make(chan net.Addr, 1)
	cfg := rigSeesawCfg + "[remote_control]\nadmin = alice\nreader = bob\n"
	r := startRig(t, cfg, rigCluster(map[string]int{"api": 1, "dns": 2, "web": 3}), hcNone, 50*time.Millisecond, func(c *Config) {
		c.ControlAddr, c.SSLDir, c.ControlReady = "127.0.0.1:0", ssl, func(a net.Addr) { ctlc <- a }
	})
	var addr string
	select {
	case a := <-ctlc:
		addr = a.String()
	case <-time.After(30 * time.Second):
		t.Fatal("remote control never listened")
	}

	run := func(cert, key string, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		opts := cli.Options{Name: "seesaw", Engine: filepath.Join(t.TempDir(), "no-engine.sock")}
		argv := append([]string{"--remote", addr, "--cert", cert, "--key", key, "--ca", filepath.Join(ssl, "ca.crt")}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		code := cli.Run(ctx, opts, argv, strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	aliceCrt, aliceKey := certFiles(ca, "alice")
	bobCrt, bobKey := certFiles(ca, "bob")

	// A reader reads, one-shot and with -c, by abbreviation.
	if code, out, errOut := run(bobCrt, bobKey, "show", "vservers"); code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "api") {
		t.Errorf("bob: show vservers: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(bobCrt, bobKey, "-c", "sh vs web"); code != 0 || !strings.Contains(out, "web") {
		t.Errorf("bob: -c \"sh vs web\": exit %d\n%s%s", code, out, errOut)
	}

	// A reader's write: refused, in the ECU's words, exit 1, nothing changed.
	code, out, errOut := run(bobCrt, bobKey, "override", "vserver", "state", "disabled", "web")
	want := "refused by remote control at " + addr + ": ecu: bob is reader; /seesaw.engine.Engine/Override needs WRITE access; nothing was changed"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("bob's override: exit %d, stderr %q, want 1 and %q (stdout %q)", code, errOut, want, out)
	}
	ov, err := r.eng.Overrides(context.Background(), &enginepb.OverridesRequest{})
	if err != nil || len(ov.Overrides) != 0 {
		t.Fatalf("overrides after the reader's refused write: %v %v", ov, err)
	}

	// An admin's write reaches the engine.
	if code, out, errOut := run(aliceCrt, aliceKey, "override", "vserver", "state", "disabled", "web"); code != 0 {
		t.Errorf("alice's override: exit %d\n%s%s", code, out, errOut)
	}
	ov, err = r.eng.Overrides(context.Background(), &enginepb.OverridesRequest{})
	if err != nil || len(ov.Overrides) != 1 || ov.Overrides[0].GetVserver() != "web" {
		t.Fatalf("overrides after the admin's write: %v %v", ov, err)
	}
	// The engine records the certificate's holder, not the ECU's user.
	if by := ov.Overrides[0].Info.GetSetBy(); !strings.HasPrefix(by, "alice (admin) (remote control, through ") {
		t.Errorf("the admin's override is set by %q, want alice's name through remote control", by)
	}
	if code, out, errOut := run(bobCrt, bobKey, "show", "vservers", "web"); code != 0 || !strings.Contains(out, "set by alice (admin) (remote control") {
		t.Errorf("bob: show vservers web: exit %d\n%s%s", code, out, errOut)
	}

	// Another CA's certificate gets nothing; a missing file is named.
	oCrt, oKey := certFiles(other, "alice")
	if code, _, errOut := run(oCrt, oKey, "show", "vservers"); code != 1 || !strings.Contains(errOut, "cannot reach remote control at "+addr) {
		t.Errorf("another CA's certificate: exit %d, stderr %q", code, errOut)
	}
	missing := filepath.Join(home, "nosuch.crt")
	if code, _, errOut := run(missing, aliceKey, "show", "vservers"); code != 1 || !strings.Contains(errOut, "--cert "+missing) {
		t.Errorf("a missing certificate: exit %d, stderr %q", code, errOut)
	}
}
