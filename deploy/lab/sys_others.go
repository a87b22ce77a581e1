//go:build !linux

package lab

import (
	"os"
	"os/exec"
)

func lockFile(path string) (func(), error) { return func() {}, nil }

func dieWithParent(cmd *exec.Cmd) {}

func terminalState(f *os.File) func() { return func() {} }

// IsTerminal reports whether f is a terminal (never, off Linux).
func IsTerminal(f *os.File) bool { return false }

func terminalSize(f *os.File) (int, int) { return 0, 0 }
