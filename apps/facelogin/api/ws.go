package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// guidance is the answer to one frame.
type guidance struct {
	Type    string `json:"type"` // "guidance"
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, with code "busy", is the number of seconds to wait before a new attempt.
	RetryAfter int `json:"retry_after,omitempty"`
}

// result ends a login attempt. It names nobody before the PIN is right: Name is set only
// when the face alone signed in (PINOptional).
type result struct {
	Type   string `json:"type"`   // "result"
	Status string `json:"status"` // "recognized", "unknown", "no_face", "paused" or "not_live"
	Next   string `json:"next,omitempty"`
	Name   string `json:"name,omitempty"`
	// Reason, with status "not_live", is the liveness verdict (liveness.Reason).
	Reason string `json:"reason,omitempty"`
}

// allowedOrigin reports whether a WebSocket may be opened from origin: one of the configured
// origins or the request's own host. Requests without Origin do not come from a browser
// page and are left to the cookie check.
func (s *Server) allowedOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if s.origins[strings.ToLower(u.Scheme+"://"+u.Host)] {
		return true
	}
	return strings.EqualFold(u.Host, r.Host) && (u.Scheme == "http" || u.Scheme == "https")
}

// wsLogin identifies the person in front of the camera from a stream of frames.
func (s *Server) wsLogin(w http.ResponseWriter, r *http.Request) {
	if !s.allowedOrigin(r) {
		s.metrics.rejects.WithLabelValues("origin").Inc()
		s.log.Warn("login WebSocket refused: origin not allowed", "client", s.clientIP(r))
		writeError(w, http.StatusForbidden, "origin_not_allowed", "This page may not open the login connection.")
		return
	}
	ip := s.clientIP(r)
	if !s.gate.enter(ip) {
		s.refuseSocket(w, r, ip)
		return
	}
	defer s.gate.leave(ip)
	sess, err := s.session(r)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "Open the login page first: the login connection needs its session cookie (POST /api/session)."))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// On a known device the PIN counts under the device, not the address (device.go).
	var refused error
	if _, _, known := s.knownDevice(r); !known {
		refused = s.allow(r.Context(), ip, "")
	}
	if refused == nil {
		refused = s.allowFace(r.Context(), ip)
	}
	var limit *apiError
	if refused != nil && !errors.As(refused, &limit) {
		s.fail(w, r, refused)
		return
	}
	// Every attempt gets a fresh session id, so the id that is raised to signed-in was issued
	// for this attempt only.
	sess, err = s.startSession(w, r, &sess, 0, store.StageAnonymous, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.sockets.Add(1)
	defer s.sockets.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked above
	if err != nil {
		s.log.Info("login WebSocket upgrade failed", "err", err)
		return
	}
	defer c.CloseNow()
	if limit != nil {
		s.refuseLimited(c, r, ip, limit)
		return
	}
	stopClosing := context.AfterFunc(s.closing, func() {
		c.Close(websocket.StatusGoingAway, "The server is restarting; please try again.")
	})
	defer stopClosing()
	c.SetReadLimit(s.opts.MaxFrameBytes)
	s.metrics.wsOpen.Inc()
	defer s.metrics.wsOpen.Dec()

	timer := time.AfterFunc(s.opts.MaxLoginDuration, func() {
		c.Close(websocket.StatusPolicyViolation, "The login took too long; start again.")
	})
	defer timer.Stop()
	ctx := context.WithoutCancel(r.Context())

	l := &wsAttempt{frameStream: frameStream{s: s, c: c, ip: ip, noun: "login"}, sess: sess, r: r}
	if s.opts.Liveness {
		if err := l.startChallenge(ctx); err != nil {
			s.log.Error("login liveness challenge failed", "err", err)
			c.Close(websocket.StatusInternalError, "Something went wrong on our side; please try again.")
			return
		}
	}
	code, reason := l.run(ctx)
	l.forget()
	if l.live != nil {
		l.live.Forget()
	}
	c.Close(code, reason)
}

// refuseSocket answers a login WebSocket over the socket caps as the page expects an
// overloaded server to: it opens the socket, says busy with the time to wait, and closes
// it with 1013 (try again later). A browser sees nothing of an HTTP status on a refused
// upgrade.
func (s *Server) refuseSocket(w http.ResponseWriter, r *http.Request, ip string) {
	s.metrics.rejects.WithLabelValues("socket_limit").Inc()
	s.log.Info("login WebSocket refused: too many open", "client", ip)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked
	if err != nil {
		return
	}
	defer c.CloseNow()
	ae := shed()
	ae.message = fmt.Sprintf("Too many people are signing in right now; please try again in %d seconds.", ae.retryAfter)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if wsjson.Write(ctx, c, guidance{Type: "guidance", Code: "busy", Message: ae.message, RetryAfter: ae.retryAfter}) == nil {
		c.Close(websocket.StatusTryAgainLater, ae.message)
	}
}

// wsError refuses a login WebSocket, with the seconds to wait before the next attempt.
type wsError struct {
	Type       string `json:"type"` // "error"
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retry_after,omitempty"`
	// Scope is the limit's scope ("face" or "client"), as in the HTTP answers.
	Scope string `json:"scope,omitempty"`
}

// StatusLimited closes a login WebSocket refused by a failure limit (after a wsError).
const StatusLimited websocket.StatusCode = 4429

// refuseLimited answers a login WebSocket of a client past a failure limit: a browser cannot
// read the status of a refused handshake and would call it a lost connection, so the
// refusal and when to try again come as a message before the close.
func (s *Server) refuseLimited(c *websocket.Conn, r *http.Request, ip string, limit *apiError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	scope, _ := limit.details["scope"].(string)
	s.log.Info("login WebSocket refused: failure limit", "client", ip, "scope", scope, "retry_after", limit.retryAfter)
	if wsjson.Write(ctx, c, wsError{Type: "error", Code: limit.code, Message: limit.message, RetryAfter: limit.retryAfter, Scope: scope}) == nil {
		c.Close(StatusLimited, limit.message)
	}
}

// allowFace refuses face sign-in from a client with too many unknown-face results.
func (s *Server) allowFace(ctx context.Context, ip string) error {
	return s.under(ctx, store.Limit{Key: faceKey(ip), Max: s.opts.ClientUnknownFaces})
}
