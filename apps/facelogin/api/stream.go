package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// frameStream is what a login and an enrolment WebSocket share: it reads camera frames
// under the server's byte budget, holds each socket to the frame count and rate limits,
// and turns what the frame handler returns into a close status.
type frameStream struct {
	s      *Server
	c      *websocket.Conn
	ip     string
	noun   string // "login" or "enrolment", in messages and logs
	frames int
	start  time.Time   // the first frame's arrival
	recent []time.Time // read times of the frames of the last second
}

// frameHandler answers one frame that passed the limits; done reports a result.
type frameHandler func(ctx context.Context, frame []byte, now time.Time) (done bool, err error)

// serve reads and answers frames with handle until a result, a violation or the end of the
// connection, and returns the close status.
func (f *frameStream) serve(ctx context.Context, handle frameHandler) (websocket.StatusCode, string) {
	s := f.s
	for {
		typ, rd, err := f.c.Reader(ctx)
		if err != nil {
			return websocket.StatusNormalClosure, ""
		}
		frame, err := readHeld(rd, s.opts.MaxFrameBytes, s.bytes)
		switch {
		case errors.Is(err, errNoBudget):
			s.metrics.rejects.WithLabelValues("bytes_in_flight").Inc()
			return f.busy(ctx, shed())
		case errors.Is(err, errTooLong), errors.Is(err, websocket.ErrMessageTooBig):
			s.metrics.rejects.WithLabelValues("frame_too_large").Inc()
			return websocket.StatusMessageTooBig, fmt.Sprintf("A frame may hold at most %d KB; send a smaller JPEG.", s.opts.MaxFrameBytes>>10)
		case err != nil:
			return websocket.StatusNormalClosure, ""
		}
		status, reason, end := f.answer(ctx, typ, frame.data, handle)
		frame.free()
		if end {
			return status, reason
		}
	}
}

// busy tells the page the server cannot look at its frame now (too busy, or its store
// unavailable) and when to come back, and returns the close status 1013 (try again later).
func (f *frameStream) busy(ctx context.Context, ae *apiError) (websocket.StatusCode, string) {
	f.s.log.Info(f.noun+" WebSocket closed: busy", "client", f.ip, "retry_after", ae.retryAfter)
	if err := wsjson.Write(ctx, f.c, guidance{Type: "guidance", Code: "busy", Message: ae.message, RetryAfter: ae.retryAfter}); err != nil {
		return websocket.StatusNormalClosure, ""
	}
	return websocket.StatusTryAgainLater, ae.message
}

// answer checks one message against the limits and hands it to handle; end reports that
// the stream is over, closing with status and reason.
func (f *frameStream) answer(ctx context.Context, typ websocket.MessageType, frame []byte, handle frameHandler) (status websocket.StatusCode, reason string, end bool) {
	s := f.s
	now := time.Now()
	if f.start.IsZero() {
		f.start = now
	}
	f.frames++
	if f.frames > s.opts.MaxFrames {
		s.metrics.rejects.WithLabelValues("too_many_frames").Inc()
		return websocket.StatusPolicyViolation, fmt.Sprintf("At most %d frames per %s; start again.", s.opts.MaxFrames, f.noun), true
	}
	f.recent = append(f.recent, now)
	for len(f.recent) > 0 && now.Sub(f.recent[0]) > time.Second {
		f.recent = f.recent[1:]
	}
	if len(f.recent) > s.opts.MaxFramesPerSec {
		s.metrics.rejects.WithLabelValues("frame_rate").Inc()
		s.log.Warn(f.noun+" WebSocket closed: frame flood", "client", f.ip, "frames", f.frames)
		return websocket.StatusPolicyViolation, fmt.Sprintf("Too many frames: send at most %d per second.", s.opts.MaxFramesPerSec), true
	}
	if typ != websocket.MessageBinary {
		return websocket.StatusUnsupportedData, "Send camera frames as binary messages (JPEG or PNG).", true
	}
	done, err := handle(ctx, frame, now)
	if errors.Is(err, store.ErrUnavailable) {
		s.metrics.rejects.WithLabelValues("store_unavailable").Inc()
		s.log.Warn(f.noun+" frame failed: store unavailable", "err", err)
		err = errStoreDown
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusServiceUnavailable {
		status, reason := f.busy(ctx, ae)
		return status, reason, true
	}
	if err != nil {
		s.log.Error(f.noun+" frame failed", "err", err)
		return websocket.StatusInternalError, "Something went wrong on our side; please try again.", true
	}
	if done {
		return websocket.StatusNormalClosure, "", true
	}
	return 0, "", false
}
