package healthcheck

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"sync"
	"testing"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// radiusResponder is a RADIUS server for the tests: it checks each
// Access-Request as a server would (Message-Authenticator, hidden
// password) and answers by user name: "alice" with password "right" is
// accepted, "carol" is challenged, anyone else rejected. It signs with
// secret (which may differ from the client's, to test verification) and
// adds a Message-Authenticator to its answers when withMA is set.
type radiusResponder struct {
	secret []byte
	withMA bool

	mu      sync.Mutex
	bad     []string // what was wrong with requests
	nasID   string
	nasPort []byte
}

func (r *radiusResponder) complain(s string) {
	r.mu.Lock()
	r.bad = append(r.bad, s)
	r.mu.Unlock()
}

func (r *radiusResponder) answer(req []byte) []byte {
	if len(req) < 20 || req[0] != radiusAccessRequest || int(binary.BigEndian.Uint16(req[2:])) != len(req) {
		r.complain("malformed request")
		return nil
	}
	attrs := map[byte][]byte{}
	maAt := -1
	for i := 20; i < len(req); {
		t, l := req[i], int(req[i+1])
		attrs[t] = req[i+2 : i+l]
		if t == attrMessageAuthenticator {
			maAt = i + 2
		}
		i += l
	}
	if maAt < 0 {
		r.complain("no Message-Authenticator")
	} else {
		cp := bytes.Clone(req)
		clear(cp[maAt : maAt+16])
		mac := hmac.New(md5.New, r.secret)
		mac.Write(cp)
		if !hmac.Equal(mac.Sum(nil), req[maAt:maAt+16]) {
			r.complain("bad Message-Authenticator")
		}
	}
	// Unhide the password (RFC 2865 5.2).
	hidden := attrs[attrUserPassword]
	pw := make([]byte, len(hidden))
	prev := req[4:20]
	for i := 0; i+16 <= len(hidden); i += 16 {
		h := md5.New()
		h.Write(r.secret)
		h.Write(prev)
		b := h.Sum(nil)
		for j := range 16 {
			pw[i+j] = hidden[i+j] ^ b[j]
		}
		prev = hidden[i : i+16]
	}
	pw = bytes.TrimRight(pw, "\x00")
	r.mu.Lock()
	r.nasID = string(attrs[attrNASIdentifier])
	r.nasPort = attrs[attrNASPortType]
	r.mu.Unlock()

	code := byte(radiusAccessReject)
	switch {
	case string(attrs[attrUserName]) == "alice" && string(pw) == "right":
		code = radiusAccessAccept
	case string(attrs[attrUserName]) == "carol":
		code = radiusAccessChallenge
	case string(attrs[attrUserName]) == "mallory":
		return nil // never answers
	}
	resp := []byte{code, req[1], 0, 0}
	resp = append(resp, make([]byte, 16)...)
	resp = append(resp, 18, 10, 'H', 'e', 'l', 'l', 'o', ' ', ' ', ' ') // Reply-Message
	maResp := -1
	if r.withMA {
		maResp = len(resp) + 2
		resp = append(resp, attrMessageAuthenticator, 18)
		resp = append(resp, make([]byte, 16)...)
	}
	binary.BigEndian.PutUint16(resp[2:], uint16(len(resp)))
	if maResp >= 0 {
		cp := bytes.Clone(resp)
		copy(cp[4:20], req[4:20])
		mac := hmac.New(md5.New, r.secret)
		mac.Write(cp)
		copy(resp[maResp:], mac.Sum(nil))
	}
	h := md5.New()
	h.Write(resp[:4])
	h.Write(req[4:20])
	h.Write(resp[20:])
	h.Write(r.secret)
	copy(resp[4:20], h.Sum(nil))
	return resp
}

func TestRADIUS(t *testing.T) {
	t.Parallel()
	for _, withMA := range []bool{false, true} {
		r := &radiusResponder{secret: []byte("s3cr:et"), withMA: withMA}
		ap := udpServer(t, "udp4", r.answer)
		c := func(send, receive string) *hcpb.Check {
			c := spec(hcpb.CheckType_RADIUS, ap)
			c.Send, c.Receive = send, receive
			return c
		}
		env := &Env{NASIdentifier: "lb-test-1"}
		want(t, runOnce(t, c("alice:right:s3cr:et", ""), env), true, "got Access-Accept")
		want(t, runOnce(t, c("alice:right:s3cr:et", "accept"), env), true)
		want(t, runOnce(t, c("alice:wrong:s3cr:et", "accept"), env), false, "wrong answer: got Access-Reject, want Access-Accept")
		want(t, runOnce(t, c("alice:wrong:s3cr:et", "reject"), env), true, "got Access-Reject")
		want(t, runOnce(t, c("carol:x:s3cr:et", "challenge"), env), true, "got Access-Challenge")
		want(t, runOnce(t, c("carol:x:s3cr:et", "any"), env), true, "authenticated answer")
		want(t, runOnce(t, c("carol:x:s3cr:et", "ANY"), env), true)
		// The wrong secret: whatever the code, the answer does not verify.
		want(t, runOnce(t, c("alice:right:other", "any"), env), false, "response authenticator does not verify")
		want(t, runOnce(t, short(c("mallory:x:s3cr:et", "any")), env), false, "no reply within 300ms")
		r.mu.Lock()
		// The request signed with the wrong secret is the only one the
		// server found fault with.
		if len(r.bad) != 1 || r.bad[0] != "bad Message-Authenticator" {
			t.Errorf("server complaints: %v", r.bad)
		}
		if r.nasID != "lb-test-1" || !bytes.Equal(r.nasPort, []byte{0, 0, 0, nasPortTypeVirtual}) {
			t.Errorf("NAS-Identifier %q, NAS-Port-Type %v", r.nasID, r.nasPort)
		}
		r.mu.Unlock()
	}
	want(t, runOnce(t, &hcpb.Check{Type: hcpb.CheckType_RADIUS, Address: "127.0.0.1", Port: uint32(closedPort(t, "udp4").Port()), Send: "a:b:c"}, nil), false, "connection refused")
}

// TestRADIUSForgedMessageAuthenticator: an answer whose response
// authenticator verifies but whose Message-Authenticator does not is
// refused.
func TestRADIUSForgedMessageAuthenticator(t *testing.T) {
	t.Parallel()
	r := &radiusResponder{secret: []byte("secret"), withMA: true}
	ap := udpServer(t, "udp4", func(req []byte) []byte {
		resp := r.answer(req)
		// Corrupt the Message-Authenticator, then re-sign the response
		// authenticator so only the former is wrong.
		resp[len(resp)-1] ^= 0xff
		clear(resp[4:20])
		h := md5.New()
		h.Write(resp[:4])
		h.Write(req[4:20])
		h.Write(resp[20:])
		h.Write(r.secret)
		copy(resp[4:20], h.Sum(nil))
		return resp
	})
	c := spec(hcpb.CheckType_RADIUS, ap)
	c.Send = "alice:right:secret"
	want(t, runOnce(t, c, nil), false, "Message-Authenticator does not verify")
}

func TestRADIUSInvalid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ send, receive, err string }{
		{"alice", "", "user:password:secret"},
		{"alice:pw", "", "user:password:secret"},
		{"alice:pw:", "", "user:password:secret"},
		{"alice:pw:s", "maybe", "accept, reject, challenge or any"},
	} {
		_, err := NewChecker(&hcpb.Check{Type: hcpb.CheckType_RADIUS, Address: "127.0.0.1", Send: c.send, Receive: c.receive}, nil)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.err)) {
			t.Errorf("%+v: error %v, want %q", c, err, c.err)
		}
	}
}
