package api

import (
	"context"
	"errors"
	"fmt"
	"image"
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

// wsAttempt is one login over a WebSocket.
type wsAttempt struct {
	frameStream
	sess    store.Session
	r       *http.Request
	sawFace bool // some frame showed a face
	prev    image.Rectangle
	unknown int
	// agree holds the latest steady frames that found candidates, oldest first, at most
	// DecisionFrames.
	agree []frameMatch
	// live is the attempt's head-turn challenge (Options.Liveness), else nil.
	live *liveness.Challenge
}

// frameMatch is one steady frame's descriptor and the people within the threshold of it.
type frameMatch struct {
	d   match.Descriptor
	ids []match.UserID
}

// forget zeroes and drops the frames held for a decision.
func (l *wsAttempt) forget() {
	for i := range l.agree {
		clear(l.agree[i].d[:])
	}
	l.agree = l.agree[:0]
}

// agreeing reports whether some person is a candidate of every frame.
func agreeing(fs []frameMatch) bool {
	for _, id := range fs[0].ids {
		all := true
		for _, f := range fs[1:] {
			all = all && slices.Contains(f.ids, id)
		}
		if all {
			return true
		}
	}
	return false
}

// run reads and answers frames until a result, a violation or the end of the connection,
// and returns the close status.
func (l *wsAttempt) run(ctx context.Context) (websocket.StatusCode, string) {
	return l.serve(ctx, func(ctx context.Context, frame []byte, _ time.Time) (bool, error) {
		return l.frame(ctx, frame)
	})
}

// frame answers one frame; done reports that the attempt has its result.
func (l *wsAttempt) frame(ctx context.Context, frame []byte) (done bool, err error) {
	s := l.s
	say := func(code, msg string) error {
		return wsjson.Write(ctx, l.c, guidance{Type: "guidance", Code: code, Message: msg})
	}
	if len(frame) == 0 {
		l.prev = image.Rectangle{}
		return false, say("bad_image", "The frame is empty; send a JPEG or PNG picture.")
	}
	f, err := s.analyze(ctx, frame, true)
	var fe *face.Error
	if errors.As(err, &fe) {
		l.prev = image.Rectangle{}
		if fe.Reason == face.ManyFaces || fe.Reason == face.TooSmall || fe.Reason == face.TooDark {
			l.sawFace = true
		}
		if l.timeUp() {
			return l.notRecognised(ctx)
		}
		return false, say(guidanceCode(fe.Reason), fe.Msg)
	}
	if err != nil {
		return false, faceError(err)
	}
	l.sawFace = true
	if v, refused := l.liveFrame(f, time.Now()); refused {
		clear(f.Descriptor[:])
		return l.notLive(ctx, v)
	}
	steady := steady(l.prev, f.Box)
	l.prev = f.Box
	if !steady {
		clear(f.Descriptor[:])
		if l.timeUp() {
			return l.notRecognised(ctx)
		}
		return false, say("hold_still", "Hold still for a moment.")
	}
	cands := s.candidates(f.Descriptor)
	if len(cands) == 0 {
		clear(f.Descriptor[:])
		l.forget()
		return l.unknownFrame(ctx, say)
	}
	fm := frameMatch{d: f.Descriptor}
	clear(f.Descriptor[:])
	for _, c := range cands {
		fm.ids = append(fm.ids, c.ID)
	}
	if len(l.agree) == s.opts.DecisionFrames {
		clear(l.agree[0].d[:])
		l.agree = slices.Delete(l.agree, 0, 1)
	}
	l.agree = append(l.agree, fm)
	if len(l.agree) < s.opts.DecisionFrames || !agreeing(l.agree) {
		if l.timeUp() {
			return l.notRecognised(ctx)
		}
		return false, say("checking", "Keep looking into the camera.")
	}
	// The frames agree: their mean decides.
	ds := make([]match.Descriptor, len(l.agree))
	for i := range l.agree {
		ds[i] = l.agree[i].d
	}
	mean := match.Mean(ds)
	clear(ds)
	defer clear(mean[:])
	if l.waitLive(&mean) {
		return false, say("turn_head", "Turn your head slowly as asked, then look back into the camera.")
	}
	l.forget()
	if s.opts.PINOptional {
		return l.faceOnly(ctx, mean, say)
	}
	ids, paused, err := s.liveCandidates(ctx, s.candidates(mean))
	if err != nil {
		return false, err
	}
	if len(ids) == 0 && paused {
		s.metrics.results.WithLabelValues("paused").Inc()
		s.log.Info("login: face sign-in paused", "client", l.ip)
		return true, wsjson.Write(ctx, l.c, result{Type: "result", Status: "paused", Next: "password"})
	}
	if len(ids) == 0 {
		return l.unknownFrame(ctx, say)
	}
	s.metrics.results.WithLabelValues("recognized").Inc()
	l.sess.UserID, l.sess.Candidates = 0, ids
	l.sess.Method, l.sess.Stage = "face", store.StagePending
	l.sess.LastSeen = time.Now()
	if err := s.st.UpdateSession(ctx, l.sess); err != nil {
		return false, fmt.Errorf("raise session: %w", err)
	}
	s.log.Info("login: face matched", "candidates", len(ids), "next", "pin")
	return true, wsjson.Write(ctx, l.c, result{Type: "result", Status: "recognized", Next: "pin"})
}

// unknownFrame answers a steady frame that matched nobody; after UnknownFrames of them, once
// FaceTime has passed, the attempt ends as unknown.
func (l *wsAttempt) unknownFrame(ctx context.Context, say func(code, msg string) error) (bool, error) {
	l.unknown++
	if l.unknown < l.s.opts.UnknownFrames || (l.s.opts.FaceTime > 0 && !l.timeUp()) {
		return false, say("unknown", "Not recognised yet; keep looking into the camera.")
	}
	return l.notRecognised(ctx)
}

// timeUp reports whether the attempt has looked for FaceTime since its first frame without a
// decision (never with a negative FaceTime).
func (l *wsAttempt) timeUp() bool {
	return l.s.opts.FaceTime > 0 && time.Since(l.start) >= l.s.opts.FaceTime
}

// notRecognised ends the attempt without a match: "unknown" after a face that matched nobody
// (counted under the client's face key, not with wrong secrets: nothing secret was tried),
// else "unknown" for a face never held still long enough, or "no_face".
func (l *wsAttempt) notRecognised(ctx context.Context) (bool, error) {
	s := l.s
	status := "unknown"
	if !l.sawFace {
		status = "no_face"
	}
	s.metrics.results.WithLabelValues(status).Inc()
	s.log.Info("login: not recognised", "client", l.ip, "status", status)
	if l.unknown > 0 {
		if err := s.failed(ctx, faceKey(l.ip)); err != nil {
			return false, err
		}
	}
	return true, wsjson.Write(ctx, l.c, result{Type: "result", Status: status})
}

// faceOnly signs in by the face alone (PINOptional): only when the mean descriptor is within
// the threshold of one person and the margin nearer to them than to anybody else.
func (l *wsAttempt) faceOnly(ctx context.Context, mean match.Descriptor, say func(code, msg string) error) (bool, error) {
	s := l.s
	res := s.search(mean)
	if !res.Known {
		return l.unknownFrame(ctx, say)
	}
	ids, _, err := s.liveCandidates(ctx, []match.Candidate{{ID: res.ID, Distance: res.Distance}})
	if err != nil {
		return false, err
	}
	if len(ids) == 0 {
		return l.unknownFrame(ctx, say)
	}
	u, err := s.st.User(ctx, ids[0])
	if err != nil {
		return false, fmt.Errorf("read recognised user: %w", err)
	}
	s.metrics.results.WithLabelValues("recognized").Inc()
	l.sess.UserID, l.sess.Method, l.sess.Stage, l.sess.LastSeen = u.ID, "face", store.StageFull, time.Now()
	if err := s.st.UpdateSession(ctx, l.sess); err != nil {
		return false, fmt.Errorf("raise session: %w", err)
	}
	if err := s.st.AddLogin(ctx, store.LoginEvent{UserID: u.ID, At: time.Now(), Method: "face", Client: s.clientSummary(l.r), Success: true}); err != nil {
		return false, fmt.Errorf("record login: %w", err)
	}
	s.log.Info("login: face recognised", "user", u.ID, "next", "done")
	return true, wsjson.Write(ctx, l.c, result{Type: "result", Status: "recognized", Next: "done", Name: u.Name})
}

// liveCandidates keeps the candidates the store still knows with face data, in order, and
// leaves out those whose face sign-in is paused (paused reports any). Someone deleted or
// erased on another replica, whose change this replica has not polled yet, leaves the
// index at once: the store has the last word, so an erasure takes effect everywhere.
func (s *Server) liveCandidates(ctx context.Context, cands []match.Candidate) (ids []match.UserID, paused bool, err error) {
	for _, c := range cands {
		u, err := s.st.User(ctx, c.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.FaceEnrolledAt.IsZero()) {
			s.index.Delete(c.ID)
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("read candidate: %w", err)
		}
		if !u.FacePausedAt.IsZero() {
			paused = true
			continue
		}
		ids = append(ids, c.ID)
	}
	return ids, paused, nil
}

// steady reports whether the face moved little between two frames: its centre by at most
// a sixth of its width and its width by at most a sixth. A zero prev is never steady.
func steady(prev, cur image.Rectangle) bool {
	if prev.Empty() || cur.Empty() {
		return false
	}
	tol := prev.Dx() / 6
	cp := prev.Min.Add(prev.Max).Div(2)
	cc := cur.Min.Add(cur.Max).Div(2)
	d := cp.Sub(cc)
	return abs(d.X) <= tol && abs(d.Y) <= tol && abs(prev.Dx()-cur.Dx()) <= tol
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
