package store

import (
	"context"
	"errors"
	"sync"
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

// TestReserveFailure fires concurrent reservations at one key from two replicas, as guesses
// spread over two api pods do, and expects exactly the limit to succeed; keys listed in
// either order must not deadlock, and a refused reservation records nothing.
func TestReserveFailure(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		keys := keyring(t, newKey(t))
		replicas := []*Store{open(t, dsn, keys), open(t, dsn, keys)}
		now := time.Now()
		since := now.Add(-time.Hour)
		const max, attempts = 7, 100
		account := Limit{Key: "account:1", Max: max, Since: since}
		client := Limit{Key: "client:192.0.2.1", Max: attempts, Since: since}

		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []Reservation
		refused := 0
		for i := range attempts {
			limits := []Limit{account, client}
			if i%2 == 1 {
				limits = []Limit{client, account}
			}
			wg.Go(func() {
				r, err := replicas[i%2].ReserveFailure(ctx, now, limits...)
				mu.Lock()
				defer mu.Unlock()
				var lim *LimitError
				switch {
				case err == nil:
					won = append(won, r)
				case errors.As(err, &lim) && lim.Limit.Key == account.Key:
					refused++
				default:
					t.Errorf("ReserveFailure: %v", err)
				}
			})
		}
		wg.Wait()
		if len(won) != max || refused != attempts-max {
			t.Fatalf("%d concurrent reservations over 2 replicas: %d succeeded, %d refused; want %d and %d", attempts, len(won), refused, max, attempts-max)
		}
		for _, l := range []Limit{account, client} {
			if n, err := replicas[0].Failures(ctx, l.Key, since); err != nil || n != max {
				t.Errorf("Failures(%s) = %d, %v; want %d (refused reservations record nothing)", l.Key, n, err, max)
			}
		}

		// Releasing a reservation (the secret was right) makes room for one more.
		if err := replicas[1].Release(ctx, won[0]); err != nil {
			t.Fatal(err)
		}
		if n, _ := replicas[0].Failures(ctx, account.Key, since); n != max-1 {
			t.Errorf("after Release: %d failures, want %d", n, max-1)
		}
		if _, err := replicas[0].ReserveFailure(ctx, now, account); err != nil {
			t.Errorf("reservation after a release: %v", err)
		}
		var lim *LimitError
		if _, err := replicas[0].ReserveFailure(ctx, now, account); !errors.As(err, &lim) {
			t.Errorf("reservation over the limit again: got %v, want a *LimitError", err)
		}
		// All failures are at now, so the next attempt fits when they leave the window.
		if want := now.Sub(since); lim == nil || lim.RetryAfter < want-time.Millisecond || lim.RetryAfter > want {
			t.Errorf("RetryAfter = %v, want %v", lim.RetryAfter, want)
		}
		// Failures at different times: the next attempt fits once enough of the oldest left.
		for _, ago := range []time.Duration{50 * time.Minute, 40 * time.Minute, 30 * time.Minute} {
			if err := replicas[0].AddFailure(ctx, "client:198.51.100.1", now.Add(-ago)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := replicas[0].ReserveFailure(ctx, now, Limit{Key: "client:198.51.100.1", Max: 2, Since: since})
		if !errors.As(err, &lim) || lim.RetryAfter != 20*time.Minute {
			t.Errorf("3 failures 50, 40 and 30 minutes ago, limit 2 an hour: %v, want a retry after 20m", err)
		}
		// Failures before Since do not count.
		if _, err := replicas[0].ReserveFailure(ctx, now, Limit{Key: account.Key, Max: 1, Since: now.Add(time.Second)}); err != nil {
			t.Errorf("reservation with a later window: %v", err)
		}
	})
}
