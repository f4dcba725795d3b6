package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestAPIProxyForwardsOneAddress sends requests through the front end's api proxy to a real
// HTTP server and checks what X-Forwarded-For the api gets: exactly one address, the
// client's as the front end sees it, whatever the client wrote into the header.
func TestAPIProxyForwardsOneAddress(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	}))
	defer api.Close()
	target, _ := url.Parse(api.URL)
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name  string
		trust bool
		xff   []string
		want  string
	}{
		{"behind an ingress: the entry it added", true, []string{"203.0.113.9, 198.51.100.4"}, "198.51.100.4"},
		{"behind an ingress, several header lines", true, []string{"203.0.113.9", "198.51.100.4"}, "198.51.100.4"},
		{"behind an ingress, IPv6", true, []string{"2001:db8::7"}, "2001:db8::7"},
		{"behind an ingress, no header: the connection", true, nil, "127.0.0.1"},
		{"behind an ingress, garbage: the connection", true, []string{"198.51.100.4, not-an-address"}, "127.0.0.1"},
		{"reached directly: a forged header is dropped", false, []string{"203.0.113.9"}, "127.0.0.1"},
		{"reached directly, no header", false, nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := httptest.NewServer(APIProxy(target, tc.trust, log))
			defer front.Close()
			req, _ := http.NewRequest("GET", front.URL+"/api/me", nil)
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, _ := io.ReadAll(res.Body)
			if string(got) != tc.want {
				t.Errorf("the api got X-Forwarded-For %q, want %q", got, tc.want)
			}
		})
	}
}
