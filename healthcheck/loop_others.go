//go:build !linux

package healthcheck

import (
	"errors"
	"time"
)

// ioLoop exists on Linux only; elsewhere every check runs on a goroutine.
type ioLoop struct{}

func newIOLoop() (*ioLoop, error) { return nil, errors.New("no I/O loop on this platform") }

func (*ioLoop) close() {}

type ticker interface{ tick(now time.Time) time.Time }

func (*ioLoop) addTicker(ticker)    {}
func (*ioLoop) removeTicker(ticker) {}
func (*ioLoop) wakeup()             {}

func (*tcpChecker) start(*ioLoop, time.Time, func(Outcome)) bool  { return false }
func (*httpChecker) start(*ioLoop, time.Time, func(Outcome)) bool { return false }
