// Package web is the face-login front end: server-rendered pages (html/template), the
// embedded JavaScript that drives the camera, and German and English texts. Everything under
// /api/ (including the login WebSocket) is handed to the recognition API, in-process or
// through a reverse proxy, so the browser talks to a single origin.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the front end.
type Options struct {
	// API serves the recognition API: everything under /api/ plus its /readyz. It is the
	// in-process api.Server in `facelogin serve` and a reverse proxy in `facelogin web`.
	API http.Handler
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Kiosk starts the camera as soon as /login opens, for a device whose only purpose is
	// face sign-in. Otherwise the camera starts when the person chooses face sign-in.
	Kiosk bool
}

// server holds what the handlers share.
type server struct {
	api     http.Handler
	log     *slog.Logger
	pages   map[string]*template.Template
	catalog catalog
	assets  map[string]asset // by path below static/
	metrics *metrics
	kiosk   bool
}

// New returns the front end's handler: pages, static assets, /api/ forwarded to opts.API,
// and /healthz, /readyz and /metrics of its own.
func New(opts Options) (http.Handler, error) {
	if opts.API == nil {
		return nil, errors.New("web: Options.API is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	s := &server{api: opts.API, log: log, catalog: cat, assets: assets, kiosk: opts.Kiosk}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(reg)

	mux := http.NewServeMux()
	mux.Handle("/api/", opts.API)
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /static/", s.static)
	mux.HandleFunc("GET /lang/{lang}", s.setLang)
	mux.HandleFunc("GET /{$}", s.root)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("GET /login/pin", s.pinPage)
	mux.HandleFunc("GET /login/password", s.passwordPage)
	mux.HandleFunc("GET /signed-out", s.signedOutPage)
	mux.HandleFunc("GET /enroll/{token}", s.enrollPage)
	mux.HandleFunc("GET /reset/{token}", s.resetPage)
	mux.HandleFunc("GET /profile", s.mePage("profile", "profile.title"))
	mux.HandleFunc("GET /profile/face", s.mePage("face", "capture.title"))
	mux.HandleFunc("GET /admin", s.adminPage)
	mux.HandleFunc("/", s.notFound)
	return s.instrument(mux), nil
}

// asset is an embedded static file with its content hash as ETag.
type asset struct {
	body  []byte
	etag  string
	ctype string
}

func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = asset{
			body:  b,
			etag:  `"` + hex.EncodeToString(sum[:8]) + `"`,
			ctype: contentType(p),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: load assets: %w", err)
	}
	return out, nil
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

func (s *server) static(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[strings.TrimPrefix(r.URL.Path, "/static/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(a.body)
}

// securityHeaders are sent with every response that is not forwarded to the API.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Permissions-Policy":           "camera=(self), microphone=(), geolocation=(), payment=()",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// instrument adds security headers, metrics and a log line to every request.
func (s *server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			for k, v := range securityHeaders {
				w.Header().Set(k, v)
			}
		}
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		route := routeOf(r)
		d := time.Since(start)
		s.metrics.observe(route, rw.status, d)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", rw.status), slog.Duration("duration", d))
	})
}

// routeOf names the request's route for metrics and logs without leaking tokens from paths.
func routeOf(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		return "/api/"
	case strings.HasPrefix(r.URL.Path, "/static/"):
		return "/static/"
	case strings.HasPrefix(r.URL.Path, "/enroll/"):
		return "/enroll/{token}"
	case strings.HasPrefix(r.URL.Path, "/reset/"):
		return "/reset/{token}"
	case strings.HasPrefix(r.URL.Path, "/lang/"):
		return "/lang/{lang}"
	}
	switch r.URL.Path {
	case "/", "/login", "/login/pin", "/login/password", "/signed-out", "/profile", "/profile/face", "/admin",
		"/healthz", "/readyz", "/metrics":
		return r.URL.Path
	}
	return "other"
}

// statusWriter remembers the status code. Unwrap lets WebSocket upgrades reach the
// underlying connection (http.ResponseController and coder/websocket both unwrap).
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes streaming flushes through (the reverse proxy uses them).
func (w *statusWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facelogin_web_requests_total",
			Help: "HTTP requests served by the web front end, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "facelogin_web_request_duration_seconds",
			Help:    "Time to serve a request, by route (WebSocket routes include the whole session).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, fmt.Sprint(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
