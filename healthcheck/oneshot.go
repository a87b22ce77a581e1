package healthcheck

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// Exit statuses of CheckCommand.
const (
	ExitHealthy   = 0
	ExitUnhealthy = 1
	ExitUsage     = 2
)

// CheckCommand is `seesaw_healthcheck check`: it runs one check described
// by flags named as cluster.pb's healthcheck fields, prints the outcome and
// its message, and returns the exit status: ExitHealthy, ExitUnhealthy, or
// ExitUsage for bad arguments.
func CheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seesaw_healthcheck check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		typ       = fs.String("type", "", "check type: ICMP_PING, UDP, TCP, HTTP, HTTPS, DNS, TCP_TLS or RADIUS (required)")
		address   = fs.String("address", "", "backend address to check (required)")
		port      = fs.Uint("port", 0, "port (default: the type's well-known port; TCP and UDP need one)")
		send      = fs.String("send", "", "request: TCP/UDP payload, HTTP path or URL, DNS name, RADIUS user:password:secret")
		receive   = fs.String("receive", "", "expected reply prefix, HTTP body prefix, DNS answer, or RADIUS accept|reject|challenge|any")
		code      = fs.Int("code", 0, "expected HTTP status (default 200)")
		method    = fs.String("method", "", "HTTP method (default GET) or DNS query type (default A)")
		proxy     = fs.Bool("proxy", false, "HTTP(S): the backend is a proxy; send the request through it")
		tlsVerify = fs.Bool("tls_verify", true, "HTTPS, TCP_TLS: verify the server's certificate")
		mode      = fs.String("mode", "PLAIN", "PLAIN, or DSR/TUN to send the probe to --target marked with --fwmark")
		tgt       = fs.String("target", "", "DSR/TUN: the VIP the probe is addressed to")
		fwmark    = fs.Uint("fwmark", 0, "DSR/TUN: the firewall mark that steers the probe to the backend")
		timeout   = fs.String("timeout", "", "timeout, as a duration (5s) or seconds (default: the type's)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: seesaw_healthcheck check --type TYPE --address ADDR [flags]\n\n"+
			"Runs one check and prints its result. Exit status: 0 healthy, 1 unhealthy, 2 bad arguments.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitUsage
		}
		return ExitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "seesaw_healthcheck check: "+format+"\n", a...)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if *typ == "" || *address == "" {
		return usage("--type and --address are required")
	}
	t, ok := hcpb.CheckType_value[strings.ToUpper(*typ)]
	if !ok || t == 0 {
		return usage("--type %q is not one of ICMP_PING, UDP, TCP, HTTP, HTTPS, DNS, TCP_TLS, RADIUS", *typ)
	}
	md, ok := hcpb.CheckMode_value[strings.ToUpper(*mode)]
	if !ok || md == 0 {
		return usage("--mode %q is not one of PLAIN, DSR, TUN", *mode)
	}
	if *port > 65535 {
		return usage("--port %d is out of range", *port)
	}
	if *fwmark > 1<<32-1 {
		return usage("--fwmark %d is out of range", *fwmark)
	}
	c := &hcpb.Check{
		Type:      hcpb.CheckType(t),
		Address:   *address,
		Port:      uint32(*port),
		Mode:      hcpb.CheckMode(md),
		Target:    *tgt,
		Fwmark:    uint32(*fwmark),
		Send:      *send,
		Receive:   *receive,
		Code:      int32(*code),
		Method:    *method,
		Proxy:     *proxy,
		TlsVerify: *tlsVerify,
	}
	if *timeout != "" {
		d, err := parseTimeout(*timeout)
		if err != nil {
			return usage("--timeout: %v", err)
		}
		c.Timeout = durationpb.New(d)
	}
	env := NewEnv()
	defer env.Close()
	k, err := NewChecker(c, env)
	if err != nil {
		return usage("%v", strings.TrimPrefix(err.Error(), "healthcheck: "))
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeoutOf(c))
	o := k.Check(cctx)
	cancel()
	took := time.Since(start).Round(10 * time.Microsecond)
	if o.OK {
		fmt.Fprintf(stdout, "healthy: %s (%v)\n", o.Message, took)
		return ExitHealthy
	}
	fmt.Fprintf(stdout, "unhealthy: %s (%v)\n", o.Message, took)
	return ExitUnhealthy
}

// parseTimeout reads a Go duration, or a number of seconds as cluster.pb
// gives timeouts.
func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q must be positive", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration nor seconds", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}
