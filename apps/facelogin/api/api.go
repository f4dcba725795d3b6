// Package api is the face-login recognition API: JSON endpoints under /api/ for sessions,
// enrollment, login (face over a WebSocket, PIN, password), the profile and administration,
// plus /healthz, /readyz and /metrics. Sessions, accounts and face descriptors live in a
// store.Store shared by every replica; each replica keeps an in-memory match.Index over all
// descriptors and follows the store's face changes, so an enrollment or erasure on one
// replica is seen by the others within a poll interval.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// Defaults for the zero values of Options.
const (
	DefaultIdleTimeout      = 30 * time.Minute
	DefaultAbsoluteTimeout  = 12 * time.Hour
	DefaultPollInterval     = time.Second
	DefaultInviteTTL        = 7 * 24 * time.Hour
	DefaultAccountFailures  = 50 // per account and factor within FailureWindow (ASVS 2.2.1: ≤ 100 an hour)
	DefaultClientFailures   = 20 // per client within FailureWindow
	DefaultFailureWindow    = time.Hour
	DefaultMaxFrameBytes    = 2 << 20
	DefaultMaxFramesPerSec  = 8
	DefaultMaxFrames        = 120
	DefaultMaxLoginDuration = 60 * time.Second
	DefaultUnknownFrames    = 3
	DefaultFaceTime         = 10 * time.Second
	DefaultDecisionFrames   = 3
	DefaultCandidates       = 3
	DefaultPINMinLength     = 6
	DefaultFacePINFailures  = 5
	DefaultSecretWait       = 2 * time.Second
	DefaultMaxSockets       = 256
	DefaultMaxClientSockets = 16
	DefaultMaxBytesInFlight = 64 << 20
	DefaultSessionRate      = 30
	DefaultSignInTimeout    = 5 * time.Minute
)

// Options configure a Server. Store and Engine are required; zero values of the others mean
// the defaults above.
type Options struct {
	// Store holds accounts, sessions and face descriptors.
	Store *store.Store
	// Engine turns frames into face descriptors.
	Engine *face.Engine
	// Logger receives one JSON-friendly line per request and per notable event; nil discards.
	// Descriptors, PINs, passwords, tokens and cookies are never logged.
	Logger *slog.Logger

	// Threshold and Margin configure matching (0: match.DefaultThreshold, DefaultMargin).
	// A face narrows the people to the candidates within Threshold; the margin matters only
	// with PINOptional, where the face alone must name one person.
	Threshold, Margin float32
	// Candidates is the most people a face match may name, nearest first; the PIN decides
	// among them (0: DefaultCandidates).
	Candidates int
	// DecisionFrames is how many steady frames whose candidates agree a face match needs;
	// their descriptors are averaged (0: DefaultDecisionFrames).
	DecisionFrames int
	// PINOptional turns the PIN second factor off: a face that is within the threshold of one
	// person and the margin nearer to them than to anyone else signs in alone. Look-alikes
	// defeat that rule (docs/face-recognition.md); the default (false) asks for the PIN after
	// the face or the password.
	PINOptional bool
	// Liveness asks for a head turn at every face sign-in (a direction drawn at random, sent
	// on the login WebSocket first) and at enrolment (the samples must show a turn); package
	// liveness decides from the frames analysed anyway. Its measured limits are in
	// docs/face-recognition.md.
	Liveness bool
	// PINMinLength is the fewest digits a new PIN may have (0: DefaultPINMinLength; 4 to 12).
	PINMinLength int
	// FacePINFailures is how many consecutive wrong PINs after face matches pause an
	// account's face sign-in until its owner signs in with the password
	// (0: DefaultFacePINFailures; at most 100).
	FacePINFailures int
	// SecretChecks bounds the password and PIN hashes computed at once (0: two per CPU);
	// a check that finds none free within SecretWait answers busy (0: DefaultSecretWait).
	SecretChecks int
	SecretWait   time.Duration
	// TogetherChecks bounds the password-and-PIN sign-ins past their address's failure limit
	// that this replica checks at once (0: a quarter of SecretChecks, at least one); one
	// more answers busy at once, so they never take more than that share of the hashing.
	TogetherChecks int
	// Pepper is mixed into every PIN and password hash; it is kept outside the database.
	Pepper []byte
	// BootstrapToken, if set, works as an admin invitation while no admin exists.
	BootstrapToken string
	// PublicURL is the address people open (https://login.example.com); invitation links
	// start with it. Empty: links are relative paths.
	PublicURL string
	// Origins are the extra origins (scheme://host[:port]) allowed to open the login
	// WebSocket; the request's own host is always allowed.
	Origins []string
	// InsecureCookies drops the Secure attribute and the __Host- prefix, for plain-http
	// development on loopback only.
	InsecureCookies bool
	// TrustProxy takes the client address from X-Forwarded-For (the last hop's entry), for
	// replicas that are only reachable through a reverse proxy or the web service.
	TrustProxy bool

	// IdleTimeout ends a session not used for this long; AbsoluteTimeout ends any session.
	IdleTimeout, AbsoluteTimeout time.Duration
	// SignInTimeout ends a session that is not signed in (anonymous, or waiting for the
	// PIN) this long after it began; expired sessions' rows are deleted at least every
	// minute (0: DefaultSignInTimeout).
	SignInTimeout time.Duration
	// SessionRate is how many new sessions POST /api/session creates per client address and
	// minute on this replica (0: DefaultSessionRate).
	SessionRate int
	// PollInterval is how often the store's face changes are read.
	PollInterval time.Duration
	// InviteTTL is how long an invitation stays valid; ResetTTL how long a reset link does
	// (0: DefaultResetTTL).
	InviteTTL, ResetTTL time.Duration
	// AccountFailures and ClientFailures are the failed attempts allowed per account (and
	// factor) and per client within FailureWindow before further attempts are refused.
	AccountFailures, ClientFailures int
	// ClientUnknownFaces is how many face logins per client may end with a face that matches
	// nobody within FailureWindow before face sign-in (only) from that client pauses; they
	// do not count with wrong secrets (0: three times ClientFailures).
	ClientUnknownFaces int
	// FailureWindow is the sliding window over which failures count.
	FailureWindow time.Duration
	// MaxFrameBytes caps one WebSocket frame and one enrollment sample.
	MaxFrameBytes int64
	// MaxFramesPerSec caps the frame rate of a login WebSocket.
	MaxFramesPerSec int
	// MaxFrames and MaxLoginDuration bound one login WebSocket.
	MaxFrames        int
	MaxLoginDuration time.Duration
	// UnknownFrames is how many steady frames of an unknown face end a login as unknown.
	UnknownFrames int
	// MaxSockets and MaxClientSockets cap the open login WebSockets of this replica in
	// total and per client address; a socket over a cap is told busy and closed with 1013
	// (0: DefaultMaxSockets, DefaultMaxClientSockets).
	MaxSockets, MaxClientSockets int
	// MaxBytesInFlight caps the bytes of login frames and uploaded images this replica
	// holds at once, read or waiting for a recognizer; a frame or upload that finds no room
	// is answered busy (0: DefaultMaxBytesInFlight).
	MaxBytesInFlight int64
	// FaceTime is how long a face login keeps looking, with guidance, before it ends as not
	// recognised ("unknown", or "no_face" when no face was seen): a person still moving into
	// the light is not refused after a few frames (0: DefaultFaceTime; negative: no wait,
	// UnknownFrames alone decide).
	FaceTime time.Duration
}

// Server is the recognition API. It is an http.Handler; Close stops its background work.
type Server struct {
	opts    Options
	st      *store.Store
	eng     *face.Engine
	log     *slog.Logger
	index   *match.Index
	mux     *http.ServeMux
	metrics *metrics
	origins map[string]bool
	cookie  string

	mu      sync.Mutex // guards lastSeq
	lastSeq int64

	// argon holds a token per password or PIN hash being computed; together one per
	// password-and-PIN sign-in past its address's limit being checked.
	argon, together chan struct{}
	// sockets counts the open login WebSockets; bytes bounds the frames and uploads held.
	gate  *socketGate
	bytes *byteBudget
	// newSessions counts the sessions POST /api/session creates per address.
	newSessions *addressRate

	stop chan struct{}
	done chan struct{}
	once sync.Once

	// closing ends the open login WebSockets on Close; sockets tracks them.
	closing context.Context
	shut    context.CancelFunc
	sockets sync.WaitGroup
}

// New checks opts, builds the index from every enrolled descriptor and starts following
// the store's face changes.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("api: Options.Store is required")
	}
	if opts.Engine == nil {
		return nil, errors.New("api: Options.Engine is required")
	}
	if len(opts.Pepper) < 16 {
		return nil, errors.New("api: Options.Pepper must hold at least 16 bytes")
	}
	setDefaults(&opts)
	if opts.AccountFailures > 100 {
		return nil, fmt.Errorf("api: %d failures per account and window exceed the 100 an hour ASVS 2.2.1 allows", opts.AccountFailures)
	}
	if opts.FacePINFailures > 100 {
		return nil, fmt.Errorf("api: %d consecutive wrong PINs before face sign-in pauses exceed the 100 ASVS 2.2.1 allows", opts.FacePINFailures)
	}
	if opts.PINMinLength < minPINLen || opts.PINMinLength > maxPINLen {
		return nil, fmt.Errorf("api: a PIN minimum length of %d digits is outside %d to %d", opts.PINMinLength, minPINLen, maxPINLen)
	}
	if opts.MaxBytesInFlight <= opts.MaxFrameBytes {
		return nil, fmt.Errorf("api: a budget of %d bytes in flight does not hold one frame of %d bytes; raise it", opts.MaxBytesInFlight, opts.MaxFrameBytes)
	}
	if opts.Candidates > match.MaxCandidates {
		return nil, fmt.Errorf("api: %d candidates per face match exceed the %d the index returns", opts.Candidates, match.MaxCandidates)
	}
	s := &Server{
		opts:     opts,
		st:       opts.Store,
		eng:      opts.Engine,
		log:      opts.Logger,
		index:    match.NewIndex(opts.Threshold, opts.Margin),
		origins:  make(map[string]bool),
		cookie:   "__Host-facelogin",
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		argon:    make(chan struct{}, opts.SecretChecks),
		together: make(chan struct{}, opts.TogetherChecks),
		gate:     newSocketGate(opts.MaxSockets, opts.MaxClientSockets),
		bytes:    &byteBudget{max: opts.MaxBytesInFlight},

		newSessions: newAddressRate(opts.SessionRate, time.Minute),
	}
	if opts.InsecureCookies {
		s.cookie = "facelogin"
	}
	s.closing, s.shut = context.WithCancel(context.Background())
	for _, o := range opts.Origins {
		u, err := url.Parse(strings.TrimSpace(o))
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("api: origin %q is not scheme://host[:port]", o)
		}
		s.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	s.metrics = newMetrics(s.index)
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "facelogin_bytes_in_flight",
		Help: "Bytes of login frames and uploaded images held in memory now (bounded by MaxBytesInFlight).",
	}, func() float64 { return float64(s.bytes.inUse()) }))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	if opts.PublicURL != "" {
		// `facelogin admin invite` builds its links on the address this server is opened at.
		if err := s.st.SetSetting(ctx, store.SettingPublicURL, opts.PublicURL); err != nil {
			return nil, err
		}
	}
	s.routes()
	go s.follow()
	return s, nil
}

func setDefaults(o *Options) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for p, def := range map[*float32]float32{&o.Threshold: match.DefaultThreshold, &o.Margin: match.DefaultMargin} {
		orDefault(p, def)
	}
	for p, def := range map[*time.Duration]time.Duration{
		&o.IdleTimeout:      DefaultIdleTimeout,
		&o.AbsoluteTimeout:  DefaultAbsoluteTimeout,
		&o.PollInterval:     DefaultPollInterval,
		&o.InviteTTL:        DefaultInviteTTL,
		&o.ResetTTL:         DefaultResetTTL,
		&o.FailureWindow:    DefaultFailureWindow,
		&o.MaxLoginDuration: DefaultMaxLoginDuration,
		&o.SecretWait:       DefaultSecretWait,
		&o.SignInTimeout:    DefaultSignInTimeout,
	} {
		orDefault(p, def)
	}
	if o.FaceTime == 0 {
		o.FaceTime = DefaultFaceTime
	}
	for p, def := range map[*int]int{
		&o.AccountFailures:  DefaultAccountFailures,
		&o.ClientFailures:   DefaultClientFailures,
		&o.MaxFramesPerSec:  DefaultMaxFramesPerSec,
		&o.MaxFrames:        DefaultMaxFrames,
		&o.UnknownFrames:    DefaultUnknownFrames,
		&o.DecisionFrames:   DefaultDecisionFrames,
		&o.Candidates:       DefaultCandidates,
		&o.PINMinLength:     DefaultPINMinLength,
		&o.FacePINFailures:  DefaultFacePINFailures,
		&o.SecretChecks:     2 * runtime.NumCPU(),
		&o.MaxSockets:       DefaultMaxSockets,
		&o.MaxClientSockets: DefaultMaxClientSockets,
		&o.SessionRate:      DefaultSessionRate,
	} {
		orDefault(p, def)
	}
	orDefault(&o.TogetherChecks, max(1, o.SecretChecks/4))
	if o.ClientUnknownFaces <= 0 {
		o.ClientUnknownFaces = 3 * o.ClientFailures
	}
	orDefault(&o.MaxFrameBytes, DefaultMaxFrameBytes)
	orDefault(&o.MaxBytesInFlight, DefaultMaxBytesInFlight)
}

// orDefault sets *p to def when it is zero or negative.
func orDefault[T int | int64 | float32 | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops following the store and closes the open login WebSockets (going away), then
// waits for their handlers. It does not close the store or the engine.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.shut()
	})
	<-s.done
	s.sockets.Wait()
	return nil
}

// load fills the index from the store. The change sequence is read first: a change that
// lands while the samples are read is applied again by the next poll, which is harmless.
func (s *Server) load(ctx context.Context) error {
	seq, err := s.st.LastFaceChange(ctx)
	if err != nil {
		return fmt.Errorf("read face changes: %w", err)
	}
	samples, err := s.st.AllSamples(ctx)
	if err != nil {
		return fmt.Errorf("load face samples: %w", err)
	}
	byUser := make(map[match.UserID][]match.Descriptor)
	for _, sm := range samples {
		byUser[sm.UserID] = append(byUser[sm.UserID], sm.Descriptor)
	}
	for id, ds := range byUser {
		s.index.Set(id, ds)
	}
	clear(samples)
	s.mu.Lock()
	s.lastSeq = seq
	s.mu.Unlock()
	s.log.Info("face index loaded", "people", len(byUser), "descriptors", s.index.Len())
	return nil
}

// follow polls the store's face changes until Close, and removes expired sessions every
// minute, or every SignInTimeout if that is shorter.
func (s *Server) follow() {
	defer close(s.done)
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	lastSweep := time.Now()
	sweepEvery := min(time.Minute, s.opts.SignInTimeout)
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Sync(ctx); err != nil {
			s.log.Warn("follow face changes", "err", err)
		}
		if time.Since(lastSweep) >= sweepEvery {
			lastSweep = time.Now()
			now := time.Now()
			if n, err := s.st.DeleteExpiredSessions(ctx, now, now.Add(-s.opts.IdleTimeout)); err != nil {
				s.log.Warn("delete expired sessions", "err", err)
			} else if n > 0 {
				s.log.Info("expired sessions deleted", "count", n)
			}
		}
		cancel()
	}
}

// Sync applies the face changes recorded since the last call: each changed person's
// samples are read again (none: the person leaves the index). It runs every PollInterval
// by itself; callers need it only to catch up at once.
func (s *Server) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes, err := s.st.FaceChanges(ctx, s.lastSeq)
	if err != nil {
		return fmt.Errorf("read face changes: %w", err)
	}
	if len(changes) == 0 {
		return nil
	}
	seen := make(map[match.UserID]bool)
	for _, c := range changes {
		if seen[c.UserID] {
			continue
		}
		seen[c.UserID] = true
		if err := s.refresh(ctx, c.UserID); err != nil {
			return err
		}
	}
	s.lastSeq = changes[len(changes)-1].Seq
	s.metrics.syncs.Add(float64(len(seen)))
	return nil
}

// refresh reads one person's samples into the index.
func (s *Server) refresh(ctx context.Context, id match.UserID) error {
	samples, err := s.st.Samples(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read face samples of user %d: %w", id, err)
	}
	ds := make([]match.Descriptor, len(samples))
	for i := range samples {
		ds[i] = samples[i].Descriptor
	}
	clear(samples)
	s.index.Set(id, ds)
	clear(ds)
	return nil
}
