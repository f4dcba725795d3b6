package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/liveness"
	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// The liveness check of the face sign-in (Options.Liveness): the attempt opens with a
// challenge — turn your head left or right, drawn at random — and the frames the login
// analyses anyway decide whether a real head turned (package liveness). It uses the landmarks
// and descriptor of those frames, no recognizer pass of its own.

// challengeMsg opens a login attempt with liveness: which way to turn.
type challengeMsg struct {
	Type      string `json:"type"`      // "challenge"
	Direction string `json:"direction"` // "left" or "right", the person's own
	Message   string `json:"message"`
}

// startChallenge draws the attempt's direction and tells the page.
func (l *wsAttempt) startChallenge(ctx context.Context) error {
	c, err := liveness.NewChallenge(liveness.DefaultRule, time.Now())
	if err != nil {
		return err
	}
	l.live = c
	return wsjson.Write(ctx, l.c, challengeMsg{Type: "challenge", Direction: c.Direction.String(),
		Message: fmt.Sprintf("Turn your head slowly to your %s, then look back into the camera.", c.Direction)})
}

// observation is what the liveness check needs of an analysed frame: landmarks, descriptor
// and the grey face patch for the pixel check (the challenge keeps only a reduced copy).
func observation(f face.Face, at time.Time) liveness.Observation {
	o := liveness.Observation{At: at, Descriptor: f.Descriptor, Patch: f.Patch, PatchRect: f.PatchRect}
	for i, p := range f.Landmarks {
		o.Landmarks[i] = liveness.Point{X: float64(p.X), Y: float64(p.Y)}
	}
	return o
}

// liveFrame adds an analysed frame to the challenge and reports a verdict that ends the
// attempt (refused), if any.
func (l *wsAttempt) liveFrame(f face.Face, at time.Time) (liveness.Verdict, bool) {
	if l.live == nil {
		return liveness.Verdict{}, false
	}
	o := observation(f, at)
	v := l.live.Add(o)
	clear(o.Descriptor[:])
	return v, v.Done() && !v.Live()
}

// waitLive reports whether a face match must wait for the turn: the challenge is not passed
// yet, or the matched face is not the one that turned.
func (l *wsAttempt) waitLive(mean *match.Descriptor) bool {
	return l.live != nil && (!l.live.Verdict().Live() || !l.live.Same(mean))
}

// notLive ends an attempt whose frames did not show a real head turning as asked: one
// failure of the client, like an unknown face.
func (l *wsAttempt) notLive(ctx context.Context, v liveness.Verdict) (bool, error) {
	s := l.s
	s.metrics.results.WithLabelValues("not_live").Inc()
	s.log.Info("login: liveness refused", "client", l.ip, "reason", string(v.Reason), "direction", l.live.Direction.String(),
		"frames", v.Frames, "turn", round3(v.Turn), "planarity", round3(v.Planarity))
	if err := s.failed(ctx, clientKey(l.ip)); err != nil {
		return false, err
	}
	return true, wsjson.Write(ctx, l.c, result{Type: "result", Status: "not_live", Reason: string(v.Reason)})
}

// adminSettings tells the admin page how sign-in is configured, so it can warn when the face
// alone signs in (PINOptional) and what the liveness check does and does not stop.
func (s *Server) adminSettings(w http.ResponseWriter, r *http.Request, c caller) {
	writeJSON(w, http.StatusOK, map[string]bool{"pin_optional": s.opts.PINOptional, "liveness": s.opts.Liveness})
}

// round3 rounds a liveness measure to three decimals for the logs.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
