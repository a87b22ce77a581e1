// Package app is the seesaw_ha command, outside package main so that the
// multi-call binary (deploy/cmd/seesaw-multicall) links the same code as
// the standalone seesaw_ha, whose main only calls Main.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang/glog"

	"github.com/seesawlb/seesaw/ha"
	"github.com/seesawlb/seesaw/ha/vrrp"
	"github.com/seesawlb/seesaw/proto/ipc"
)

// addrList is a repeatable address flag.
type addrList []netip.Addr

func (l *addrList) String() string {
	var s []string
	for _, a := range *l {
		s = append(s, a.String())
	}
	return strings.Join(s, ",")
}

func (l *addrList) Set(v string) error {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return err
	}
	*l = append(*l, a.WithZone(""))
	return nil
}

// Main runs seesaw_ha on os.Args, as its main did: it exits the process. Its
// flags are registered on flag.CommandLine when it is called, so it runs
// once per process.
func Main() {
	var cfg ha.Config
	flag.StringVar(&cfg.Socket, "socket", ha.DefaultSocket, "path of HA's Unix socket (standalone: served only when given)")
	flag.StringVar(&cfg.EngineSocket, "engine_socket", ha.DefaultEngineSocket, "path of the engine's Unix socket")
	flag.DurationVar(&cfg.StatusInterval, "status_interval", 0, "how often to report status to the engine (0: 3s)")

	standalone := flag.Bool("standalone", false, "run without an engine, from the flags below, logging every transition")
	iface := flag.String("interface", "", "standalone: interface to send and receive adverts on")
	vrid := flag.Uint("vrid", 0, "standalone: virtual router ID (1-255)")
	prio := flag.Uint("priority", 100, "standalone: priority (1-255)")
	interval := flag.Duration("advert_interval", time.Second, "standalone: advert interval (10ms-40.95s, whole centiseconds)")
	preempt := flag.Bool("preempt", false, "standalone: take over from a lower-priority master")
	preemptDelay := flag.Duration("preempt_delay", 0, "standalone: with --preempt, wait this long after first hearing a lower-priority master")
	unicast := flag.Bool("unicast", false, "standalone: send adverts to each --peer instead of the multicast group")
	ipv6 := flag.Bool("ipv6", false, "standalone: IPv6 (ff02::12 from the interface's link-local address); implied by an IPv6 --local or --peer")
	local := flag.String("local", "", "standalone: source address (default: the interface's first IPv4 address, or its link-local IPv6 address)")
	var peers, addrs addrList
	flag.Var(&peers, "peer", "standalone: a peer's address, accepted as advert source (repeatable); with --unicast also a destination")
	flag.Var(&addrs, "address", "standalone: a VIP for the advert's address list (repeatable; must match the peers')")
	flag.Parse()

	if *standalone {
		// Standalone is for a terminal: log there unless told otherwise.
		if f := flag.Lookup("logtostderr"); f != nil && !isSet("logtostderr") && !isSet("log_dir") {
			f.Value.Set("true")
		}
	}
	// SIGUSR2 is the watchdog's reload signal for HA: restart keeping
	// this node's mastership (see ha.Config.Restart). SIGTERM is a stop.
	// Standalone has no engine to resume from: SIGUSR2 keeps its default
	// action there.
	if !*standalone {
		restart := make(chan struct{})
		usr2 := make(chan os.Signal, 1)
		signal.Notify(usr2, syscall.SIGUSR2)
		go func() {
			<-usr2
			glog.Infof("seesaw_ha: SIGUSR2: restarting for a reload")
			close(restart)
			for range usr2 { // once is enough; later ones must not kill HA
			}
		}()
		cfg.Restart = restart
	}
	ipc.Main("seesaw_ha", func(ctx context.Context) error {
		if !*standalone {
			return ha.Run(ctx, cfg)
		}
		sc := ha.StandaloneConfig{Out: os.Stdout}
		if isSet("socket") {
			sc.Socket = cfg.Socket
		}
		params, err := standaloneParams(*iface, *vrid, *prio, *interval, *preempt, *preemptDelay, *unicast, *ipv6, *local, peers, addrs)
		if err != nil {
			return err
		}
		sc.Params = params
		return ha.RunStandalone(ctx, sc)
	})
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func standaloneParams(iface string, vrid, prio uint, interval time.Duration, preempt bool, preemptDelay time.Duration,
	unicast, ipv6 bool, local string, peers, addrs addrList) (ha.Params, error) {
	if iface == "" {
		return ha.Params{}, errors.New("--standalone needs --interface")
	}
	if vrid < 1 || vrid > 255 || prio < 1 || prio > 255 {
		return ha.Params{}, fmt.Errorf("--vrid %d and --priority %d must be 1-255", vrid, prio)
	}
	var src netip.Addr
	if local != "" {
		a, err := netip.ParseAddr(local)
		if err != nil {
			return ha.Params{}, fmt.Errorf("--local: %w", err)
		}
		src = a.WithZone("")
	} else {
		v6 := ipv6 || (len(peers) > 0 && peers[0].Is6())
		a, err := ha.InterfaceAddr(iface, v6)
		if err != nil {
			return ha.Params{}, err
		}
		src = a
	}
	p := ha.Params{Interface: iface, VRRP: vrrp.Config{
		VRID: uint8(vrid), Priority: uint8(prio), Interval: interval,
		Preempt: preempt, PreemptDelay: preemptDelay,
		Local: src, Peers: peers, Unicast: unicast, Addresses: addrs,
	}}
	return p, p.VRRP.Validate()
}
