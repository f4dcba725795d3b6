package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTimeout checks that a store call waiting on a database that does not answer in time
// — here the sessions table held by another replica's transaction — ends after the store's
// timeout with ErrUnavailable, and that the store serves again once the table is free.
// A database that is down or hangs altogether is TestStoreDown in package api.
func TestTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		st.SetTimeout(300 * time.Millisecond)
		holder := open(t, dsn, keyring(t, newKey(t)))
		held, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- holder.db.inTx(ctx, func(tx conn) error {
				// SQLite's immediate transactions already hold the write lock.
				if !strings.HasPrefix(dsn, "sqlite:") {
					if _, err := tx.exec(ctx, `lock table sessions in access exclusive mode`); err != nil {
						return err
					}
				}
				if _, err := tx.exec(ctx, `delete from sessions where id_hash = 'none'`); err != nil {
					return err
				}
				close(held)
				<-release
				return nil
			})
		}()
		<-held
		now := time.Now()
		err := st.CreateSession(ctx, Session{IDHash: "waiting", Stage: StageAnonymous, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("session write while the table is held: %v, want ErrUnavailable", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// The connection of the call that gave up is closed; a busy machine may take a few
		// tries to open the next within the timeout.
		var served error
		for range 20 {
			served = st.CreateSession(ctx, Session{IDHash: "served", Stage: StageAnonymous, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if served == nil || !errors.Is(served, ErrUnavailable) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if served != nil {
			t.Errorf("session write once the table is free: %v", served)
		}
		// A caller that gives up itself gets its own error, not ErrUnavailable.
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := st.Session(gone, "served", now); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("read with a cancelled context: %v, want the cancellation", err)
		}
	})
}
