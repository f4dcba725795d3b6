package allowlist

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "203.0.113.7", want: "203.0.113.7/32"},
		{in: "203.0.113.7/24", want: "203.0.113.0/24"},
		{in: `["2001:db8::5", "198.51.100.0/24"]`, want: "198.51.100.0/24 2001:db8::5/128"},
		{in: "198.51.100.9, 198.51.100.9 10.0.0.0/8", want: "10.0.0.0/8 198.51.100.9/32"},
		{in: "0.0.0.0/0,::/0", want: "0.0.0.0/0 ::/0"},
		{in: "", err: "empty"},
		{in: "[]", err: "empty"},
		{in: "example.org", err: `"example.org" is neither an address nor a network`},
		{in: "10.0.0.0/33", err: `"10.0.0.0/33" is not a network`},
		{in: `["10.0.0.1",`, err: "not a JSON list"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Parse(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(Strings(got), " ") != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestPublic(t *testing.T) {
	for a, want := range map[string]bool{
		"203.0.113.7": true, "2001:db8::1": true, "10.0.0.5": false, "192.168.1.2": false,
		"100.64.0.9": false, "127.0.0.1": false, "169.254.1.1": false, "fd00::1": false,
	} {
		if got := Public(netip.MustParseAddr(a)); got != want {
			t.Errorf("Public(%s) = %v, want %v", a, got, want)
		}
	}
}

// TestDiscover asks a check-IP service on loopback, which stands in for the public one.
func TestDiscover(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/v4": {200, "198.51.100.23\n"}, "/v6": {200, "2001:db8::23"}, "/html": {200, "<html>"}, "/down": {503, "busy"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	ctx := context.Background()
	for path, want := range map[string]string{"/v4": "198.51.100.23", "/v6": "2001:db8::23"} {
		a, err := Discover(ctx, srv.Client(), srv.URL+path)
		if err != nil || a.String() != want {
			t.Errorf("Discover %s = %v, %v; want %s", path, a, err, want)
		}
	}
	for path, want := range map[string]string{"/html": "not an address", "/down": "503"} {
		if _, err := Discover(ctx, srv.Client(), srv.URL+path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Discover %s error = %v, want %q", path, err, want)
		}
	}
	if got := Strings(Everyone); !slices.Equal(got, []string{"0.0.0.0/0", "::/0"}) {
		t.Errorf("Everyone = %v", got)
	}
}
