package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// tcpChecker connects, optionally over TLS (TCP_TLS), optionally sends
// `send`, and when `receive` is given reads exactly that many bytes and
// compares them (Seesaw v2's prefix match on the reply).
type tcpChecker struct {
	t       *target
	what    string
	timeout time.Duration
	tls     *tls.Config
	send    []byte
	receive []byte
	okMsg   string
}

func newTCPChecker(c *hcpb.Check, t *target, env *Env) (*tcpChecker, error) {
	k := &tcpChecker{
		t:       t,
		timeout: timeoutOf(c),
		send:    []byte(c.GetSend()),
		receive: []byte(c.GetReceive()),
	}
	kind := "TCP"
	if c.GetType() == hcpb.CheckType_TCP_TLS {
		kind = "TCP_TLS"
		// As Seesaw v2 did, the certificate is verified against the address
		// dialled (an IP SAN): a TCP_TLS check has no host name to send.
		k.tls = &tls.Config{
			ServerName:         t.dst.Addr().String(),
			InsecureSkipVerify: !c.GetTlsVerify(),
			RootCAs:            env.RootCAs,
		}
	}
	k.what = kind + " " + t.label(c.GetMode())
	switch {
	case len(k.receive) > 0:
		k.okMsg = k.what + ": got the expected reply"
	case k.tls != nil:
		k.okMsg = k.what + ": TLS handshake completed"
	default:
		k.okMsg = k.what + ": connected"
	}
	return k, nil
}

// connectOnly: the check sends and expects nothing.
func (k *tcpChecker) connectOnly() bool {
	return len(k.send) == 0 && len(k.receive) == 0 && k.tls == nil
}

func (k *tcpChecker) Check(ctx context.Context) Outcome {
	dl := deadlineOf(ctx, k.timeout)
	conn, err := dialTCP(k.t, dl, k.connectOnly())
	if err != nil {
		return fail(k.what, describe(phaseConnect, err, k.timeout))
	}
	defer closeNow(conn)
	if len(k.send) == 0 && len(k.receive) == 0 && k.tls == nil {
		return Outcome{OK: true, Message: k.okMsg}
	}
	conn.SetDeadline(dl)
	var rw io.ReadWriter = conn
	if k.tls != nil {
		tc := tls.Client(conn, k.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(k.what, describe(phaseTLS, err, k.timeout))
		}
		rw = tc
	}
	return k.exchange(rw)
}

func (k *tcpChecker) exchange(rw io.ReadWriter) Outcome {
	if len(k.send) > 0 {
		if _, err := rw.Write(k.send); err != nil {
			return fail(k.what, describe(phaseSend, err, k.timeout))
		}
	}
	if len(k.receive) > 0 {
		buf := make([]byte, len(k.receive))
		n, err := io.ReadFull(rw, buf)
		return k.judgeReply(buf[:n], err)
	}
	return Outcome{OK: true, Message: k.okMsg}
}

// judgeReply judges what was read of the reply: got, and the error that
// ended reading before len(receive) bytes came (nil if they did).
func (k *tcpChecker) judgeReply(got []byte, err error) Outcome {
	if err != nil {
		if len(got) > 0 {
			return fail(k.what, fmt.Sprintf("wrong reply: got only %s (%s), want %s", truncate(got, 64), describe(phaseReply, err, k.timeout), truncate(k.receive, 64)))
		}
		return fail(k.what, describe(phaseReply, err, k.timeout))
	}
	if !bytes.Equal(got, k.receive) {
		return fail(k.what, fmt.Sprintf("wrong reply: got %s, want %s", truncate(got, 64), truncate(k.receive, 64)))
	}
	return Outcome{OK: true, Message: k.okMsg}
}

// closeNow closes a probe's connection with a reset rather than a FIN: at
// thousands of checks a second, orderly closes would leave as many sockets
// in TIME_WAIT (HAProxy closes its checks the same way).
func closeNow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
