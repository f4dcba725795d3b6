package store

import (
	"context"
	"fmt"
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

