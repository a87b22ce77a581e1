//go:build !linux

package announce

import (
	"fmt"
	"runtime"
)

// Sender sends frames; it exists on Linux only.
type Sender struct{}

// NewSender reports that announcements are sent on Linux only.
func NewSender() (*Sender, error) {
	return nil, fmt.Errorf("announce: packet sockets are Linux only, not %s", runtime.GOOS)
}

// Send does nothing here.
func (s *Sender) Send(int, ...[]byte) error { return fmt.Errorf("announce: not on %s", runtime.GOOS) }

// Close does nothing here.
func (s *Sender) Close() error { return nil }
