package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable is wrapped by the errors of calls the database did not answer: it was down
// (the connection refused or lost) or did not answer within the store's timeout. Servers
// answer it with 503 and a time to retry, not as their own failure.
var ErrUnavailable = errors.New("store unavailable")

// DefaultTimeout is a sensible SetTimeout for servers: well under the time a person waits
// for a page, well over what any of the store's calls takes on a healthy database.
const DefaultTimeout = 3 * time.Second

// SetTimeout bounds every later call of s (a transaction counts as one call) to d; 0 means no
// bound beyond the caller's context. A call that runs out of time, or finds the database
// down, fails with an error wrapping ErrUnavailable. Call it before s is used concurrently.
func (s *Store) SetTimeout(d time.Duration) {
	if t, ok := s.db.(*timed); ok {
		t.d = d
		return
	}
	s.db = &timed{dialect: s.db, d: d}
}

// timed is a dialect whose calls end after d, their errors marked ErrUnavailable when the
// database was down or slow.
type timed struct {
	dialect
	d time.Duration
}

// within runs fn with ctx bounded by the deadline (none when t.d is 0) and marks its error
// ErrUnavailable when the database was down or did not answer in time. Errors of a caller
// whose own context ended pass unmarked.
func (t *timed) within(ctx context.Context, deadline time.Time, fn func(ctx context.Context) error) error {
	bounded := ctx
	if t.d > 0 {
		var cancel context.CancelFunc
		bounded, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	err := fn(bounded)
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, ErrUnavailable):
		return err
	case bounded.Err() != nil:
		return fmt.Errorf("%w: no answer within %v: %w", ErrUnavailable, t.d, err)
	case t.down(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (t *timed) exec(ctx context.Context, q string, args ...any) (n int64, err error) {
	err = t.within(ctx, time.Now().Add(t.d), func(ctx context.Context) error {
		n, err = t.dialect.exec(ctx, q, args...)
		return err
	})
	return n, err
}

func (t *timed) query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error {
	return t.within(ctx, time.Now().Add(t.d), func(ctx context.Context) error {
		return t.dialect.query(ctx, q, args, row)
	})
}

// inTx bounds the whole transaction: its statements share the deadline, whatever context
// they are given.
func (t *timed) inTx(ctx context.Context, fn func(tx conn) error) error {
	deadline := time.Now().Add(t.d)
	return t.within(ctx, deadline, func(ctx context.Context) error {
		return t.dialect.inTx(ctx, func(tx conn) error {
			return fn(&timedTx{conn: tx, t: t, deadline: deadline})
		})
	})
}

func (t *timed) ping(ctx context.Context) error {
	return t.within(ctx, time.Now().Add(t.d), t.dialect.ping)
}

// timedTx runs a transaction's statements within the transaction's deadline.
type timedTx struct {
	conn
	t        *timed
	deadline time.Time
}

func (x *timedTx) exec(ctx context.Context, q string, args ...any) (n int64, err error) {
	err = x.t.within(ctx, x.deadline, func(ctx context.Context) error {
		n, err = x.conn.exec(ctx, q, args...)
		return err
	})
	return n, err
}

func (x *timedTx) query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error {
	return x.t.within(ctx, x.deadline, func(ctx context.Context) error {
		return x.conn.query(ctx, q, args, row)
	})
}
