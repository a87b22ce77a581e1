package healthcheck

import (
	"bytes"
	"context"
	"fmt"
	"time"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// udpChecker sends `send` as one datagram and waits for a reply datagram,
// which must start with `receive` (any reply does when receive is empty). A
// closed port answers with ICMP port unreachable, which reads as a refusal.
type udpChecker struct {
	t       *target
	what    string
	timeout time.Duration
	send    []byte
	receive []byte
	okMsg   string
}

func newUDPChecker(c *hcpb.Check, t *target) (*udpChecker, error) {
	k := &udpChecker{t: t, timeout: timeoutOf(c), send: []byte(c.GetSend()), receive: []byte(c.GetReceive())}
	k.what = "UDP " + t.label(c.GetMode())
	if len(k.receive) > 0 {
		k.okMsg = k.what + ": got the expected reply"
	} else {
		k.okMsg = k.what + ": got a reply"
	}
	return k, nil
}

func (k *udpChecker) Check(ctx context.Context) Outcome {
	conn, err := k.t.dialer.DialContext(ctx, "udp", k.t.dst.String())
	if err != nil {
		return fail(k.what, describe(phaseConnect, err, k.timeout))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(k.send); err != nil {
		return fail(k.what, describe(phaseSend, err, k.timeout))
	}
	// Room for the expected prefix and a little more to show in a message;
	// the rest of a longer datagram is discarded.
	buf := make([]byte, len(k.receive)+64)
	n, err := conn.Read(buf)
	if err != nil {
		return fail(k.what, describe(phaseDatagram, err, k.timeout))
	}
	if !bytes.HasPrefix(buf[:n], k.receive) {
		return fail(k.what, fmt.Sprintf("wrong reply: got %s, want it to start with %s", truncate(buf[:n], 64), truncate(k.receive, 64)))
	}
	return Outcome{OK: true, Message: k.okMsg}
}
