package config

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(c *Config) // the fields that matter; nil when an error is expected
		err  string          // part of the error
	}{
		{
			name: "serve defaults",
			args: []string{"serve"},
			want: func(c *Config) {
				c.Command, c.Addr, c.DataDir, c.Models = Serve, "127.0.0.1:8080", "./data", "./models"
				c.DB, c.KeyFile, c.PepperFile = "sqlite:data/facelogin.db", "data/descriptor.key", "data/pin.pepper"
				c.CreateSecrets, c.InsecureCookies, c.RequirePIN, c.Liveness = true, true, true, true
				c.PublicURL = "http://127.0.0.1:8080"
			},
		},
		{
			name: "serve on a public https address keeps secure cookies",
			args: []string{"serve", "--public-url", "https://login.example.com"},
			want: func(c *Config) {
				c.Command, c.Addr, c.DataDir, c.Models = Serve, "127.0.0.1:8080", "./data", "./models"
				c.DB, c.KeyFile, c.PepperFile = "sqlite:data/facelogin.db", "data/descriptor.key", "data/pin.pepper"
				c.CreateSecrets, c.RequirePIN, c.Liveness = true, true, true
				c.PublicURL, c.Origins = "https://login.example.com", []string{"https://login.example.com"}
				c.PublicURLFrom = "--public-url"
			},
		},
		{
			name: "api from the environment, flags win",
			args: []string{"api", "--addr", "127.0.0.1:9000"},
			env: map[string]string{"FACELOGIN_DB": "postgres://db/facelogin", "FACELOGIN_KEY_FILE": "/secret/key",
				"FACELOGIN_PIN_PEPPER_FILE": "/secret/pepper", "FACELOGIN_ADDR": ":1", "FACELOGIN_REQUIRE_PIN": "false",
				"FACELOGIN_DETECTOR": "cnn", "FACELOGIN_WORKERS": "3", "FACELOGIN_ORIGINS": "https://a.example, https://b.example",
				"FACELOGIN_INSECURE_COOKIES": "true"},
			want: func(c *Config) {
				c.Command, c.Addr, c.Models, c.DB, c.KeyFile, c.PepperFile = API, "127.0.0.1:9000", "./models", "postgres://db/facelogin", "/secret/key", "/secret/pepper"
				c.CNN, c.Workers, c.InsecureCookies, c.RequirePIN, c.Liveness = true, 3, true, false, true
				c.Origins = []string{"https://a.example", "https://b.example"}
			},
		},
		{name: "api needs a database", args: []string{"api"}, env: map[string]string{"FACELOGIN_KEY_FILE": "k", "FACELOGIN_PIN_PEPPER_FILE": "p"},
			err: "--db is required for `api` (e.g. postgres://"},
		{name: "api needs the key", args: []string{"api", "--db", "postgres://x"}, err: "--key-file is required"},
		{name: "insecure cookies only on loopback", args: []string{"api", "--db", "postgres://x", "--key-file", "k", "--pin-pepper-file", "p", "--insecure-cookies", "--addr", ":8081"},
			err: "--insecure-cookies is only for a loopback --addr"},
		{name: "weak bootstrap token", args: []string{"serve"}, env: map[string]string{"FACELOGIN_BOOTSTRAP_TOKEN": "admin"}, err: "--bootstrap-token is too short"},
		{name: "account limit over ASVS", args: []string{"serve", "--account-failures", "101"}, err: "--account-failures 101: use 1 to 100"},
		{name: "no PIN without liveness", args: []string{"serve", "--require-pin=false", "--liveness=false"}, err: "--require-pin=false needs --liveness"},
		{
			name: "liveness off for a kiosk",
			args: []string{"serve", "--liveness=false"},
			want: func(c *Config) {
				c.Command, c.Addr, c.DataDir, c.Models = Serve, "127.0.0.1:8080", "./data", "./models"
				c.DB, c.KeyFile, c.PepperFile = "sqlite:data/facelogin.db", "data/descriptor.key", "data/pin.pepper"
				c.CreateSecrets, c.InsecureCookies, c.RequirePIN = true, true, true
				c.PublicURL = "http://127.0.0.1:8080"
			},
		},
		{name: "PIN too short", args: []string{"serve", "--pin-min-length", "3"}, err: "--pin-min-length 3: use 4 to 12"},
		{name: "face PIN failures over ASVS", args: []string{"api", "--db", "postgres://x", "--key-file", "k", "--pin-pepper-file", "p", "--face-pin-failures", "0"},
			err: "--face-pin-failures 0: use 1 to 100"},
		{name: "too many candidates", args: []string{"serve"}, env: map[string]string{"FACELOGIN_CANDIDATES": "17"}, err: "--candidates 17: use 1 to 16"},
		{name: "face time too short", args: []string{"serve", "--face-time", "100ms"}, err: "--face-time 100ms: use 1s to 60s"},
		{name: "bad detector", args: []string{"serve", "--detector", "magic"}, err: "use hog or cnn"},
		{name: "bad origin", args: []string{"serve", "--origins", "login.example.com"}, err: "--origins entry"},
		{name: "bad environment value", args: []string{"serve"}, env: map[string]string{"FACELOGIN_WORKERS": "many"}, err: "FACELOGIN_WORKERS"},
		{name: "store timeout too long", args: []string{"serve", "--store-timeout", "5m"}, err: "--store-timeout 5m0s: use 100ms to 1m"},
		{name: "per-client sockets above the total", args: []string{"serve", "--max-login-sockets", "8"}, err: "the per-client one not above the other"},
		{name: "byte budget under a frame", args: []string{"serve"}, env: map[string]string{"FACELOGIN_BYTES_IN_FLIGHT_MB": "1"}, err: "--bytes-in-flight-mb 1: use at least 4"},
		{name: "no recognizer wait", args: []string{"serve", "--recognizer-wait", "0s"}, err: "--recognizer-wait 0s"},
		{name: "sign-in timeout above idle", args: []string{"serve", "--sign-in-timeout", "1h"}, err: "--sign-in-timeout 1h0m0s: use 30s up to the idle timeout"},
		{name: "no sessions", args: []string{"serve", "--session-rate", "0"}, err: "--session-rate 0"},
		{name: "idle above absolute", args: []string{"serve", "--idle-timeout", "2h", "--absolute-timeout", "1h"}, err: "idle not above absolute"},
		{
			name: "invite",
			args: []string{"admin", "invite", "--email", "amy@example.com", "--name", "Amy", "--role", "admin"},
			env:  map[string]string{"FACELOGIN_DATA_DIR": "/var/lib/facelogin"},
			want: func(c *Config) {
				c.Command, c.DataDir, c.Name, c.Email, c.Role = Invite, "/var/lib/facelogin", "Amy", "amy@example.com", "admin"
				c.DB, c.KeyFile, c.CreateSecrets = "sqlite:/var/lib/facelogin/facelogin.db", "/var/lib/facelogin/descriptor.key", true
				c.InviteTTL = 7 * 24 * time.Hour
			},
		},
		{
			name: "invite with the public URL from the environment",
			args: []string{"admin", "invite", "--email", "amy@example.com", "--name", "Amy"},
			env:  map[string]string{"FACELOGIN_PUBLIC_URL": "https://login.example.com"},
			want: func(c *Config) {
				c.Command, c.DataDir, c.Name, c.Email, c.Role = Invite, "./data", "Amy", "amy@example.com", "user"
				c.DB, c.KeyFile, c.CreateSecrets = "sqlite:data/facelogin.db", "data/descriptor.key", true
				c.PublicURL, c.PublicURLFrom, c.InviteTTL = "https://login.example.com", "FACELOGIN_PUBLIC_URL", 7*24*time.Hour
			},
		},
		{name: "invite with a bad public URL", args: []string{"admin", "invite", "--name", "A", "--email", "a@b.c", "--public-url", "login:8080"}, err: `--public-url "login:8080"`},
		{name: "invite needs an e-mail", args: []string{"admin", "invite", "--name", "Amy"}, err: "--email is required for `admin invite`"},
		{name: "invite role", args: []string{"admin", "invite", "--name", "A", "--email", "a@b.c", "--role", "root"}, err: `--role "root"`},
		{name: "unknown command", args: []string{"deploy"}, err: `unknown command "deploy"`},
		{name: "admin without task", args: []string{"admin"}, err: "invite or rotate-key"},
		{name: "stray argument", args: []string{"web", "extra"}, err: `unexpected argument "extra"`},
		{name: "web api url", args: []string{"web", "--api-url", "facelogin-api:8081"}, err: "--api-url"},
		{
			name: "web behind an ingress",
			args: []string{"web"},
			env:  map[string]string{"FACELOGIN_TRUST_PROXY": "true"},
			want: func(c *Config) {
				c.Command, c.Addr, c.APIURL, c.TrustProxy = Web, ":8080", "http://facelogin-api:8081", true
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Config{LogLevel: "info"}
			if got.Command == Serve || got.Command == API {
				want.IdleTimeout, want.AbsoluteTimeout, want.RequirePIN = 30*time.Minute, 12*time.Hour, true
				want.AccountFailures, want.ClientFailures = 50, 20
				want.PINMinLength, want.FacePINFailures, want.Candidates = 6, 5, 3
				want.StoreTimeout, want.MaxSockets, want.MaxClientSockets = 3*time.Second, 256, 16
				want.BytesInFlightMB, want.RecognizerWait = 64, 500*time.Millisecond
				want.SessionRate, want.SignInTimeout = 30, 5*time.Minute
				want.FaceTime = 10 * time.Second
			}
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for flag, env := range map[string]string{"data-dir": "FACELOGIN_DATA_DIR", "pin-pepper-file": "FACELOGIN_PIN_PEPPER_FILE", "api-url": "FACELOGIN_API_URL", "db": "FACELOGIN_DB"} {
		if got := EnvName(flag); got != env {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, env)
		}
	}
}
