// Package keepalived reads a keepalived configuration and translates it into
// Seesaw's: one cluster.pb for the pair and one seesaw.cfg per node. It is
// what "seesaw config import keepalived" runs.
//
// Parsing follows keepalived.conf(5): blocks delimited by braces, comments
// starting with '#' or '!' anywhere outside quotes, quoted strings with
// escapes, the include directives (globs, relative to the including file),
// conditional lines ("@id ...", "@^id ...") and "$NAME=value" parameters.
// Multi-line parameters, ~SEQ and ~LST blocks are refused with their
// file:line, since expanding them would need keepalived's own expander.
//
// Mapping keeps what a Seesaw pair can express (virtual servers, real
// servers and their checks, the VRRP instance's router id, VIPs, node and
// peer addresses) and lists everything else, one line per statement with its
// file:line and the reason, so that an operator knows exactly what to
// redo by hand (scripts, authentication, sorry servers, ...). Nothing is
// dropped silently: a statement is either mapped or listed.
package keepalived
