package face

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Reason is the stable code of a rejected frame; clients translate it for the user.
type Reason string

// The reasons Analyze rejects a frame for.
const (
	BadImage          Reason = "bad_image"          // empty, truncated or corrupt image
	TooLarge          Reason = "too_large"          // over Options.MaxBytes or MaxPixels
	UnsupportedFormat Reason = "unsupported_format" // neither JPEG nor PNG
	NoFace            Reason = "no_face"            // no face found
	ManyFaces         Reason = "many_faces"         // more than one face in view
	TooSmall          Reason = "too_small"          // face narrower than Options.MinFaceSize
	TooDark           Reason = "too_dark"           // face darker than Options.MinBrightness
)

// Status returns the HTTP status code that answers a frame rejected for r.
func (r Reason) Status() int {
	switch r {
	case BadImage:
		return http.StatusBadRequest
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedFormat:
		return http.StatusUnsupportedMediaType
	case NoFace, ManyFaces, TooSmall, TooDark:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// Error is a frame Analyze rejects; it is always returned as *Error. Msg is one English
// sentence for the user, Reason the code to translate it by.
type Error struct {
	Reason Reason
	Msg    string
	err    error // the underlying decoder error, if any, for logs
}

func (e *Error) Error() string {
	if e.err != nil {
		return e.Msg + " (" + e.err.Error() + ")"
	}
	return e.Msg
}

// Unwrap returns the decoder error behind a bad_image, if any.
func (e *Error) Unwrap() error { return e.err }

func reject(r Reason, msg string) *Error { return &Error{Reason: r, Msg: msg} }

// ErrClosed is returned by Analyze after Close.
var ErrClosed = errors.New("face: engine closed")

// BusyError is returned by Analyze when no recognizer became free within Options.MaxWait:
// the engine is overloaded and the frame was not looked at.
type BusyError struct {
	// RetryAfter estimates when the callers already waiting will have been served.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("face: every recognizer is busy; retry in %v", e.RetryAfter)
}
