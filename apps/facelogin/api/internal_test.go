package api

import (
	"bytes"
	"errors"
	"image"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

func TestSecretHash(t *testing.T) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	h := hashSecret(pepper, "4711")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "4711") {
		t.Fatalf("hash %q is not an argon2id PHC string without the secret", h)
	}
	if h == hashSecret(pepper, "4711") {
		t.Error("two hashes of one secret are equal: the salt is missing")
	}
	for _, tc := range []struct {
		name   string
		pepper []byte
		secret string
		ok     bool
	}{
		{"right", pepper, "4711", true},
		{"wrong secret", pepper, "4712", false},
		{"other pepper", []byte("another pepper, another server!!"), "4711", false},
	} {
		ok, err := checkSecret(tc.pepper, h, tc.secret)
		if err != nil || ok != tc.ok {
			t.Errorf("%s: %v, %v; want %v", tc.name, ok, err, tc.ok)
		}
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2id$v=19$m=x$salt$hash", "$argon2id$v=18$m=1,t=1,p=1$AAAA$AAAA"} {
		if _, err := checkSecret(pepper, bad, "4711"); err == nil {
			t.Errorf("checkSecret accepted the stored hash %q", bad)
		}
	}
}

func TestSteady(t *testing.T) {
	box := image.Rect(100, 100, 220, 220) // 120 px wide: a sixth is 20 px
	for _, tc := range []struct {
		name      string
		prev, cur image.Rectangle
		want      bool
	}{
		{"no previous face", image.Rectangle{}, box, false},
		{"same place", box, box, true},
		{"moved 20 px", box, box.Add(image.Pt(20, 0)), true},
		{"moved 30 px", box, box.Add(image.Pt(0, 30)), false},
		{"came closer", box, image.Rect(80, 80, 240, 240), false},
		{"slightly bigger", box, image.Rect(95, 95, 225, 225), true},
	} {
		if got := steady(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: steady = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidPIN(t *testing.T) {
	for pin, want := range map[string]bool{"4711": true, "123456789012": true, "123": false, "1234567890123": false, "12a4": false, "": false, "١٢٣٤": false} {
		if got := validPIN(pin, 4); got != want {
			t.Errorf("validPIN(%q, 4) = %v, want %v", pin, got, want)
		}
	}
	if validPIN("47110", 6) || !validPIN("471108", 6) {
		t.Error("validPIN does not apply its minimum length")
	}
}

func TestNewPIN(t *testing.T) {
	s := &Server{opts: Options{PINMinLength: 6}}
	for pin, ok := range map[string]bool{
		"471108": true, "4711": false, "0471108": true, "1234567890123": false,
		"000000": false, "999999": false, "123456": false, "654321": false, "890123": false, "210987": false,
		"123457": true, "112233": true,
	} {
		err := s.checkNewPIN(pin)
		var ae *apiError
		if ok != (err == nil) || (err != nil && (!errors.As(err, &ae) || ae.code != "bad_pin" || ae.details["min_length"] != 6)) {
			t.Errorf("checkNewPIN(%q) = %v, want ok=%v (or bad_pin naming min_length 6)", pin, err, ok)
		}
	}
}

// FuzzDecodeJSON feeds arbitrary bodies to the strict JSON decoding every endpoint uses: it
// must never panic and must answer either a decoded value or a 4xx *apiError.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"pin":"471108"}`, `{"pin":471108}`, `{"pin":"1"}{}`, `{"x":1}`, `{`, ``, `null`, `[]`, "{\"pin\":\"\xff\"}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/login/pin", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		var v struct {
			PIN string `json:"pin"`
		}
		err := decodeJSON(httptest.NewRecorder(), req, &v)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status < 400 || ae.status > 499 || ae.code == "" || ae.message == "" {
			t.Fatalf("body %q: error %v is not a clear 4xx answer", body, err)
		}
	})
}

func TestAgreeing(t *testing.T) {
	f := func(ids ...match.UserID) frameMatch { return frameMatch{ids: ids} }
	for _, tc := range []struct {
		name   string
		frames []frameMatch
		want   bool
	}{
		{"one person in every frame", []frameMatch{f(1), f(1), f(1)}, true},
		{"look-alikes swapping places", []frameMatch{f(1, 2), f(2, 1), f(1, 2)}, true},
		{"someone in all, not first", []frameMatch{f(3, 1), f(1), f(2, 1)}, true},
		{"nobody in all", []frameMatch{f(1), f(2), f(1)}, false},
		{"a frame of someone else", []frameMatch{f(1, 2), f(3), f(1, 2)}, false},
	} {
		if got := agreeing(tc.frames); got != tc.want {
			t.Errorf("%s: agreeing = %v, want %v", tc.name, got, tc.want)
		}
	}
}
