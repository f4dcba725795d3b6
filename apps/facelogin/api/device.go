package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// Known devices (OWASP's "device cookies"): a browser in which a person has signed in keeps a
// cookie naming them, signed with the pepper. Their next attempts from that browser count
// under the device's own key instead of the address's and the account's, so strangers'
// failures behind the same address (an office, a kiosk) or at the same account never stop
// a right password or PIN given where the person signed in before; the device's own
// failures still stop guessing on it.

// deviceTTL is how long a device stays known after its last sign-in.
const deviceTTL = 180 * 24 * time.Hour

// deviceCookie is the name of the known-device cookie.
func (s *Server) deviceCookie() string { return s.cookie + "-device" }

// deviceKey counts failures given from one known device.
func deviceKey(nonce []byte) string { return fmt.Sprintf("device:%x", nonce) }

// rememberDevice sets the known-device cookie for user after a sign-in.
func (s *Server) rememberDevice(w http.ResponseWriter, user match.UserID) {
	b := make([]byte, 8+16, 8+16+sha256.Size)
	binary.BigEndian.PutUint64(b, uint64(user))
	rand.Read(b[8:])
	b = append(b, s.deviceMAC(b)...)
	http.SetCookie(w, &http.Cookie{
		Name:     s.deviceCookie(),
		Value:    base64.RawURLEncoding.EncodeToString(b),
		Path:     "/api/",
		MaxAge:   int(deviceTTL.Seconds()),
		Secure:   !s.opts.InsecureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) deviceMAC(b []byte) []byte {
	m := hmac.New(sha256.New, s.opts.Pepper)
	m.Write([]byte("known device\x00"))
	m.Write(b)
	return m.Sum(nil)
}

// knownDevice returns the user the request's known-device cookie names and the device's
// failure key; ok is false without a valid cookie.
func (s *Server) knownDevice(r *http.Request) (user match.UserID, key string, ok bool) {
	c, err := r.Cookie(s.deviceCookie())
	if err != nil || len(c.Value) > 128 {
		return 0, "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) != 8+16+sha256.Size || !hmac.Equal(b[24:], s.deviceMAC(b[:24])) {
		return 0, "", false
	}
	return match.UserID(binary.BigEndian.Uint64(b)), deviceKey(b[8:24]), true
}

// deviceLimits returns the limits of an attempt for one of users: on a device known for one
// of them, only the device's own counter (at ClientFailures); else the client's and, if
// given, account's.
func (s *Server) deviceLimits(r *http.Request, ip, account string, users ...match.UserID) []store.Limit {
	if id, key, ok := s.knownDevice(r); ok && slices.Contains(users, id) {
		return []store.Limit{{Key: key, Max: s.opts.ClientFailures, Since: s.since()}}
	}
	return s.limits(ip, account)
}
