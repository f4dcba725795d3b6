package store

import (
	"context"
	"testing"
	"time"
)

func TestFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		add := func(key string, at time.Time) {
			t.Helper()
			if err := st.AddFailure(ctx, key, at); err != nil {
				t.Fatal(err)
			}
		}
		// Recorded in time order, as a live server does; each AddFailure prunes old rows.
		add("client:192.0.2.1", now.Add(-25*time.Hour))
		add("account:1", now.Add(-2*time.Hour))
		add("account:1", now.Add(-30*time.Minute))
		add("account:1", now.Add(-time.Minute))
		add("client:192.0.2.1", now.Add(-5*time.Minute))

		for _, c := range []struct {
			key   string
			since time.Time
			want  int
		}{
			{"account:1", now.Add(-time.Hour), 2},
			{"account:1", now.Add(-3 * time.Hour), 3},
			{"account:1", now.Add(-30 * time.Minute), 2}, // at or after since
			{"client:192.0.2.1", now.Add(-48 * time.Hour), 1},
			{"account:2", now.Add(-time.Hour), 0},
		} {
			if n, err := st.Failures(ctx, c.key, c.since); err != nil || n != c.want {
				t.Errorf("Failures(%s, since %v) = %d, %v; want %d", c.key, now.Sub(c.since), n, err, c.want)
			}
		}
		if n := rawCount(t, st, `select count(*) from failures`); n != 4 {
			t.Errorf("failures older than 24h not pruned: %d rows, want 4", n)
		}
		if err := st.ClearFailures(ctx, "account:1"); err != nil {
			t.Fatal(err)
		}
		if n, _ := st.Failures(ctx, "account:1", now.Add(-3*time.Hour)); n != 0 {
			t.Errorf("after ClearFailures: %d", n)
		}
		if n, _ := st.Failures(ctx, "client:192.0.2.1", now.Add(-time.Hour)); n != 1 {
			t.Errorf("ClearFailures touched another key: %d", n)
		}
	})
}
