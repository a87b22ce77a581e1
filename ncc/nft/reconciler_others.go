//go:build !linux

package nft

import (
	"fmt"
	"runtime"

	"github.com/mdlayher/netlink/nltest"

	"github.com/seesawlb/seesaw/ncc/reconcile"
)

// Reconciler keeps the NCC's nftables table; nftables exists only on
// Linux.
type Reconciler struct{}

// Open reports that nftables exists only on Linux.
func Open(netns int, logf func(format string, args ...any)) (*Reconciler, error) {
	return nil, fmt.Errorf("nft: %w: nftables exists only on Linux, not %s", ErrNotSupported, runtime.GOOS)
}

// OpenTestDial reports that the reconciler exists only on Linux: it is
// the Linux one, over another transport.
func OpenTestDial(dial nltest.Func, logf func(format string, args ...any)) (*Reconciler, error) {
	return nil, fmt.Errorf("nft: %w: the reconciler exists only on Linux, not %s", ErrNotSupported, runtime.GOOS)
}

func (r *Reconciler) unsupported() error {
	return fmt.Errorf("nft: %w on %s", ErrNotSupported, runtime.GOOS)
}

// Close does nothing.
func (r *Reconciler) Close() error { return nil }

// Writes is 0.
func (r *Reconciler) Writes() uint64 { return 0 }

// Apply reports that nftables exists only on Linux.
func (r *Reconciler) Apply(desired State, dryRun bool) ([]reconcile.Change, error) {
	return nil, r.unsupported()
}

// Audit reports that nftables exists only on Linux.
func (r *Reconciler) Audit() ([]reconcile.Change, error) { return nil, r.unsupported() }

// Desired is never set.
func (r *Reconciler) Desired() (State, bool) { return State{}, false }

// Known reports that nftables exists only on Linux.
func (r *Reconciler) Known() (State, error) { return State{}, r.unsupported() }

// Cleanup reports that nftables exists only on Linux.
func (r *Reconciler) Cleanup() ([]reconcile.Change, error) { return nil, r.unsupported() }
