package config

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Seeds beyond these live in testdata/fuzz/<FuzzName>/ (the GKE fixture, the
// samples and any crasher found so far).

func FuzzParseCluster(f *testing.F) {
	f.Add([]byte(baseCluster + web(`healthcheck { type: TCP port: 80 }`)))
	f.Add([]byte("seesaw_vip < fqdn: 'v' ipv4: '10.0.0.1/8' > node < fqdn: 'n' > vserver < name: 'x' vserver_entry < protocol: 9 port: -1 > >"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCluster("f.pb", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("ParseCluster returned cluster %v and error %v", c != nil, err)
		}
		if err != nil {
			checkIssues(t, err, "f.pb", bytes.Count(data, []byte("\n"))+1)
			return
		}
		_ = c.Counts()
		for _, v := range c.Vservers {
			for _, a := range v.Address.Addrs() {
				_ = c.ClassifyVIP(a, DefaultEngine().AnycastRanges)
			}
		}
		// A config that loads must load again, unchanged, after a round trip
		// through the text format.
		out, err := prototext.Marshal(c.Proto)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := ParseCluster("f2.pb", out)
		if err != nil {
			t.Fatalf("reparse of\n%s\nfailed: %v", out, err)
		}
		if !proto.Equal(c.Proto, c2.Proto) || c.Counts() != c2.Counts() {
			t.Fatalf("round trip changed the config:\n%v\n%v", c.Proto, c2.Proto)
		}
	})
}

func FuzzParseEngine(f *testing.F) {
	f.Add([]byte(minimalCfg))
	f.Add([]byte("[cluster]\nname=x\nnode_ipv4=1.2.3.4\n[extra_service_anycast]\na=192.168.255.1\n[interface]\nlb=eth9 ; c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, warns, err := ParseEngine("f.cfg", data)
		if (e == nil) == (err == nil) {
			t.Fatalf("ParseEngine returned engine %v and error %v", e != nil, err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if err != nil {
			checkIssues(t, err, "f.cfg", lines)
		}
		for _, w := range warns {
			if w.File != "f.cfg" || w.Line < 1 || w.Line > lines {
				t.Fatalf("warning with bad position: %+v", w)
			}
		}
		if e != nil && (e.ClusterName == "" || !e.Node.IPv4.Is4() || e.VRID == 0) {
			t.Fatalf("accepted an engine config without its essentials: %+v", e)
		}
	})
}

// checkIssues asserts every error is an Issue for file with a line inside the
// document.
func checkIssues(t *testing.T, err error, file string, lines int) {
	t.Helper()
	errs, ok := err.(Errors)
	if !ok || len(errs) == 0 {
		t.Fatalf("error %T %v is not a non-empty Errors", err, err)
	}
	for _, e := range errs {
		var iss Issue
		if !errors.As(e, &iss) {
			t.Fatalf("error %T %v is not an Issue", e, e)
		}
		if iss.File != file || iss.Line < 0 || iss.Line > lines || iss.Msg == "" {
			t.Fatalf("bad issue %+v (document has %d lines)", iss, lines)
		}
	}
}
