package ipc

import "context"

// RecvLoop receives a stream's messages into a channel until the stream
// fails (the error arrives on the second channel) or ctx is done, so that a
// caller can select on them alongside its own events.
func RecvLoop[T any](ctx context.Context, recv func() (*T, error)) (<-chan *T, <-chan error) {
	msgs := make(chan *T)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs, errc
}
