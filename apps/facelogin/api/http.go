package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// maxJSONBytes bounds a JSON request body.
const maxJSONBytes = 64 << 10

// routes registers every endpoint.
func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", s.metrics.handler())

	// In the order people meet them: the invitation, the account, the face samples;
	m.HandleFunc("GET /api/invites/{token}", s.getInvite)
	m.HandleFunc("GET /api/consent", s.getConsent)
	// a reset link an admin issued (a new password and/or PIN);
	m.HandleFunc("GET /api/reset/{token}", s.getReset)
	m.HandleFunc("POST /api/reset", s.useReset)
	m.HandleFunc("POST /api/enroll", s.enroll)
	m.HandleFunc("POST /api/face/check", s.full(s.faceCheck))
	m.HandleFunc("PUT /api/me/face", s.full(s.putFace))
	m.HandleFunc("GET /api/ws/enroll", s.full(s.wsEnrol))
	// signing in: a session, the face (or the password), the PIN;
	m.HandleFunc("POST /api/session", s.postSession)
	m.HandleFunc("GET /api/ws/login", s.wsLogin)
	m.HandleFunc("POST /api/login/password", s.loginPassword)
	m.HandleFunc("POST /api/login/pin", s.loginPIN)
	// the profile, and signing out;
	m.HandleFunc("GET /api/me", s.full(s.getMe))
	m.HandleFunc("PUT /api/me/pin", s.full(s.putPIN))
	m.HandleFunc("PUT /api/me/password", s.full(s.putPassword))
	m.HandleFunc("DELETE /api/me/face", s.full(s.deleteMyFace))
	m.HandleFunc("POST /api/logout", s.logout)
	// administration.
	m.HandleFunc("GET /api/admin/users", s.admin(s.adminUsers))
	m.HandleFunc("DELETE /api/admin/users/{id}", s.admin(s.adminDeleteUser))
	m.HandleFunc("DELETE /api/admin/users/{id}/face", s.admin(s.adminDeleteFace))
	m.HandleFunc("POST /api/admin/users/{id}/reset", s.admin(s.adminIssueReset))
	m.HandleFunc("POST /api/admin/invites", s.admin(s.adminCreateInvite))
	m.HandleFunc("GET /api/admin/invites", s.admin(s.adminInvites))
	m.HandleFunc("DELETE /api/admin/invites/{email}", s.admin(s.adminRevokeInvite))
	m.HandleFunc("POST /api/admin/invites/{email}/resend", s.admin(s.adminResendInvite))
	m.HandleFunc("GET /api/admin/lookalikes", s.admin(s.lookAlikes))
	m.HandleFunc("GET /api/admin/settings", s.admin(s.adminSettings))

	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(m, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("Use %s for this endpoint.", strings.Join(allow, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "There is no such API endpoint.")
	})
	s.mux = http.NewServeMux()
	s.mux.Handle("/", s.logged(m))
}

// allowed returns the methods m serves r's path with, other than its catch-all for /api/.
func allowed(m *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := m.Handler(probe); pattern != "" && pattern != "/api/" {
			out = append(out, method)
		}
	}
	return out
}

// apiError is an error answer: an HTTP status, a stable code and one sentence for people,
// how many seconds to wait before trying again (Retry-After and "retry_after"; 0 for none),
// and further machine-readable fields such as "tries_left".
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter int
	details    map[string]any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// with returns a copy of e with one more field in its answer.
func (e *apiError) with(key string, v any) *apiError {
	c := *e
	c.details = maps.Clone(e.details)
	if c.details == nil {
		c.details = map[string]any{}
	}
	c.details[key] = v
	return &c
}

// after returns a copy of e that tells the client to wait d before trying again.
func (e *apiError) after(d time.Duration) *apiError {
	c := *e
	c.retryAfter = retrySeconds(d)
	return &c
}

// storeRetry is the wait a client is told while the store is unavailable: about what a
// restarting database or a failover takes.
const storeRetry = 5 * time.Second

var (
	errStoreDown = errorf(http.StatusServiceUnavailable, "unavailable",
		"The sign-in service cannot reach its database right now; please try again in %d seconds.", retrySeconds(storeRetry)).after(storeRetry)
	errUnauthorized = errorf(http.StatusUnauthorized, "unauthorized", "Sign in first.")
	errForbidden    = errorf(http.StatusForbidden, "forbidden", "Only administrators may do this.")
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with the error format {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// fail answers err: an *apiError as itself, anything else as a logged 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		body := map[string]any{"code": ae.code, "message": ae.message}
		maps.Copy(body, ae.details)
		retry := ae.retryAfter
		if retry == 0 && ae.status == http.StatusTooManyRequests {
			retry = int(s.opts.FailureWindow.Seconds() / 4)
		}
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			body["retry_after"] = retry
		}
		writeJSON(w, ae.status, map[string]any{"error": body})
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		s.metrics.rejects.WithLabelValues("store_unavailable").Inc()
		s.log.Warn("request failed: store unavailable", "route", r.Pattern, "err", err)
		s.fail(w, r, errStoreDown)
		return
	}
	s.log.Error("request failed", "route", r.Pattern, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "Something went wrong on our side; please try again.")
}

// decodeJSON reads a JSON request body into v: it must be declared as application/json,
// hold no unknown fields and nothing after the value, and fit maxJSONBytes.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := needType(r, "application/json"); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "The request body is larger than %d KB.", maxJSONBytes>>10)
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "bad_request", "The request body is empty; send a JSON object.")
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return errorf(http.StatusBadRequest, "bad_request", "The request body is not valid JSON.")
		case errors.As(err, &te) && te.Field == "":
			return errorf(http.StatusBadRequest, "bad_request", "The request body must be a JSON object, not %s.", article(te.Value))
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, "bad_request", "The field %q must be %s, not %s.", te.Field, article(jsonKind(te.Type)), article(te.Value))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errorf(http.StatusBadRequest, "bad_request", "The request has an unknown field %s.", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return errorf(http.StatusBadRequest, "bad_request", "The request body could not be read.")
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad_request", "The request body holds more than one JSON value.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "bad_request", "The request body holds data after the JSON object.")
	}
	return nil
}

// decodeOptionalJSON is decodeJSON for bodies that may be empty; the Content-Type is still
// required.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := needType(r, "application/json"); err != nil {
		return err
	}
	if r.ContentLength == 0 {
		return nil
	}
	return decodeJSON(w, r, v)
}

// notFoundAs maps store.ErrNotFound to e (to nil when e is nil).
func notFoundAs(err error, e *apiError) error {
	if errors.Is(err, store.ErrNotFound) {
		if e == nil {
			return nil
		}
		return e
	}
	return err
}

// jsonKind names the JSON kind a Go type is read from, for people: never a Go type name.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "object"
}

// article puts "a" or "an" before a JSON kind ("an array"), as json's UnmarshalTypeError
// names the value found ("number 5" becomes "a number").
func article(kind string) string {
	kind, _, _ = strings.Cut(kind, " ")
	switch kind {
	case "":
		return "a value of another kind"
	case "bool":
		kind = "boolean"
	}
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// needType checks the request's Content-Type is one of types (the CSRF defence: a cross-site
// form cannot send these).
func needType(r *http.Request, types ...string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil {
		for _, t := range types {
			if mt == t {
				return nil
			}
		}
	}
	return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the request body as %s.", strings.Join(types, " or "))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether this replica can serve: models loaded (New did that) and the
// store reachable.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Warn("readiness: store unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "models": true, "descriptors": s.index.Len()})
}

// statusWriter remembers the status code for the request log. It passes Hijack through
// for WebSocket upgrades.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged logs one line per request: method, route pattern (never the raw path, which may
// hold an invitation token), status, duration and client.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics" {
			return
		}
		s.log.Info("request", "route", route, "status", sw.status,
			"duration_ms", time.Since(start).Milliseconds(), "client", s.clientIP(r))
	})
}

// clientIP is the address failures are counted under.
func (s *Server) clientIP(r *http.Request) string {
	if s.opts.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientSummary describes the client for the login history: browser family and address.
func (s *Server) clientSummary(r *http.Request) string {
	ua := r.UserAgent()
	browser := "Unknown browser"
	for _, b := range []struct{ key, name string }{
		{"Edg/", "Edge"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "Go client"},
	} {
		if strings.Contains(ua, b.key) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ key, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iOS"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.key) {
			browser += " on " + o.name
			break
		}
	}
	return browser + ", " + s.clientIP(r)
}
