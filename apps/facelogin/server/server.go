// Package server runs the face-login HTTP servers: the listen loop with graceful shutdown
// that every server shares, and the web front end that forwards /api/ to the recognition
// API. It does not link the recognition engine, so the web front end builds without cgo
// (cmd/facelogin-web).
package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/config"
	"github.com/edgeline/edgeline/apps/facelogin/web"
)

// NewLogger returns the JSON-lines logger of the face-login programs at level ("debug",
// "info", "warn" or "error").
func NewLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Web runs the front end on cfg.Addr until ctx ends, forwarding /api/ (and the
// WebSocket) to the api service at cfg.APIURL.
func Web(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	target, err := url.Parse(cfg.APIURL)
	if err != nil {
		return fmt.Errorf("--api-url: %w", err)
	}
	h, err := web.New(web.Options{API: APIProxy(target, cfg.TrustProxy, log), Logger: log.With("service", "web"), Kiosk: cfg.Kiosk})
	if err != nil {
		return err
	}
	return Listen(ctx, cfg.Addr, h, log)
}

// APIProxy forwards requests to the api at target. It sends the api exactly one
// X-Forwarded-For address, the client's: with trustProxy (the front end sits behind an
// ingress) the last entry of the incoming X-Forwarded-For, which the ingress added, else
// the address the request came from. Whatever else a client wrote into X-Forwarded-For is
// dropped, so an api that trusts the header (--trust-proxy) and is reachable only through
// this proxy counts failures under the real client's address. An api that cannot be
// reached is answered 503 with Retry-After.
func APIProxy(target *url.URL, trustProxy bool, log *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the api checks WebSocket origins against the public host
			r.SetXForwarded()
			if trustProxy {
				if ip := lastForwarded(r.In.Header); ip != "" {
					r.Out.Header.Set("X-Forwarded-For", ip)
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("api unreachable", "err", err)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.URL.Path == "/readyz" {
				io.WriteString(w, `{"status":"api unreachable"}`+"\n")
				return
			}
			io.WriteString(w, `{"error":{"code":"api_unavailable","message":"The sign-in service is not reachable right now; please try again in 5 seconds.","retry_after":5}}`)
		},
	}
}

// lastForwarded returns the address in the last X-Forwarded-For entry of h, "" if there is
// none or it is not an IP address.
func lastForwarded(h http.Header) string {
	xff := h.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return ""
	}
	parts := strings.Split(xff[len(xff)-1], ",")
	ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1]))
	if ip == nil {
		return ""
	}
	return ip.String()
}

// Listen serves h on addr until ctx ends, then shuts down gracefully.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	log.Info("listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("listen on %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
