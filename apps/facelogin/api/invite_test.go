package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// enrolledWithoutFace enrolls p with role over HTTP, without face data, and returns their client.
func enrolledWithoutFace(t *testing.T, r *replica, p person, role store.Role) *client {
	t.Helper()
	inv, err := api.CreateInvite(context.Background(), r.st, api.InviteOptions{Name: p.name, Email: p.email, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	c := r.client()
	want(t, "enroll "+p.name, c.json("POST", "/api/enroll", map[string]any{"token": inv.Token, "consent_version": api.ConsentVersion,
		"accept": true, "pin": p.pin, "password": p.password}), http.StatusCreated, "")
	return c
}

// TestInvitations checks one open invitation per e-mail: a new one replaces the old, an
// admin can send it again (new link, new expiry) or revoke it, the answer says for whom and
// until when, and an invitation to someone who has an account by now is closed.
func TestInvitations(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		r := newReplica(t, dsn, newSecrets(t), api.Options{PublicURL: "https://login.example.test", InviteTTL: 48 * time.Hour})
		admin := enrolledWithoutFace(t, r, amy, store.RoleAdmin)
		type invitation struct {
			Token, URL, Name, Email, Role string
			ExpiresAt                     time.Time `json:"expires_at"`
		}
		create := func(what string, path string, body any) invitation {
			t.Helper()
			res := admin.json("POST", path, body)
			want(t, what, res, http.StatusCreated, "")
			var inv invitation
			res.decode(t, &inv)
			if inv.Name != "Cleo" || inv.Email != "cleo@example.com" || inv.Role != "user" || inv.URL != "https://login.example.test/enroll/"+inv.Token ||
				time.Until(inv.ExpiresAt) < 47*time.Hour || time.Until(inv.ExpiresAt) > 49*time.Hour {
				t.Errorf("%s: %+v, want Cleo's invitation for 48 hours", what, inv)
			}
			return inv
		}
		open := func() []string {
			t.Helper()
			res := admin.do("GET", "/api/admin/invites", "", nil)
			want(t, "open invitations", res, http.StatusOK, "")
			var list struct{ Invites []struct{ Email string } }
			res.decode(t, &list)
			var emails []string
			for _, i := range list.Invites {
				emails = append(emails, i.Email)
			}
			return emails
		}
		anon := r.client()
		first := create("invite Cleo", "/api/admin/invites", map[string]string{"name": "Cleo", "email": "Cleo@Example.com"})
		second := create("invite Cleo again", "/api/admin/invites", map[string]string{"name": "Cleo", "email": "cleo@example.com"})
		want(t, "the replaced link", anon.do("GET", "/api/invites/"+first.Token, "", nil), http.StatusNotFound, "invite_not_found")
		want(t, "the new link", anon.do("GET", "/api/invites/"+second.Token, "", nil), http.StatusOK, "")
		if got := open(); len(got) != 1 || got[0] != "cleo@example.com" {
			t.Errorf("open invitations %v, want only Cleo's", got)
		}

		esc := url.PathEscape("cleo@example.com")
		third := create("send again", "/api/admin/invites/"+esc+"/resend", nil)
		want(t, "the link sent before", anon.do("GET", "/api/invites/"+second.Token, "", nil), http.StatusNotFound, "invite_not_found")
		want(t, "the link sent again", anon.do("GET", "/api/invites/"+third.Token, "", nil), http.StatusOK, "")

		want(t, "revoke", admin.do("DELETE", "/api/admin/invites/"+esc, "", nil), http.StatusNoContent, "")
		want(t, "the revoked link", anon.do("GET", "/api/invites/"+third.Token, "", nil), http.StatusNotFound, "invite_not_found")
		want(t, "revoke again", admin.do("DELETE", "/api/admin/invites/"+esc, "", nil), http.StatusNotFound, "invite_not_found")
		want(t, "send a revoked one again", admin.json("POST", "/api/admin/invites/"+esc+"/resend", nil), http.StatusNotFound, "invite_not_found")
		if got := open(); len(got) != 0 {
			t.Errorf("open invitations after revoking %v, want none", got)
		}
		want(t, "a user revokes", anon.do("DELETE", "/api/admin/invites/"+esc, "", nil), http.StatusUnauthorized, "unauthorized")

		// Raj gets an account another way (another admin's second invitation, the
		// bootstrap token): his first link is closed, not left "open" until its last step.
		res := admin.json("POST", "/api/admin/invites", map[string]string{"name": "Raj", "email": "raj@example.com"})
		want(t, "invite Raj", res, http.StatusCreated, "")
		var raj invitation
		res.decode(t, &raj)
		if _, err := r.st.CreateUser(context.Background(), store.User{Name: "Raj", Email: "raj@example.com", Role: store.RoleUser}); err != nil {
			t.Fatal(err)
		}
		want(t, "Raj's link after he enrolled", anon.do("GET", "/api/invites/"+raj.Token, "", nil), http.StatusNotFound, "invite_not_found")
		if got := open(); len(got) != 0 {
			t.Errorf("open invitations %v: Raj's is closed", got)
		}
		want(t, "invite an enrolled e-mail", admin.json("POST", "/api/admin/invites", map[string]string{"name": "Raj", "email": "raj@example.com"}),
			http.StatusConflict, "email_taken")
	})
}
