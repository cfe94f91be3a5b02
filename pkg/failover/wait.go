package failover

import (
	"context"
	"time"
)

// pace says how soon a check wants to look again.
type pace int

const (
	backOff pace = iota // nothing is about to happen: wait twice as long as last time
	fast                // a fast event is expected: look again after Poll
)

// waitUntil calls check until it says done or fails, or the clock passes
// until (then context.DeadlineExceeded), or ctx ends. It always checks once
// more at the deadline.
func waitUntil(ctx context.Context, o Options, until time.Time, check func() (bool, pace, error)) error {
	delay := o.Poll
	for {
		done, p, err := check()
		if err != nil || done {
			return err
		}
		wait := o.Poll
		if p == backOff {
			wait, delay = delay, min(2*delay, o.PollCap)
		} else {
			delay = o.Poll
		}
		left := until.Sub(o.Clock.Now())
		if left <= 0 {
			return context.DeadlineExceeded
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-o.Clock.After(min(wait, left)):
		}
	}
}
