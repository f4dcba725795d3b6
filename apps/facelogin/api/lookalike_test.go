package api_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// moved returns d moved by dist in a random direction.
func moved(r *rand.Rand, d match.Descriptor, dist float64) match.Descriptor {
	var n [match.Dim]float64
	var norm float64
	for i := range n {
		n[i] = r.NormFloat64()
		norm += n[i] * n[i]
	}
	for i := range d {
		d[i] += float32(n[i] * dist / math.Sqrt(norm))
	}
	return d
}

// TestFacePause guesses PINs after real face matches of Amy's photo: the FacePINFailures-th
// wrong PIN pauses her face sign-in (the worst case of face-path guessing per account is
// that many guesses per password sign-in of hers); her next sign-in, with the password,
// tells her how many wrong PINs were given and when, and resumes face sign-in.
func TestFacePause(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		r := newReplica(t, dsn, newSecrets(t), api.Options{TrustProxy: true, FacePINFailures: 3})
		_, id := enroll(t, r, amy, store.RoleUser)
		for i := range 3 {
			attacker := r.client()
			attacker.xff = "198.51.100.7"
			if got := last(attacker.faceLogin(photo(t, "amy", 5))); got.Status != "recognized" || got.Name != "" {
				t.Fatalf("face login %d with Amy's photo: %+v", i+1, got)
			}
			want(t, "wrong PIN", attacker.json("POST", "/api/login/pin", map[string]string{"pin": "000001"}), http.StatusUnauthorized, "wrong_pin")
		}
		if wrong, _ := pinChecks(t, r.st, id); wrong != 3 {
			t.Fatalf("%d wrong PINs recorded, want 3", wrong)
		}
		got := last(r.client().faceLogin(photo(t, "amy", 4)))
		if got.Status != "paused" || got.Next != "password" || got.Name != "" {
			t.Fatalf("face login after 3 wrong PINs: %+v, want paused, next password", got)
		}
		u, err := r.st.User(context.Background(), id)
		if err != nil || u.FacePausedAt.IsZero() {
			t.Fatalf("Amy's face sign-in not paused: %+v, %v", u, err)
		}

		// Amy signs in with her password: told about the 3 wrong PINs, face sign-in resumes.
		owner := r.client()
		want(t, "password", owner.json("POST", "/api/login/password", map[string]string{"email": amy.email, "password": amy.password}), http.StatusOK, "")
		res := owner.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin})
		want(t, "PIN after the password", res, http.StatusOK, "")
		var told struct {
			FailedPINs struct {
				Count int
				Last  []struct{ At, Method, Client string }
			} `json:"failed_pins"`
		}
		res.decode(t, &told)
		if n := told.FailedPINs; n.Count != 3 || len(n.Last) != 3 || n.Last[0].At == "" || n.Last[0].Method != "face+pin" || n.Last[0].Client == "" {
			t.Errorf("sign-in after the pause told %s; want 3 failed face PINs with times and clients", res.body)
		}
		kiosk := r.client()
		if got := last(kiosk.faceLogin(photo(t, "amy", 4))); got.Status != "recognized" {
			t.Fatalf("face login after the password sign-in: %+v", got)
		}
		res = kiosk.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin})
		want(t, "face + PIN after the pause", res, http.StatusOK, "")
		res.decode(t, &told)
		if told.FailedPINs.Count != 0 {
			t.Errorf("told %d failed PINs again", told.FailedPINs.Count)
		}
	})
}

// TestPINDecides gives Amy a look-alike: an account whose samples are her own descriptors
// moved 0.35 away, nearer than the threshold (no real look-alike photos can be shipped).
// Her real photo then names both as candidates, and only the PIN says who signs in; the
// answer before the PIN names nobody.
func TestPINDecides(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newReplica(t, dsn, newSecrets(t), api.Options{})
		admin, amyID := enroll(t, r, amy, store.RoleAdmin)
		twin := person{"Amy's look-alike", "twin@example.com", "530274", "the look-alike's password", ""}
		twinID := signUp(t, r, twin)
		// The look-alike's samples lie 0.30 from the descriptor of the photo used to sign in.
		probe, err := realEngine(t).Analyze(ctx, photo(t, "amy", 4))
		if err != nil {
			t.Fatal(err)
		}
		rnd := rand.New(rand.NewPCG(1, 2))
		var ds []match.Descriptor
		for range 3 {
			ds = append(ds, moved(rnd, probe.Descriptor, 0.30))
		}
		if err := r.st.ReplaceSamples(ctx, twinID, ds); err != nil {
			t.Fatal(err)
		}
		if err := r.srv.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		own, err := r.st.Samples(ctx, amyID)
		if err != nil {
			t.Fatal(err)
		}
		inf := float32(math.Inf(1))
		amyNear, twinNear, apart := inf, inf, inf
		for i := range ds {
			twinNear = min(twinNear, match.Distance(&ds[i], &probe.Descriptor))
		}
		for _, sm := range own {
			amyNear = min(amyNear, match.Distance(&sm.Descriptor, &probe.Descriptor))
			for i := range ds {
				apart = min(apart, match.Distance(&sm.Descriptor, &ds[i]))
			}
		}
		nearer := amy.name
		if twinNear < amyNear {
			nearer = twin.name
		}
		t.Logf("Amy and her look-alike are %.2f apart; the nearer to the probe is %s", apart, nearer)

		// The administrator sees the two as look-alikes.
		res := admin.do("GET", "/api/admin/lookalikes", "", nil)
		want(t, "look-alikes", res, http.StatusOK, "")
		var list struct {
			Within float32
			Pairs  []struct {
				A, B     struct{ ID int64 }
				Distance float32
			}
		}
		res.decode(t, &list)
		listed := len(list.Pairs) == 1 && list.Pairs[0].A.ID == int64(amyID) && list.Pairs[0].B.ID == int64(twinID)
		if list.Within != match.DefaultThreshold || listed != (apart < match.DefaultThreshold) {
			t.Errorf("look-alikes %s; Amy and the look-alike are %.3f apart", res.body, apart)
		}
		for _, tc := range []struct {
			who  person
			id   match.UserID
			name string
		}{{amy, amyID, amy.name}, {twin, twinID, twin.name}} {
			c := r.client()
			if got := last(c.faceLogin(photo(t, "amy", 4))); got.Status != "recognized" || got.Name != "" {
				t.Fatalf("face login: %+v, want recognized naming nobody", got)
			}
			res := c.json("POST", "/api/login/pin", map[string]string{"pin": tc.who.pin})
			want(t, tc.name+"'s PIN", res, http.StatusOK, "")
			var done struct{ Name string }
			res.decode(t, &done)
			if done.Name != tc.name {
				t.Errorf("%s's PIN signed in %q", tc.name, done.Name)
			}
		}
		// A PIN that is nobody's counts against both candidates.
		c := r.client()
		last(c.faceLogin(photo(t, "amy", 4)))
		want(t, "nobody's PIN", c.json("POST", "/api/login/pin", map[string]string{"pin": "000002"}), http.StatusUnauthorized, "wrong_pin")
		for _, id := range []match.UserID{amyID, twinID} {
			if wrong, _ := pinChecks(t, r.st, id); wrong != 1 {
				t.Errorf("user %d: %d failed PINs recorded, want 1", id, wrong)
			}
		}
		// The look-alike's right PIN gives Amy back the failure it reserved for her.
		c = r.client()
		last(c.faceLogin(photo(t, "amy", 4)))
		want(t, "look-alike's PIN", c.json("POST", "/api/login/pin", map[string]string{"pin": twin.pin}), http.StatusOK, "")
		if u, _ := r.st.User(ctx, amyID); u.FacePINFailures != 1 {
			t.Errorf("Amy has %d consecutive face PIN failures after her look-alike signed in, want 1", u.FacePINFailures)
		}
		// Two candidates with the same PIN: the nearer signs in.
		want(t, "look-alike takes Amy's PIN", signedIn(t, r, twin).json("PUT", "/api/me/pin", map[string]string{"current": twin.pin, "pin": amy.pin}), http.StatusNoContent, "")
		c = r.client()
		last(c.faceLogin(photo(t, "amy", 4)))
		res = c.json("POST", "/api/login/pin", map[string]string{"pin": amy.pin})
		var done struct{ Name string }
		res.decode(t, &done)
		if res.status != http.StatusOK || done.Name != nearer {
			t.Errorf("shared PIN signed in %q (%d), want the nearer candidate, %s", done.Name, res.status, nearer)
		}
	})
}

// signedIn signs p in with password and PIN and returns the client.
func signedIn(t *testing.T, r *replica, p person) *client {
	t.Helper()
	c := r.client()
	want(t, "password of "+p.email, c.json("POST", "/api/login/password", map[string]string{"email": p.email, "password": p.password}), http.StatusOK, "")
	want(t, "PIN of "+p.email, c.json("POST", "/api/login/pin", map[string]string{"pin": p.pin}), http.StatusOK, "")
	return c
}
