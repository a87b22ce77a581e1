package healthcheck

import (
	"strconv"
	"strings"
)

// The two keys of a check, defined here once for both ends of the
// healthcheck session:
//
//   - ProbeKey is what goes on the wire and when: the healthcheck process
//     runs one probe for all its checks with equal probe keys.
//   - Key is a check's whole identity: the probe key and how results turn
//     into a state (retries, rise, fall). The engine sends one Check per
//     key, however many vservers and entries ask for it, and keeps for each
//     the destinations its result decides; its id is derived from the key,
//     so a check keeps its id across reloads and restarts.
//
// Neither includes the id or the name, which are labels.

// ProbeKey is every field that defines a check's probe.
func ProbeKey(c *Check) string {
	return strings.Join([]string{
		c.GetType().String(), c.GetMode().String(), c.GetAddress(), c.GetTarget(),
		strconv.FormatUint(uint64(c.GetPort()), 10), strconv.FormatUint(uint64(c.GetFwmark()), 10),
		c.GetInterval().AsDuration().String(), c.GetTimeout().AsDuration().String(),
		strconv.Quote(c.GetSend()), strconv.Quote(c.GetReceive()), strconv.Itoa(int(c.GetCode())),
		strconv.Quote(c.GetMethod()), strconv.FormatBool(c.GetProxy()), strconv.FormatBool(c.GetTlsVerify()),
	}, "|")
}

// Key is every field that defines a check: its probe and its thresholds.
func Key(c *Check) string {
	return ProbeKey(c) + "|" + strings.Join([]string{
		strconv.Itoa(int(c.GetRetries())), strconv.Itoa(int(c.GetRise())), strconv.Itoa(int(c.GetFall())),
	}, "|")
}
