package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// modulePath is how the lab recognizes the repository it belongs to.
const modulePath = "github.com/seesawlb/seesaw"

// CacheDir is where the lab keeps downloads and built assets: $SEESAW_LAB_CACHE
// when set, else .cache/lab/ at the root of the repository that holds the
// current directory or the running binary (git ignores /.cache/), else the
// user's cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv("SEESAW_LAB_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	if root, ok := RepoRoot(); ok {
		return filepath.Join(root, ".cache", "lab"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("lab: no cache directory: set SEESAW_LAB_CACHE: %w", err)
	}
	return filepath.Join(d, "seesaw-lab"), nil
}

// RepoRoot finds the root of the project's repository from the current
// directory or, failing that, from where the running binary lives
// (bin/seesaw-lab).
func RepoRoot() (string, bool) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, d := range starts {
		for {
			b, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && bytes.HasPrefix(b, []byte("module "+modulePath+"\n")) {
				return d, true
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", false
}
