package source

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	configpb "github.com/seesawlb/seesaw/proto/config"
)

// DefaultArchiveDir holds the configs the engine applied from the server
// or the peer; DefaultArchiveKeep is how many it keeps.
const (
	DefaultArchiveDir  = "/var/lib/seesaw/engine/config-archive"
	DefaultArchiveKeep = 50
)

// Text is a cluster config as cluster.pb text.
func Text(c *configpb.Cluster) ([]byte, error) {
	return prototext.MarshalOptions{Multiline: true, Indent: "  ", AllowPartial: true}.Marshal(c)
}

// Archive writes c to dir as cluster.pb text, named by when it was
// applied (cluster-20060102T150405.000000000Z.pb, so that names sort in
// time), and prunes dir to the newest keep configs. from is written as a
// comment at the top. It returns the file's path.
func Archive(dir string, keep int, c *configpb.Cluster, from string, now time.Time) (string, error) {
	if keep <= 0 {
		keep = DefaultArchiveKeep
	}
	text, err := Text(c)
	if err != nil {
		return "", fmt.Errorf("source: archive: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("source: archive: %w", err)
	}
	name := filepath.Join(dir, "cluster-"+now.UTC().Format("20060102T150405.000000000Z")+".pb")
	head := fmt.Sprintf("# applied %s from %s\n", now.UTC().Format(time.RFC3339Nano), strings.ReplaceAll(from, "\n", " "))
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, append([]byte(head), text...), 0o640); err != nil {
		return "", fmt.Errorf("source: archive: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return "", fmt.Errorf("source: archive: %w", err)
	}
	return name, Prune(dir, keep)
}

// Archived lists the archive's configs, oldest first.
func Archived(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, "cluster-") && strings.HasSuffix(n, ".pb") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Prune removes all but the newest keep configs of dir.
func Prune(dir string, keep int) error {
	files, err := Archived(dir)
	if err != nil {
		return fmt.Errorf("source: archive: %w", err)
	}
	for len(files) > keep {
		if err := os.Remove(files[0]); err != nil {
			return fmt.Errorf("source: archive: prune: %w", err)
		}
		files = files[1:]
	}
	return nil
}
