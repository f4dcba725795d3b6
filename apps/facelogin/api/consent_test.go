package api_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// TestConsentLanguages checks the consent text is binding in English and German: the
// invitation shows it in the language asked for, enrollment records its version and
// language, erasing the face data withdraws it, and setting up face sign-in again on the
// profile needs a new consent and records it.
func TestConsentLanguages(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		r := newReplica(t, dsn, newSecrets(t), api.Options{})
		ctx := context.Background()
		inv, err := api.CreateInvite(ctx, r.st, api.InviteOptions{Name: amy.name, Email: amy.email, Role: store.RoleUser})
		if err != nil {
			t.Fatal(err)
		}
		c := r.client()
		for _, tc := range []struct{ lang, want, wantLang string }{
			{"de", "Sie können diese Einwilligung jederzeit widerrufen", "de"},
			{"en", "You can withdraw this consent at any time", "en"},
			{"fr", "You can withdraw this consent at any time", "en"},
		} {
			res := c.do("GET", "/api/invites/"+inv.Token+"?lang="+tc.lang, "", nil)
			want(t, "invitation in "+tc.lang, res, http.StatusOK, "")
			var got struct{ Consent api.Consent }
			res.decode(t, &got)
			if got.Consent.Version != api.ConsentVersion || got.Consent.Lang != tc.wantLang || !strings.Contains(got.Consent.Text, tc.want) {
				t.Errorf("consent for ?lang=%s: %+v", tc.lang, got.Consent)
			}
			res = c.do("GET", "/api/consent?lang="+tc.lang, "", nil)
			want(t, "consent text in "+tc.lang, res, http.StatusOK, "")
			var alone api.Consent
			res.decode(t, &alone)
			if alone != got.Consent {
				t.Errorf("GET /api/consent?lang=%s = %+v, the invitation shows %+v", tc.lang, alone, got.Consent)
			}
		}
		enroll := map[string]any{"token": inv.Token, "consent_version": api.ConsentVersion, "consent_lang": "fr",
			"accept": true, "pin": amy.pin, "password": amy.password}
		want(t, "consent in a language it does not exist in", c.json("POST", "/api/enroll", enroll), http.StatusBadRequest, "bad_consent_lang")
		enroll["consent_lang"], enroll["consent_version"] = "de", "2020-01"
		want(t, "an old consent version", c.json("POST", "/api/enroll", enroll), http.StatusBadRequest, "consent_required")
		enroll["consent_version"] = api.ConsentVersion
		want(t, "enroll in German", c.json("POST", "/api/enroll", enroll), http.StatusCreated, "")
		u, err := r.st.UserByEmail(ctx, amy.email)
		if err != nil {
			t.Fatal(err)
		}
		if u.ConsentVersion != api.ConsentVersion || u.ConsentLang != "de" || u.ConsentAt.IsZero() {
			t.Fatalf("enrollment recorded consent %q in %q at %v, want %q in de", u.ConsentVersion, u.ConsentLang, u.ConsentAt, api.ConsentVersion)
		}
		photos := [][]byte{photo(t, "amy", 1), photo(t, "amy", 2), photo(t, "amy", 3)}
		ct, body := samples(t, photos...)
		want(t, "first face set-up, covered by the enrollment's consent", c.do("PUT", "/api/me/face", ct, body), http.StatusOK, "")

		// Deleting the face data withdraws the consent.
		want(t, "erase", c.do("DELETE", "/api/me/face", "", nil), http.StatusNoContent, "")
		if u, _ = r.st.User(ctx, u.ID); u.ConsentVersion != "" || u.ConsentLang != "" || !u.ConsentAt.IsZero() {
			t.Fatalf("consent still recorded after erasure: %q %q %v", u.ConsentVersion, u.ConsentLang, u.ConsentAt)
		}
		want(t, "set up again without consent", c.do("PUT", "/api/me/face", ct, body), http.StatusBadRequest, "consent_required")
		ct, body = samplesWithConsent(t, api.ConsentVersion, "xx", photos...)
		want(t, "set up again in an unknown language", c.do("PUT", "/api/me/face", ct, body), http.StatusBadRequest, "bad_consent_lang")
		before := time.Now()
		ct, body = samplesWithConsent(t, api.ConsentVersion, "en", photos...)
		want(t, "set up again with consent", c.do("PUT", "/api/me/face", ct, body), http.StatusOK, "")
		res := c.do("GET", "/api/me", "", nil)
		want(t, "profile", res, http.StatusOK, "")
		var me struct {
			Consent struct{ Version, Lang string }
		}
		res.decode(t, &me)
		if me.Consent.Version != api.ConsentVersion || me.Consent.Lang != "en" {
			t.Errorf("GET /api/me shows consent %+v, want %s in en", me.Consent, api.ConsentVersion)
		}
		u, _ = r.st.User(ctx, u.ID)
		if u.ConsentVersion != api.ConsentVersion || u.ConsentLang != "en" || u.ConsentAt.Before(before.Add(-time.Second)) || u.FaceEnrolledAt.IsZero() {
			t.Errorf("after setting up again: consent %q in %q at %v (asked after %v), face %v", u.ConsentVersion, u.ConsentLang, u.ConsentAt, before, u.FaceEnrolledAt)
		}
	})
}

// samplesWithConsent is samples with the consent fields the face set-up page sends first.
func samplesWithConsent(t *testing.T, version, lang string, images ...[]byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("consent_version", version)
	mw.WriteField("consent_lang", lang)
	for _, img := range images {
		w, err := mw.CreateFormFile("sample", "sample.jpg")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(img)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}
