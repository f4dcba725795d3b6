// Package config reads the facelogin command line: a subcommand, its flags and their
// FACELOGIN_* environment twins, into one Config that is validated once, here. Everything
// after Parse trusts the Config.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Command names a subcommand.
type Command string

// The subcommands.
const (
	Serve     Command = "serve"            // web and api in one process, SQLite by default
	API       Command = "api"              // the recognition API alone
	Web       Command = "web"              // the web front end alone, proxying /api/ to --api-url
	Invite    Command = "admin invite"     // print a one-time invitation link
	RotateKey Command = "admin rotate-key" // re-seal every descriptor with the primary key
)

// Config is the validated configuration of one facelogin run.
type Config struct {
	Command Command

	Addr    string // listen address
	DataDir string // serve: where the SQLite file, key and pepper live
	DB      string // store DSN: sqlite:/path or postgres://...
	Models  string // dlib models directory
	KeyFile string // descriptor keyring file
	// CreateSecrets: the key file and pepper file may be generated when missing (serve and
	// admin commands working on the data dir).
	CreateSecrets bool
	PepperFile    string // file holding the PIN/password pepper
	Pepper        string // the pepper itself, from FACELOGIN_PIN_PEPPER (environment only)

	Origins        []string
	BootstrapToken string
	PublicURL      string
	// PublicURLFrom says where PublicURL came from: "--public-url", "FACELOGIN_PUBLIC_URL",
	// or "" (admin invite then asks the store for the URL the server recorded).
	PublicURLFrom string
	APIURL        string
	Workers       int
	CNN           bool
	RequirePIN    bool
	// Liveness asks for a head turn in a random direction at every face sign-in and
	// enrolment (package liveness); on by default, --require-pin=false needs it.
	Liveness        bool
	InsecureCookies bool
	TrustProxy      bool
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// AccountFailures and ClientFailures are the failed attempts allowed per account (and
	// factor) and per client address within an hour.
	AccountFailures, ClientFailures int
	// ClientUnknownFaces is the face logins per client address and hour that may end with an
	// unknown face before face sign-in (only) pauses there (0: three times ClientFailures).
	ClientUnknownFaces int
	// PINMinLength is the fewest digits of a new PIN; FacePINFailures the consecutive wrong
	// PINs after face matches that pause an account's face sign-in; Candidates the most
	// people one face match may name.
	PINMinLength, FacePINFailures, Candidates int
	// StoreTimeout bounds every store call; a database slower than that, or down, is
	// answered 503 with Retry-After.
	StoreTimeout time.Duration
	// MaxSockets and MaxClientSockets cap the open login WebSockets in total and per
	// client address; BytesInFlightMB caps the frames and uploads held in memory at once;
	// RecognizerWait is how long a frame may wait for a free recognizer. Past any of them
	// the client is told busy.
	MaxSockets, MaxClientSockets, BytesInFlightMB int
	RecognizerWait                                time.Duration
	// SessionRate is how many new sessions one client address may start per minute;
	// SignInTimeout ends sessions that never signed in.
	SessionRate   int
	SignInTimeout time.Duration
	// FaceTime is how long a face login keeps looking before "not recognised".
	FaceTime time.Duration
	// Kiosk starts the camera as soon as the login page opens (serve, web).
	Kiosk    bool
	LogLevel string

	// admin invite
	Name, Email, Role string
	InviteTTL         time.Duration
	// admin rotate-key
	NewKey, DropOldKeys bool
}

// Usage is the overview printed for a missing or unknown subcommand.
const Usage = `usage: facelogin <command> [flags]

commands:
  serve              web and api in one process (SQLite in --data-dir), for make run
  api                the recognition API alone (--db postgres://... for several replicas)
  web                the web front end alone, forwarding /api/ to --api-url
  admin invite       print a one-time invitation link (--role admin for the first admin)
  admin rotate-key   re-seal every face descriptor with the key file's primary key

Every flag has an environment twin: --data-dir is FACELOGIN_DATA_DIR, and so on.
Run facelogin <command> -h for the flags of a command.
`

// ErrHelp is returned when -h was asked for; the usage has been written.
var ErrHelp = flag.ErrHelp

// Parse reads args (without the program name) and the environment through getenv into a
// validated Config. Flags win over environment variables, which win over defaults. Usage
// and flag errors are written to out.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	if len(args) == 0 {
		fmt.Fprint(out, Usage)
		return Config{}, errors.New("no command given: run facelogin serve, api, web or admin")
	}
	var c Config
	switch args[0] {
	case "serve", "api", "web":
		c.Command, args = Command(args[0]), args[1:]
	case "admin":
		if len(args) < 2 || (args[1] != "invite" && args[1] != "rotate-key") {
			fmt.Fprint(out, Usage)
			return Config{}, errors.New("admin needs a subcommand: invite or rotate-key")
		}
		c.Command, args = Command("admin "+args[1]), args[2:]
	case "-h", "-help", "--help", "help":
		fmt.Fprint(out, Usage)
		return Config{}, ErrHelp
	default:
		fmt.Fprint(out, Usage)
		return Config{}, fmt.Errorf("unknown command %q: run facelogin serve, api, web or admin", args[0])
	}

	fs := flag.NewFlagSet("facelogin "+string(c.Command), flag.ContinueOnError)
	fs.SetOutput(out)
	var origins, detector string
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, def, usage) }
	switch c.Command {
	case Serve:
		str(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
		str(&c.DataDir, "data-dir", "./data", "folder for the SQLite file, descriptor.key and pin.pepper (created if missing)")
		str(&c.DB, "db", "", "store DSN (default sqlite:<data-dir>/facelogin.db)")
		str(&c.KeyFile, "key-file", "", "descriptor key file (default <data-dir>/descriptor.key, generated once)")
		str(&c.PepperFile, "pin-pepper-file", "", "PIN and password pepper file (default <data-dir>/pin.pepper, generated once)")
		fs.BoolVar(&c.Kiosk, "kiosk", false, "start the camera as soon as the login page opens (a device used only for face sign-in); else it starts when the person chooses face sign-in")
	case API:
		str(&c.Addr, "addr", ":8081", "listen address")
		str(&c.DB, "db", "", "store DSN: postgres://... or sqlite:/path/file.db (required)")
		str(&c.KeyFile, "key-file", "", "descriptor key file (required; see docs/security.md)")
		str(&c.PepperFile, "pin-pepper-file", "", "PIN and password pepper file (required, or FACELOGIN_PIN_PEPPER)")
	case Web:
		str(&c.Addr, "addr", ":8080", "listen address")
		str(&c.APIURL, "api-url", "http://facelogin-api:8081", "address of the recognition API")
		fs.BoolVar(&c.TrustProxy, "trust-proxy", false, "behind an ingress: take the client address from the last X-Forwarded-For entry the ingress added (else the connection's) and pass only that address on to the api")
		fs.BoolVar(&c.Kiosk, "kiosk", false, "start the camera as soon as the login page opens (a device used only for face sign-in); else it starts when the person chooses face sign-in")
	case Invite, RotateKey:
		str(&c.DataDir, "data-dir", "./data", "data folder of `facelogin serve` (used when --db is not given)")
		str(&c.DB, "db", "", "store DSN (default sqlite:<data-dir>/facelogin.db)")
		str(&c.KeyFile, "key-file", "", "descriptor key file (default <data-dir>/descriptor.key)")
	}
	if c.Command == Serve || c.Command == API {
		str(&c.Models, "models", "./models", "folder holding the dlib models")
		str(&origins, "origins", "", "comma-separated extra origins allowed to open the login WebSocket (scheme://host[:port])")
		str(&c.BootstrapToken, "bootstrap-token", "", "secret that works as an admin invitation while no admin exists")
		str(&c.PublicURL, "public-url", "", "address people open, e.g. https://login.example.com (invitation links)")
		fs.IntVar(&c.Workers, "workers", 0, "face recognizers, each holding its own copy of the models, ≈ 35 MB (0: one per CPU)")
		str(&detector, "detector", "hog", "face detector: hog or cnn (≈ 20× slower)")
		fs.BoolVar(&c.RequirePIN, "require-pin", true, "ask for the PIN after the face or password")
		fs.BoolVar(&c.Liveness, "liveness", true, "ask for a head turn at face sign-in and enrolment, refusing still pictures (measured limits: docs/face-recognition.md); --liveness=false only for a camera a person cannot turn their head in front of")
		fs.BoolVar(&c.InsecureCookies, "insecure-cookies", false, "plain-http session cookies, only for a loopback --addr (serve sets it itself there)")
		fs.BoolVar(&c.TrustProxy, "trust-proxy", false, "take the client address from the last X-Forwarded-For entry; only when nothing but the web front end can reach this api (docs/security.md)")
		fs.DurationVar(&c.IdleTimeout, "idle-timeout", 30*time.Minute, "end sessions idle this long")
		fs.DurationVar(&c.AbsoluteTimeout, "absolute-timeout", 12*time.Hour, "end any session after this long")
		fs.IntVar(&c.AccountFailures, "account-failures", 50, "failed attempts allowed per account and factor within an hour (at most 100)")
		fs.IntVar(&c.ClientFailures, "client-failures", 20, "failed attempts allowed per client address within an hour (raise it for shared kiosks)")
		fs.IntVar(&c.ClientUnknownFaces, "client-unknown-faces", 0, "face logins per client address and hour that may end with an unknown face before face sign-in (only) pauses there (0: three times --client-failures)")
		fs.IntVar(&c.PINMinLength, "pin-min-length", 6, "fewest digits of a new PIN (4 to 12; docs/security.md gives the odds of a guess)")
		fs.IntVar(&c.FacePINFailures, "face-pin-failures", 5, "consecutive wrong PINs after face matches that pause an account's face sign-in until a password sign-in (1 to 100)")
		fs.IntVar(&c.Candidates, "candidates", 3, "most people one face match may name; the PIN decides among them (1 to 16)")
		fs.DurationVar(&c.StoreTimeout, "store-timeout", 3*time.Second, "longest wait for the database per call; slower or down answers 503 with Retry-After")
		fs.IntVar(&c.MaxSockets, "max-login-sockets", 256, "open login WebSockets per replica; more are told busy (close 1013)")
		fs.IntVar(&c.MaxClientSockets, "max-login-sockets-per-client", 16, "open login WebSockets per client address (raise it for many cameras behind one NAT address)")
		fs.IntVar(&c.BytesInFlightMB, "bytes-in-flight-mb", 64, "MiB of frames and uploads held in memory at once per replica; more are told busy")
		fs.DurationVar(&c.RecognizerWait, "recognizer-wait", 500*time.Millisecond, "longest wait of a frame for a free recognizer before the client is told busy")
		fs.IntVar(&c.SessionRate, "session-rate", 30, "new sessions (POST /api/session) per client address and minute on each replica")
		fs.DurationVar(&c.SignInTimeout, "sign-in-timeout", 5*time.Minute, "end sessions that are not signed in (anonymous, or waiting for the PIN) this long after they began")
		fs.DurationVar(&c.FaceTime, "face-time", 10*time.Second, "how long a face login keeps looking, with guidance, before it ends as not recognised (1s to 60s)")
	}
	if c.Command == Invite {
		str(&c.Name, "name", "", "the person's name (required)")
		str(&c.Email, "email", "", "the person's e-mail address (required)")
		str(&c.Role, "role", "user", "user or admin")
		str(&c.PublicURL, "public-url", "", "address people open (default: the one the server recorded when it last started)")
		fs.DurationVar(&c.InviteTTL, "ttl", 7*24*time.Hour, "how long the link stays valid")
	}
	if c.Command == RotateKey {
		fs.BoolVar(&c.NewKey, "new-key", false, "only add a new primary key on top of the key file (step 2 of docs/security.md), then restart the replicas")
		fs.BoolVar(&c.DropOldKeys, "drop-old-keys", false, "after re-sealing, remove every key but the primary from the key file (step 5)")
	}
	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")

	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: facelogin %s takes flags only", fs.Arg(0), c.Command)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["public-url"] {
		c.PublicURLFrom = "--public-url"
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := EnvName(f.Name)
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s=%q: %v", name, v, err))
			}
			set[f.Name] = true
		}
	})
	if envErr != nil {
		return Config{}, envErr
	}
	if c.PublicURL != "" && c.PublicURLFrom == "" {
		c.PublicURLFrom = EnvName("public-url")
	}
	c.Pepper = getenv("FACELOGIN_PIN_PEPPER")
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.Origins = append(c.Origins, o)
		}
	}
	switch detector {
	case "hog", "":
	case "cnn":
		c.CNN = true
	default:
		return Config{}, fmt.Errorf("--detector %q: use hog or cnn (FACELOGIN_DETECTOR)", detector)
	}
	if err := c.complete(set); err != nil {
		return Config{}, err
	}
	return c, nil
}

// EnvName returns the environment twin of a flag: FACELOGIN_ and the name in upper case
// with dashes as underscores.
func EnvName(flagName string) string {
	return "FACELOGIN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// complete fills the defaults that depend on other values and validates the result.
func (c *Config) complete(set map[string]bool) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.DataDir != "" && (c.Command == Serve || c.Command == Invite || c.Command == RotateKey) {
		if c.DB == "" {
			c.DB = "sqlite:" + filepath.Join(c.DataDir, "facelogin.db")
			c.CreateSecrets = true
		}
		if c.KeyFile == "" {
			c.KeyFile = filepath.Join(c.DataDir, "descriptor.key")
		}
		if c.Command == Serve && c.PepperFile == "" && c.Pepper == "" {
			c.PepperFile = filepath.Join(c.DataDir, "pin.pepper")
		}
	}
	switch c.Command {
	case API:
		if c.DB == "" {
			bad("--db is required for `api` (e.g. postgres://facelogin@db:5432/facelogin, or FACELOGIN_DB)")
		}
		if c.KeyFile == "" {
			bad("--key-file is required for `api`: the descriptor key file every replica shares (FACELOGIN_KEY_FILE; see docs/security.md)")
		}
		if c.PepperFile == "" && c.Pepper == "" {
			bad("--pin-pepper-file is required for `api`: a file of at least 16 random bytes every replica shares (FACELOGIN_PIN_PEPPER_FILE, or FACELOGIN_PIN_PEPPER)")
		}
	case Web:
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("--api-url %q is not an http(s) URL (e.g. http://facelogin-api:8081)", c.APIURL)
		}
	case Invite:
		if strings.TrimSpace(c.Name) == "" {
			bad("--name is required for `admin invite` (the person's name)")
		}
		if strings.TrimSpace(c.Email) == "" {
			bad("--email is required for `admin invite` (e.g. amy@example.com)")
		}
		if c.Role != "user" && c.Role != "admin" {
			bad("--role %q: use user or admin", c.Role)
		}
		if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			bad("--public-url %q is not an http(s) URL such as https://login.example.com", c.PublicURL)
		}
	case RotateKey:
		if c.NewKey && c.DropOldKeys {
			bad("--new-key and --drop-old-keys are separate steps with a restart between them: give one")
		}
	}
	if c.Command == Serve || c.Command == API {
		if c.Models == "" {
			bad("--models is required: the folder holding the dlib models (run make models)")
		}
		if c.Workers < 0 {
			bad("--workers %d: use 0 (one per CPU) or a positive number", c.Workers)
		}
		if c.IdleTimeout <= 0 || c.AbsoluteTimeout <= 0 || c.IdleTimeout > c.AbsoluteTimeout {
			bad("--idle-timeout (%v) and --absolute-timeout (%v) must be positive, idle not above absolute", c.IdleTimeout, c.AbsoluteTimeout)
		}
		if c.AccountFailures < 1 || c.AccountFailures > 100 {
			bad("--account-failures %d: use 1 to 100 (ASVS 2.2.1 allows at most 100 failed attempts per account and hour)", c.AccountFailures)
		}
		if c.ClientFailures < 1 {
			bad("--client-failures %d: use a positive number", c.ClientFailures)
		}
		if c.PINMinLength < 4 || c.PINMinLength > 12 {
			bad("--pin-min-length %d: use 4 to 12 digits", c.PINMinLength)
		}
		if c.FacePINFailures < 1 || c.FacePINFailures > 100 {
			bad("--face-pin-failures %d: use 1 to 100 (ASVS 2.2.1 allows at most 100 failed attempts per account)", c.FacePINFailures)
		}
		if !c.RequirePIN && !c.Liveness {
			bad("--require-pin=false needs --liveness: without the PIN and without the head-turn check, a photo of an enrolled person signs in as them; drop --liveness=false or keep the PIN")
		}
		if c.FaceTime < time.Second || c.FaceTime > 60*time.Second {
			bad("--face-time %v: use 1s to 60s", c.FaceTime)
		}
		if c.Candidates < 1 || c.Candidates > 16 {
			bad("--candidates %d: use 1 to 16", c.Candidates)
		}
		if c.StoreTimeout < 100*time.Millisecond || c.StoreTimeout > time.Minute {
			bad("--store-timeout %v: use 100ms to 1m (the web pages wait 5s for the api)", c.StoreTimeout)
		}
		if c.MaxSockets < 1 || c.MaxClientSockets < 1 || c.MaxClientSockets > c.MaxSockets {
			bad("--max-login-sockets %d and --max-login-sockets-per-client %d: use positive numbers, the per-client one not above the other", c.MaxSockets, c.MaxClientSockets)
		}
		if c.BytesInFlightMB < 4 {
			bad("--bytes-in-flight-mb %d: use at least 4 (one frame may hold 2 MiB)", c.BytesInFlightMB)
		}
		if c.RecognizerWait <= 0 || c.RecognizerWait > 30*time.Second {
			bad("--recognizer-wait %v: use a positive duration up to 30s", c.RecognizerWait)
		}
		if c.SessionRate < 1 {
			bad("--session-rate %d: use a positive number of new sessions per address and minute", c.SessionRate)
		}
		if c.SignInTimeout < 30*time.Second || c.SignInTimeout > c.IdleTimeout {
			bad("--sign-in-timeout %v: use 30s up to the idle timeout (%v)", c.SignInTimeout, c.IdleTimeout)
		}
		if c.BootstrapToken != "" && len(c.BootstrapToken) < 20 {
			bad("--bootstrap-token is too short to be a secret: use at least 20 random characters (e.g. openssl rand -base64 24)")
		}
		for _, o := range c.Origins {
			if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				bad("--origins entry %q is not an origin such as https://login.example.com", o)
			}
		}
		if c.PublicURL != "" {
			u, err := url.Parse(c.PublicURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("--public-url %q is not an http(s) URL such as https://login.example.com", c.PublicURL)
			} else {
				c.Origins = append(c.Origins, u.Scheme+"://"+u.Host)
			}
		}
		loop := isLoopback(c.Addr)
		if c.Command == Serve && !set["insecure-cookies"] && loop && !strings.HasPrefix(c.PublicURL, "https://") {
			c.InsecureCookies = true
		}
		if c.InsecureCookies && !loop {
			bad("--insecure-cookies is only for a loopback --addr such as 127.0.0.1:8080; serve over HTTPS (behind an ingress) instead")
		}
		if c.Command == Serve && c.PublicURL == "" {
			c.PublicURL = "http://" + c.Addr
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); c.Addr != "" && err != nil {
		bad("--addr %q is not host:port (e.g. 127.0.0.1:8080 or :8081)", c.Addr)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level %q: use debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// isLoopback reports whether addr listens on a loopback address only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
