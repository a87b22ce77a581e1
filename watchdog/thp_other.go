//go:build !linux

package watchdog

// NoHugePages does nothing: transparent huge pages are Linux's.
func NoHugePages() error { return nil }
