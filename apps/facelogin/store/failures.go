package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// failureRetention is how long failed attempts are kept; rate-limit windows must be shorter.
const failureRetention = 24 * time.Hour

// AddFailure records a failed attempt under key (e.g. "account:42", "client:1.2.3.4") and
// prunes failures older than 24 hours before at.
func (s *Store) AddFailure(ctx context.Context, key string, at time.Time) error {
	err := s.db.inTx(ctx, func(tx conn) error {
		if _, err := tx.exec(ctx, `delete from failures where at < $1`, micros(at.Add(-failureRetention))); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `insert into failures (key, at) values ($1, $2)`, key, micros(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("add failure: %w", err)
	}
	return nil
}

// Failures counts failures under key at or after since.
func (s *Store) Failures(ctx context.Context, key string, since time.Time) (int, error) {
	n, err := count(ctx, s.db, `select count(*) from failures where key = $1 and at >= $2`, key, micros(since))
	if err != nil {
		return 0, fmt.Errorf("count failures: %w", err)
	}
	return n, nil
}

// ClearFailures forgets the failures under key.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.db.exec(ctx, `delete from failures where key = $1`, key); err != nil {
		return fmt.Errorf("clear failures: %w", err)
	}
	return nil
}

// Limit caps the failures recorded under Key: at most Max at or after Since (which must lie
// within the 24 hours failures are kept).
type Limit struct {
	Key   string
	Max   int
	Since time.Time
}

// LimitError is ReserveFailure's answer when the failures under a key reached its limit.
type LimitError struct {
	Limit Limit
	// RetryAfter is how long after the reservation's time the oldest failure that counts
	// leaves the window, so that one more attempt fits.
	RetryAfter time.Duration
}

// Error names the key and its limit.
func (e *LimitError) Error() string {
	return fmt.Sprintf("%d failures under %s reached the limit", e.Limit.Max, e.Limit.Key)
}

// Reservation is the failures one ReserveFailure recorded.
type Reservation struct {
	ids []int64
}

// reserveLock names the lock that serialises the reservations of one key.
func reserveLock(key string) string { return "facelogin.failures:" + key }

// ReserveFailure records a failure at the time at under the key of every limit, unless the
// failures under one of the keys already reached its limit: then it records nothing and
// returns a *LimitError naming that limit. Counting and recording happen in one
// transaction that holds a lock per key, so of concurrent reservations, also from other
// replicas, no more than Max succeed: reserve before checking a secret and Release the
// reservation when the secret was right. Failures older than 24 hours before at are pruned.
func (s *Store) ReserveFailure(ctx context.Context, at time.Time, limits ...Limit) (Reservation, error) {
	var r Reservation
	err := s.db.inTx(ctx, func(tx conn) error {
		var err error
		r, err = s.reserve(ctx, tx, at, limits)
		return err
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve failure: %w", err)
	}
	return r, nil
}

// reserve is ReserveFailure inside the transaction tx. It takes the keys' locks, so call it
// before anything else that locks in tx.
func (s *Store) reserve(ctx context.Context, tx conn, at time.Time, limits []Limit) (Reservation, error) {
	keys := make([]string, 0, len(limits))
	for _, l := range limits {
		keys = append(keys, l.Key)
	}
	// The same order in every transaction, so two reservations never wait for each other's
	// locks in a circle.
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var r Reservation
	for _, k := range keys {
		if err := s.db.lock(ctx, tx, reserveLock(k)); err != nil {
			return r, err
		}
	}
	for _, l := range limits {
		n, err := count(ctx, tx, `select count(*) from failures where key = $1 and at >= $2`, l.Key, micros(l.Since))
		if err != nil {
			return r, err
		}
		if n >= l.Max {
			var oldest time.Time
			if err := scanOne(ctx, tx, `select at from failures where key = $1 and at >= $2 order by at, id limit 1 offset $3`,
				[]any{l.Key, micros(l.Since), int64(n - l.Max)}, timeCol{&oldest}); err != nil {
				return r, err
			}
			return r, &LimitError{Limit: l, RetryAfter: max(oldest.Sub(micros(l.Since)), 0)}
		}
	}
	if _, err := tx.exec(ctx, `delete from failures where at < $1`, micros(at.Add(-failureRetention))); err != nil {
		return r, err
	}
	for _, k := range keys {
		var id int64
		if err := scanOne(ctx, tx, `insert into failures (key, at) values ($1, $2) returning id`, []any{k, micros(at)}, &id); err != nil {
			return r, err
		}
		r.ids = append(r.ids, id)
	}
	return r, nil
}

// Release forgets the failures of r, for an attempt that turned out right.
func (s *Store) Release(ctx context.Context, r Reservation) error {
	if err := release(ctx, s.db, r); err != nil {
		return fmt.Errorf("release failure: %w", err)
	}
	return nil
}

func release(ctx context.Context, c conn, r Reservation) error {
	for _, id := range r.ids {
		if _, err := c.exec(ctx, `delete from failures where id = $1`, id); err != nil {
			return err
		}
	}
	return nil
}
