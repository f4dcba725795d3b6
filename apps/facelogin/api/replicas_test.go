package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// TestReplicas runs two api Servers on one database, as the cluster runs its replicas
// behind a load balancer: Amy enrolls on one and is recognised on the other without a
// restart; her session works on both; her erasure on one reaches the other's index.
func TestReplicas(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		sec := newSecrets(t)
		a := newReplica(t, dsn, sec, api.Options{})
		b := newReplica(t, dsn, sec, api.Options{})

		_, id := enroll(t, a, amy, store.RoleUser)
		eventually(t, "replica B holds Amy's 3 descriptors", func() bool { return b.descriptors() == 3 })

		kiosk := b.client()
		if got := last(kiosk.faceLogin(photo(t, "amy", 5))); got.Status != "recognized" || got.Name != amy.name {
			t.Fatalf("login on replica B: %+v", got)
		}
		// The PIN goes to the other replica: the session lives in the store.
		want(t, "PIN on replica A", kiosk.on(a).json("POST", "/api/login/pin", map[string]string{"pin": amy.pin}), http.StatusOK, "")
		want(t, "profile on replica B", kiosk.do("GET", "/api/me", "", nil), http.StatusOK, "")

		// Replica C starts now (its index is built from the store) and never polls again.
		c := newReplica(t, dsn, sec, api.Options{PollInterval: time.Hour})
		if n := c.descriptors(); n != 3 {
			t.Fatalf("replica C started with %d descriptors, want 3", n)
		}

		want(t, "erase on replica A", kiosk.on(a).do("DELETE", "/api/me/face", "", nil), http.StatusNoContent, "")
		// C has not heard of the erasure, but the store has the last word: Amy is unknown.
		if got := last(c.client().faceLogin(photo(t, "amy", 5))); got.Status != "unknown" {
			t.Fatalf("Amy on a replica that has not polled since her erasure: %+v, want unknown", got)
		}
		eventually(t, "replica B dropped Amy's descriptors", func() bool { return b.descriptors() == 0 })
		if n := rawSamples(t, dsn, id); n != 0 {
			t.Errorf("%d face_samples rows remain after erasure", n)
		}
		if got := last(b.client().faceLogin(photo(t, "amy", 5))); got.Status != "unknown" {
			t.Fatalf("Amy on replica B after erasure: %+v, want unknown", got)
		}

		// An admin deleting the whole account reaches the other replica too.
		admin, _ := enroll(t, a, penny, store.RoleAdmin)
		_, id2 := enroll(t, a, person{"Raj", "raj@example.com", "2468", "raj's long password", "raj"}, store.RoleUser)
		eventually(t, "replica B holds Penny's and Raj's descriptors", func() bool { return b.descriptors() == 6 })
		want(t, "delete Raj", admin.do("DELETE", "/api/admin/users/"+itoa(id2), "", nil), http.StatusNoContent, "")
		eventually(t, "replica B dropped Raj", func() bool { return b.descriptors() == 3 })
		if n := rawSamples(t, dsn, id2); n != 0 {
			t.Errorf("%d face_samples rows of a deleted account remain", n)
		}
	})
}
