package announce

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Sender sends frames through an AF_PACKET socket. It belongs to the
// network namespace it was opened in.
type Sender struct {
	fd int
}

// NewSender opens the socket. It needs CAP_NET_RAW.
func NewSender() (*Sender, error) {
	// Protocol 0: the socket sends only, and receives nothing.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("announce: open packet socket: %w (needs CAP_NET_RAW)", err)
	}
	return &Sender{fd: fd}, nil
}

// Send sends each frame (a whole Ethernet frame, as Frame builds) on the
// interface with that index.
func (s *Sender) Send(ifindex int, frames ...[]byte) error {
	for _, f := range frames {
		if len(f) < 14 {
			return fmt.Errorf("announce: a frame of %d bytes is no Ethernet frame", len(f))
		}
		sa := &unix.SockaddrLinklayer{
			Ifindex:  ifindex,
			Protocol: htons(binary.BigEndian.Uint16(f[12:14])),
			Halen:    6,
		}
		copy(sa.Addr[:], f[:6])
		if err := unix.Sendto(s.fd, f, 0, sa); err != nil {
			name := fmt.Sprint(ifindex)
			if ifc, err := net.InterfaceByIndex(ifindex); err == nil {
				name = ifc.Name
			}
			return fmt.Errorf("announce: send on %s: %w", name, err)
		}
	}
	return nil
}

// Close closes the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }
