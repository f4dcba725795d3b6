package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLogins(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := open(t, dsn, keyring(t, newKey(t)))
		ann, bob := mustUser(t, st, "Ann"), mustUser(t, st, "Bob")
		t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
		events := []LoginEvent{
			{UserID: ann.ID, At: t0, Method: "password", Client: "a", Success: false},
			{UserID: ann.ID, At: t0.Add(time.Minute), Method: "face+pin", Client: "b", Success: true},
			{UserID: bob.ID, At: t0.Add(2 * time.Minute), Method: "face", Client: "c", Success: true},
			{UserID: ann.ID, At: t0.Add(3 * time.Minute), Method: "face", Client: "d", Success: false},
		}
		for _, e := range events {
			if err := st.AddLogin(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AddLogin(ctx, LoginEvent{UserID: 999999, At: t0, Method: "face"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("login of missing user: got %v, want ErrNotFound", err)
		}
		got, err := st.Logins(ctx, ann.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := []LoginEvent{events[3], events[1]}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("Logins(ann, 2) = %+v, want %+v", got, want)
		}
		if got, _ := st.Logins(ctx, ann.ID, 10); len(got) != 3 {
			t.Errorf("Logins(ann, 10) = %d events, want 3", len(got))
		}
	})
}
