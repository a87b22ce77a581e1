package source

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/seesawlb/seesaw/engine/config"
	configpb "github.com/seesawlb/seesaw/proto/config"
)

// clusterName is what a cluster may be called in a URL: no path tricks.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Handler is the config server's side: GET /config/<cluster> answers with
// <dir>/<cluster>.pb or <dir>/<cluster>/cluster.pb (protobuf text, as on a
// node's disk), checked and encoded as a binary seesaw.config.Cluster. A
// config that does not parse or check is an error 500 naming the file and
// the problem, never served. logf (may be nil) gets one line per request.
func Handler(dir string, logf func(format string, args ...any)) http.Handler {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/config/")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		if !ok || !clusterName.MatchString(name) {
			http.Error(w, "not found: the path is /config/<cluster>", http.StatusNotFound)
			logf("config server: %s %s from %s: 404", r.Method, r.URL.Path, r.RemoteAddr)
			return
		}
		b, file, err := Load(dir, name)
		switch {
		case errors.Is(err, os.ErrNotExist):
			http.Error(w, fmt.Sprintf("no config for cluster %q", name), http.StatusNotFound)
			logf("config server: %s from %s: 404: %v", r.URL.Path, r.RemoteAddr, err)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			logf("config server: %s from %s: 500: %v", r.URL.Path, r.RemoteAddr, err)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Write(b)
		logf("config server: %s from %s: %s (%d bytes)", r.URL.Path, r.RemoteAddr, file, len(b))
	})
}

// Load reads the config of cluster name from dir and returns it binary,
// with the file it came from.
func Load(dir, name string) ([]byte, string, error) {
	var file string
	var text []byte
	var err error
	for _, f := range []string{filepath.Join(dir, name+".pb"), filepath.Join(dir, name, "cluster.pb")} {
		file = f
		if text, err = os.ReadFile(f); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, file, err
	}
	c := &configpb.Cluster{}
	if err := (prototext.UnmarshalOptions{AllowPartial: true}).Unmarshal(text, c); err != nil {
		// Parse again through the config package for a file:line:col message.
		if _, perr := config.ParseCluster(file, text); perr != nil {
			return nil, file, perr
		}
		return nil, file, fmt.Errorf("%s: %w", file, err)
	}
	if _, err := config.FromProto(file, c); err != nil {
		return nil, file, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, file, fmt.Errorf("%s: %w", file, err)
	}
	return b, file, nil
}
