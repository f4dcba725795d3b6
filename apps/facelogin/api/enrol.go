package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/liveness"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// Face enrolment over a WebSocket (GET /api/ws/enroll), the path of the enrolment page and of
// /profile/face: the page streams camera frames and the server keeps as samples the frames
// that differ from those kept (alike), so a still picture gives one sample, not five. With
// Options.Liveness the server first draws the direction to turn and the frames must pass the
// same head-turn challenge as a login (liveness.Challenge, its window counted from the
// challenge): the first sample is the challenge's first frame, and room is left among the
// samples for the frame that shows the turn. The page never chooses the direction.

// Two samples are alike — the later one is not kept — when the nose moved less than
// minPoseStep eye distances against the other (liveness.Measure's Turn) and their
// descriptors are nearer than minSampleDistance. A still picture re-encoded or moved stays
// well inside both; a head turned a little, or another photo of the person, does not.
const (
	minPoseStep       = 0.03
	minSampleDistance = 0.15
)

// enrolMore is how many frames the server still looks at, for more samples up to
// maxSamples, once it has enough (minSamples, and the turn with liveness) before it saves.
const enrolMore = 6

// poseSample is one analysed enrolment sample.
type poseSample struct {
	d match.Descriptor
	l liveness.Landmarks
}

// alike reports whether b is too similar to a to be kept as a sample of its own.
func alike(a, b *poseSample) bool {
	m, ok := liveness.Measure(a.l, b.l)
	return ok && abs64(m.Turn) < minPoseStep && match.Distance(&a.d, &b.d) < minSampleDistance
}

// distinct returns the samples that are not alike an earlier kept one, in order.
func distinct(samples []poseSample) []poseSample {
	var kept []poseSample
	for i := range samples {
		if !slices.ContainsFunc(kept, func(k poseSample) bool { return alike(&k, &samples[i]) }) {
			kept = append(kept, samples[i])
		}
	}
	return kept
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// errChallengeRequired refuses an upload of samples where enrolment must answer a challenge.
var errChallengeRequired = errorf(http.StatusConflict, "challenge_required",
	"This server checks for a head turn at enrolment: set up face sign-in over the WebSocket /api/ws/enroll, which asks for one.")

// enrolMsg is a guidance or result message of the enrolment WebSocket: the guidance or
// result of a login, with the number of samples kept so far.
type enrolMsg struct {
	Type    string `json:"type"` // "guidance" or "result"
	Code    string `json:"code,omitempty"`
	Status  string `json:"status,omitempty"` // result: "enrolled", "not_live", "samples_differ", "duplicate", "samples_alike"
	Reason  string `json:"reason,omitempty"` // with "not_live": the liveness verdict
	Message string `json:"message"`
	Samples int    `json:"samples"`
}

// wsEnrol enrolls (or replaces) the caller's face from a stream of frames. The query
// parameters consent_version and consent_lang record the consent given on the page, as the
// parts of PUT /api/me/face do. The bounds of a login WebSocket (frames, rate, duration,
// open sockets) hold for it too.
func (s *Server) wsEnrol(w http.ResponseWriter, r *http.Request, c caller) {
	if !s.allowedOrigin(r) {
		s.metrics.rejects.WithLabelValues("origin").Inc()
		writeError(w, http.StatusForbidden, "origin_not_allowed", "This page may not open the enrolment connection.")
		return
	}
	q := r.URL.Query()
	u, err := consentFor(c.user, givenConsent{version: q.Get("consent_version"), lang: q.Get("consent_lang")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ip := s.clientIP(r)
	if !s.gate.enter(ip) {
		s.refuseSocket(w, r, ip)
		return
	}
	defer s.gate.leave(ip)
	s.sockets.Add(1)
	defer s.sockets.Done()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked above
	if err != nil {
		s.log.Info("enrolment WebSocket upgrade failed", "err", err)
		return
	}
	defer conn.CloseNow()
	stopClosing := context.AfterFunc(s.closing, func() {
		conn.Close(websocket.StatusGoingAway, "The server is restarting; please try again.")
	})
	defer stopClosing()
	conn.SetReadLimit(s.opts.MaxFrameBytes)
	timer := time.AfterFunc(s.opts.MaxLoginDuration, func() {
		conn.Close(websocket.StatusPolicyViolation, "The enrolment took too long; start again.")
	})
	defer timer.Stop()
	ctx := context.WithoutCancel(r.Context())
	e := &wsEnrolment{frameStream: frameStream{s: s, c: conn, ip: ip, noun: "enrolment"}, user: u, before: c.user}
	if s.opts.Liveness {
		l := &wsAttempt{frameStream: frameStream{s: s, c: conn, noun: "enrolment"}}
		if err := l.startChallenge(ctx); err != nil {
			s.log.Error("enrolment liveness challenge failed", "err", err)
			conn.Close(websocket.StatusInternalError, "Something went wrong on our side; please try again.")
			return
		}
		e.live = l.live
		defer e.live.Forget()
	}
	code, reason := e.run(ctx)
	for i := range e.kept {
		clear(e.kept[i].d[:])
	}
	conn.Close(code, reason)
}

// wsEnrolment is one enrolment over a WebSocket.
type wsEnrolment struct {
	frameStream
	user, before store.User // with the consent given for this enrolment; as signed in
	kept         []poseSample
	more         int // frames since there were enough samples
	live         *liveness.Challenge
}

// run reads and answers frames until the samples are saved, a refusal or the end of the
// connection, and returns the close status.
func (e *wsEnrolment) run(ctx context.Context) (websocket.StatusCode, string) {
	return e.serve(ctx, e.frame)
}

// frame answers one frame; done reports that the enrolment has its result.
func (e *wsEnrolment) frame(ctx context.Context, frame []byte, now time.Time) (done bool, err error) {
	s := e.s
	if len(frame) == 0 {
		return false, e.send(ctx, "guidance", "bad_image", "The frame is empty; send a JPEG or PNG picture.")
	}
	f, err := s.analyze(ctx, frame, true)
	var fe *face.Error
	if errors.As(err, &fe) {
		return false, e.send(ctx, "guidance", guidanceCode(fe.Reason), fe.Msg)
	}
	if err != nil {
		return false, faceError(err)
	}
	o := observation(f, now)
	clear(f.Descriptor[:])
	defer clear(o.Descriptor[:])
	sample := poseSample{d: o.Descriptor, l: o.Landmarks}
	defer clear(sample.d[:])
	if e.live != nil {
		if v := e.live.Add(o); v.Done() && !v.Live() {
			s.metrics.rejects.WithLabelValues("enrol_not_live").Inc()
			s.log.Info("enrolment: liveness refused", "user", e.user.ID, "reason", string(v.Reason), "direction", e.live.Direction.String(),
				"frames", v.Frames, "turn", round3(v.Turn), "planarity", round3(v.Planarity))
			return true, wsjson.Write(ctx, e.c, enrolMsg{Type: "result", Status: "not_live", Reason: string(v.Reason), Samples: len(e.kept),
				Message: "The frames did not show your head turning as asked; start again and turn your head the way the page asks."})
		}
	}
	for i := range e.kept {
		if match.Distance(&e.kept[i].d, &sample.d) > match.SameSampleBound {
			s.metrics.rejects.WithLabelValues("samples_differ").Inc()
			return true, e.send(ctx, "result", "samples_differ", "The frames do not all show the same person; take them of yourself alone.")
		}
	}
	if s.index.Duplicate(e.user.ID, []match.Descriptor{sample.d}, match.DuplicateBound) {
		s.metrics.rejects.WithLabelValues("duplicate").Inc()
		s.log.Info("enrollment refused: another account's face", "user", e.user.ID)
		return true, e.send(ctx, "result", "duplicate", msgDuplicate)
	}
	turned := e.live == nil || e.live.Verdict().Live()
	room := maxSamples
	if !turned {
		room-- // for the frame that shows the turn
	}
	code, msg := "sample_taken", "Got it. Turn your head a little."
	switch {
	case slices.ContainsFunc(e.kept, func(k poseSample) bool { return alike(&k, &sample) }):
		code, msg = "too_similar", "This picture is too much like one already taken; turn your head a little."
	case len(e.kept) < room:
		e.kept = append(e.kept, sample)
	default:
		code, msg = "checking", "Keep looking into the camera."
	}
	if !turned {
		code, msg = "turn_head", "Turn your head slowly as asked, then look back into the camera."
	}
	if turned && len(e.kept) >= minSamples {
		e.more++
		if len(e.kept) == maxSamples || e.more > enrolMore {
			return true, e.save(ctx)
		}
	}
	return false, e.send(ctx, "guidance", code, msg)
}

// send writes a guidance (code) or a result (status) with the samples kept so far.
func (e *wsEnrolment) send(ctx context.Context, typ, code, msg string) error {
	m := enrolMsg{Type: typ, Message: msg, Samples: len(e.kept)}
	if typ == "result" {
		m.Status = code
	} else {
		m.Code = code
	}
	return wsjson.Write(ctx, e.c, m)
}

// save stores the kept samples as the caller's face and tells the page.
func (e *wsEnrolment) save(ctx context.Context) error {
	ds := make([]match.Descriptor, len(e.kept))
	for i := range e.kept {
		ds[i] = e.kept[i].d
	}
	defer clear(ds)
	if _, err := e.s.saveFace(ctx, e.user, e.before, ds); err != nil {
		return err
	}
	e.s.log.Info("face enrolled", "user", e.user.ID, "samples", len(ds), "liveness", e.live != nil)
	return e.send(ctx, "result", "enrolled", fmt.Sprintf("Face sign-in is set up with %d pictures.", len(ds)))
}
