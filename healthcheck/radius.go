package healthcheck

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	hcpb "github.com/seesawlb/seesaw/proto/healthcheck"
)

// RADIUS codes and attributes (RFC 2865, RFC 3579).
const (
	radiusAccessRequest   = 1
	radiusAccessAccept    = 2
	radiusAccessReject    = 3
	radiusAccessChallenge = 11

	attrUserName             = 1
	attrUserPassword         = 2
	attrNASIPAddress         = 4
	attrServiceType          = 6
	attrNASIdentifier        = 32
	attrNASPortType          = 61
	attrMessageAuthenticator = 80

	serviceTypeLogin   = 1
	nasPortTypeVirtual = 5

	radiusHeaderLen = 20
	radiusMaxLen    = 4096
)

var radiusCodeNames = map[byte]string{
	radiusAccessAccept:    "Access-Accept",
	radiusAccessReject:    "Access-Reject",
	radiusAccessChallenge: "Access-Challenge",
}

// radiusChecker sends an Access-Request for `send` = "user:password:secret"
// (the secret may itself contain colons) and expects the answer `receive`
// names: accept (the default), reject, challenge or any. Every answer must
// carry the right response authenticator, and a Message-Authenticator when
// it has one; a wrong secret therefore fails the check whatever the code.
type radiusChecker struct {
	t        *target
	what     string
	timeout  time.Duration
	user     string
	password string
	secret   []byte
	nasID    string
	want     byte // 0: any
	okMsg    string
}

func newRADIUSChecker(c *hcpb.Check, t *target, env *Env) (*radiusChecker, error) {
	parts := strings.SplitN(c.GetSend(), ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return nil, fmt.Errorf("healthcheck: a RADIUS check's send must be user:password:secret")
	}
	if len(parts[1]) > 128 {
		return nil, fmt.Errorf("healthcheck: a RADIUS password is at most 128 bytes")
	}
	k := &radiusChecker{t: t, timeout: timeoutOf(c), user: parts[0], password: parts[1], secret: []byte(parts[2])}
	k.nasID = env.NASIdentifier
	switch strings.ToLower(c.GetReceive()) {
	case "", "accept":
		k.want = radiusAccessAccept
	case "reject":
		k.want = radiusAccessReject
	case "challenge":
		k.want = radiusAccessChallenge
	case "any":
	default:
		return nil, fmt.Errorf("healthcheck: a RADIUS check's receive must be accept, reject, challenge or any, not %q", c.GetReceive())
	}
	k.what = fmt.Sprintf("RADIUS %s for %q", t.label(c.GetMode()), k.user)
	if k.want == 0 {
		k.okMsg = k.what + ": got an authenticated answer"
	} else {
		k.okMsg = k.what + ": got " + radiusCodeNames[k.want]
	}
	return k, nil
}

func (k *radiusChecker) Check(ctx context.Context) Outcome {
	conn, err := k.t.dialer.DialContext(ctx, "udp", k.t.dst.String())
	if err != nil {
		return fail(k.what, describe(phaseConnect, err, k.timeout))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var nasIP netip.Addr
	if ap, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil {
		nasIP = ap.Addr().Unmap()
	}
	req, err := k.request(nasIP)
	if err != nil {
		return fail(k.what, err.Error())
	}
	if _, err := conn.Write(req); err != nil {
		return fail(k.what, describe(phaseSend, err, k.timeout))
	}
	buf := make([]byte, radiusMaxLen)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return fail(k.what, describe(phaseDatagram, err, k.timeout))
		}
		code, err := verifyRADIUSResponse(buf[:n], req, k.secret)
		if errors.Is(err, errRADIUSOtherID) {
			continue // a late answer to an earlier request
		}
		if err != nil {
			return fail(k.what, err.Error())
		}
		name, ok := radiusCodeNames[code]
		if !ok {
			return fail(k.what, fmt.Sprintf("answer has code %d, which does not answer an Access-Request", code))
		}
		if k.want != 0 && code != k.want {
			return fail(k.what, fmt.Sprintf("wrong answer: got %s, want %s", name, radiusCodeNames[k.want]))
		}
		return Outcome{OK: true, Message: k.okMsg}
	}
}

// request builds an Access-Request with a fresh identifier and request
// authenticator.
func (k *radiusChecker) request(nasIP netip.Addr) ([]byte, error) {
	var auth [16]byte
	var id [1]byte
	if _, err := rand.Read(auth[:]); err != nil {
		return nil, fmt.Errorf("random authenticator: %w", err)
	}
	rand.Read(id[:])
	p := make([]byte, radiusHeaderLen, 256)
	p[0] = radiusAccessRequest
	p[1] = id[0]
	copy(p[4:20], auth[:])
	p = appendAttr(p, attrUserName, []byte(k.user))
	p = appendAttr(p, attrUserPassword, hidePassword([]byte(k.password), k.secret, auth[:]))
	if k.nasID != "" {
		p = appendAttr(p, attrNASIdentifier, []byte(k.nasID))
	}
	if nasIP.Is4() {
		p = appendAttr(p, attrNASIPAddress, nasIP.AsSlice())
	}
	p = appendAttr(p, attrNASPortType, binary.BigEndian.AppendUint32(nil, nasPortTypeVirtual))
	p = appendAttr(p, attrServiceType, binary.BigEndian.AppendUint32(nil, serviceTypeLogin))
	// A Message-Authenticator on every request (RFC 3579), as servers
	// hardened against forged answers (CVE-2024-3596) may require.
	maAt := len(p) + 2
	p = appendAttr(p, attrMessageAuthenticator, make([]byte, 16))
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	mac := hmac.New(md5.New, k.secret)
	mac.Write(p)
	copy(p[maAt:maAt+16], mac.Sum(nil))
	return p, nil
}

func appendAttr(p []byte, typ byte, val []byte) []byte {
	p = append(p, typ, byte(2+len(val)))
	return append(p, val...)
}

// hidePassword is RFC 2865 section 5.2: the password, padded to a multiple
// of 16, XORed with a chain of MD5(secret + previous block).
func hidePassword(pw, secret, auth []byte) []byte {
	n := (len(pw) + 15) / 16 * 16
	if n == 0 {
		n = 16
	}
	out := make([]byte, n)
	copy(out, pw)
	prev := auth
	for i := 0; i < n; i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		b := h.Sum(nil)
		for j := range 16 {
			out[i+j] ^= b[j]
		}
		prev = out[i : i+16]
	}
	return out
}

var errRADIUSOtherID = errors.New("answer to another request")

// verifyRADIUSResponse checks that resp answers req: same identifier, sane
// length, response authenticator MD5(code|id|length|request
// authenticator|attributes|secret), and a valid Message-Authenticator if
// present. It returns the response code.
func verifyRADIUSResponse(resp, req, secret []byte) (byte, error) {
	if len(resp) < radiusHeaderLen {
		return 0, fmt.Errorf("answer of %d bytes is too short for RADIUS", len(resp))
	}
	if resp[1] != req[1] {
		return 0, errRADIUSOtherID
	}
	l := int(binary.BigEndian.Uint16(resp[2:4]))
	if l < radiusHeaderLen || l > len(resp) {
		return 0, fmt.Errorf("answer's length field %d does not fit the %d bytes received", l, len(resp))
	}
	resp = resp[:l]
	h := md5.New()
	h.Write(resp[:4])
	h.Write(req[4:20])
	h.Write(resp[20:])
	h.Write(secret)
	if !hmac.Equal(h.Sum(nil), resp[4:20]) {
		return 0, fmt.Errorf("answer's response authenticator does not verify (wrong shared secret?)")
	}
	// Walk the attributes: they must be well formed, and a
	// Message-Authenticator must verify.
	for i := radiusHeaderLen; i < l; {
		if i+2 > l || resp[i+1] < 2 || i+int(resp[i+1]) > l {
			return 0, fmt.Errorf("answer has a malformed attribute at offset %d", i)
		}
		typ, alen := resp[i], int(resp[i+1])
		if typ == attrMessageAuthenticator {
			if alen != 18 {
				return 0, fmt.Errorf("answer's Message-Authenticator has length %d", alen)
			}
			cp := bytes.Clone(resp)
			copy(cp[4:20], req[4:20])
			clear(cp[i+2 : i+18])
			mac := hmac.New(md5.New, secret)
			mac.Write(cp)
			if !hmac.Equal(mac.Sum(nil), resp[i+2:i+18]) {
				return 0, fmt.Errorf("answer's Message-Authenticator does not verify (wrong shared secret?)")
			}
		}
		i += alen
	}
	return resp[0], nil
}
