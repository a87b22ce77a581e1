package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/seesawlb/seesaw/deploy/labtest"
)

// These TestLab tests run inside the guest (make vmtest) and prove what
// the guest promises; on the host they skip.

func TestLabGuest(t *testing.T) {
	labtest.RequireLab(t)
	if os.Getenv("SEESAW_LAB") != "1" {
		t.Error("SEESAW_LAB is not 1 in the guest")
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := utsString(u.Release[:])
	pinned := false
	for _, k := range PinnedKernels() {
		pinned = pinned || k.Release() == release
	}
	if !pinned {
		t.Errorf("guest kernel %s is none of the pinned kernels", release)
	}
	// The host's tree is read-only; /tmp and /run are the guest's own.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(wd, "lab-probe"), nil, 0o644)
	if !errors.Is(err, syscall.EROFS) {
		os.Remove(filepath.Join(wd, "lab-probe"))
		t.Errorf("writing into the shared source tree: %v, want read-only file system", err)
	}
	for _, d := range []string{"/tmp", "/run"} {
		p := filepath.Join(d, "lab-probe")
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Errorf("%s not writable: %v", d, err)
		}
		os.Remove(p)
		var st syscall.Statfs_t
		if err := syscall.Statfs(d, &st); err != nil || st.Type != 0x01021994 { // TMPFS_MAGIC
			t.Errorf("%s is not a tmpfs (type %#x, %v)", d, st.Type, err)
		}
	}
	if os.Getenv("HOME") == "" || os.Getenv("PATH") == "" {
		t.Errorf("HOME=%q PATH=%q, want both set", os.Getenv("HOME"), os.Getenv("PATH"))
	}
	if b, err := os.ReadFile("/sys/class/net/lo/operstate"); err != nil || strings.TrimSpace(string(b)) == "down" {
		t.Errorf("loopback not up: %q %v", b, err)
	}
	required, _ := GuestModules()
	for _, m := range required {
		b, err := os.ReadFile(filepath.Join("/sys/module", m, "initstate"))
		if err != nil || strings.TrimSpace(string(b)) != "live" {
			t.Errorf("module %s not loaded: %q %v", m, b, err)
		}
	}
}

func utsString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// TestLabIPVSAdm programs IPVS with Debian's ipvsadm, in a namespace of its
// own, and reads it back with ipvsadm -Ln: services of every kind, and one
// service per scheduler the lab promises.
func TestLabIPVSAdm(t *testing.T) {
	labtest.RequireLab(t)
	n := labtest.NewTestNode(t, "ipvs")
	cmds := [][]string{
		{"-A", "-t", "192.0.2.100:80", "-s", "rr"},
		{"-a", "-t", "192.0.2.100:80", "-r", "198.51.100.11:8080", "-m", "-w", "1"},
		{"-a", "-t", "192.0.2.100:80", "-r", "198.51.100.12:8080", "-m", "-w", "2"},
		{"-A", "-u", "192.0.2.53:53", "-s", "wrr"},
		{"-a", "-u", "192.0.2.53:53", "-r", "192.0.2.21:53", "-g", "-w", "2"},
		{"-A", "-t", "[2001:db8:0:1::100]:443", "-s", "mh"},
		{"-a", "-t", "[2001:db8:0:1::100]:443", "-r", "[2001:db8:0:2::11]:443", "-m"},
		{"-A", "-f", "7", "-s", "sh"},
	}
	scheds := []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}
	if _, err := os.Stat("/sys/module/ip_vs_twos"); err == nil {
		scheds = append(scheds, "twos")
	}
	for i, s := range scheds {
		cmds = append(cmds, []string{"-A", "-t", "203.0.113." + strconv.Itoa(100+i) + ":80", "-s", s})
	}
	for _, c := range cmds {
		n.Run(t, "ipvsadm", c...)
	}
	out := n.Run(t, "ipvsadm", "-Ln")
	want := []string{
		"TCP  192.0.2.100:80 rr",
		"-> 198.51.100.11:8080 Masq 1",
		"-> 198.51.100.12:8080 Masq 2",
		"UDP  192.0.2.53:53 wrr",
		"-> 192.0.2.21:53 Route 2",
		"TCP  [2001:db8:0:1::100]:443 mh",
		"-> [2001:db8:0:2::11]:443 Masq 1",
		"FWM  7 sh",
	}
	for i, s := range scheds {
		want = append(want, "TCP  203.0.113."+strconv.Itoa(100+i)+":80 "+s)
	}
	// Compare with runs of spaces folded: ipvsadm pads its columns.
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	folded := strings.Join(lines, "\n")
	for _, w := range want {
		if !strings.Contains(folded, strings.Join(strings.Fields(w), " ")) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", w, out)
		}
	}
	// IPVS state is per namespace: the guest's own namespace saw none of it.
	if out, err := os.ReadFile("/proc/net/ip_vs"); err == nil && strings.Contains(string(out), "C0000264") {
		t.Errorf("the service leaked into the guest's namespace:\n%s", out)
	}
}
