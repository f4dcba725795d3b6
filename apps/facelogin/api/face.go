package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// Enrollment takes this many samples.
const (
	minSamples = 3
	maxSamples = 5
)

// analyze runs the engine on one image (a camera frame if camera, which the engine caps at
// a camera's size, else a photo) and records the stage's latency.
func (s *Server) analyze(ctx context.Context, img []byte, camera bool) (face.Face, error) {
	analyze := s.eng.Analyze
	if camera {
		analyze = s.eng.AnalyzeFrame
	}
	start := time.Now()
	f, err := analyze(ctx, img)
	var fe *face.Error
	var be *face.BusyError
	switch {
	case errors.As(err, &be):
		s.metrics.rejects.WithLabelValues("busy").Inc()
		return f, err
	case errors.As(err, &fe):
		s.metrics.rejects.WithLabelValues(string(fe.Reason)).Inc()
	}
	s.metrics.stage.WithLabelValues("decode+detect+describe").Observe(time.Since(start).Seconds())
	return f, err
}

// search looks q up in the index and records the stage's latency.
func (s *Server) search(q match.Descriptor) match.Result {
	start := time.Now()
	res := s.index.Search(q)
	s.metrics.stage.WithLabelValues("match").Observe(time.Since(start).Seconds())
	return res
}

// candidates finds the people within the threshold of q, at most Options.Candidates, and
// records the stage's latency.
func (s *Server) candidates(q match.Descriptor) []match.Candidate {
	start := time.Now()
	c := s.index.Candidates(q, s.opts.Candidates)
	s.metrics.stage.WithLabelValues("match").Observe(time.Since(start).Seconds())
	return c
}

// faceError turns a rejected frame into an API error, and an engine too busy to look at it
// into 503 busy; other errors pass through.
func faceError(err error) error {
	var fe *face.Error
	var be *face.BusyError
	switch {
	case errors.As(err, &fe):
		return &apiError{status: fe.Reason.Status(), code: string(fe.Reason), message: fe.Msg}
	case errors.As(err, &be):
		return busy(be.RetryAfter)
	}
	return err
}

// busy is the answer of an overloaded server: 503 with a Retry-After.
func busy(retry time.Duration) *apiError {
	secs := retrySeconds(retry)
	return &apiError{status: http.StatusServiceUnavailable, code: "busy", retryAfter: secs,
		message: fmt.Sprintf("The server is busy; please try again in %d seconds.", secs)}
}

// retrySeconds rounds d up to whole seconds, at least one.
func retrySeconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// isQuality reports whether r is about the face in a readable image (not the image itself).
func isQuality(r face.Reason) bool {
	switch r {
	case face.NoFace, face.ManyFaces, face.TooSmall, face.TooDark:
		return true
	}
	return false
}

// readImage reads a request body declared as image/jpeg or image/png, at most MaxFrameBytes,
// under the byte budget; the caller frees it.
func (s *Server) readImage(r *http.Request) (*held, error) {
	if err := needType(r, "image/jpeg", "image/png"); err != nil {
		return nil, err
	}
	body, err := s.readUpload(r.Body, "The image")
	if err != nil {
		return nil, err
	}
	if len(body.data) == 0 {
		body.free()
		return nil, errorf(http.StatusBadRequest, "bad_image", "The image is empty; send a JPEG or PNG photo.")
	}
	return body, nil
}

// readUpload reads one uploaded image (what names it in errors) of at most MaxFrameBytes
// under the byte budget: busy when the budget has no room for it.
func (s *Server) readUpload(r io.Reader, what string) (*held, error) {
	h, err := readHeld(r, s.opts.MaxFrameBytes, s.bytes)
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errNoBudget):
		s.metrics.rejects.WithLabelValues("bytes_in_flight").Inc()
		return nil, shed()
	case errors.Is(err, errTooLong), errors.As(err, &mbe):
		return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "%s is larger than %d KB; send a smaller photo.", what, s.opts.MaxFrameBytes>>10)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "bad_request", "%s could not be received completely.", what)
	}
	return h, nil
}

// faceCheck tells the enrollment page whether a frame makes a good sample. Quality answers
// (no face, too small, ...) are 200 with ok=false; unreadable images are 4xx errors.
func (s *Server) faceCheck(w http.ResponseWriter, r *http.Request, c caller) {
	frame, err := s.readImage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := s.analyze(r.Context(), frame.data, false)
	frame.free()
	var fe *face.Error
	switch {
	case errors.As(err, &fe) && isQuality(fe.Reason):
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "code": guidanceCode(fe.Reason), "message": fe.Msg})
		return
	case err != nil:
		s.fail(w, r, faceError(err))
		return
	}
	dup := s.index.Duplicate(c.user.ID, []match.Descriptor{f.Descriptor}, match.DuplicateBound)
	clear(f.Descriptor[:])
	if dup {
		s.log.Info("enrollment sample is another account's face", "user", c.user.ID)
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "code": "duplicate", "message": msgDuplicate})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "code": "ok", "message": "Good."})
}

// msgDuplicate refuses the same face enrolling under a second account. It never says whose
// face it is.
const msgDuplicate = "This face is already enrolled under another account; ask an administrator for help."

// putFace enrolls (or replaces) the caller's face from 3–5 multipart parts named "sample".
// Parts "consent_version" and "consent_lang" record the consent given on the page; they are
// required when the caller has withdrawn their consent (by deleting their face data) since
// they last gave it. With Options.Liveness the samples must answer a challenge: only
// GET /api/ws/enroll takes them.
func (s *Server) putFace(w http.ResponseWriter, r *http.Request, c caller) {
	if s.opts.Liveness {
		s.metrics.rejects.WithLabelValues("challenge_required").Inc()
		s.fail(w, r, errChallengeRequired)
		return
	}
	ds, given, err := s.readSamples(w, r, c)
	defer clear(ds)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := consentFor(c.user, given)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, err := s.saveFace(r.Context(), u, c.user, ds)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("face enrolled", "user", u.ID, "samples", len(ds))
	writeJSON(w, http.StatusOK, map[string]any{"samples": len(ds), "face_enrolled_at": stored.FaceEnrolledAt,
		"consent": map[string]any{"version": stored.ConsentVersion, "lang": stored.ConsentLang, "at": stored.ConsentAt}})
}

// consentFor returns u with the consent given for an enrolment recorded, or an error when
// it is invalid, or missing while u has withdrawn theirs.
func consentFor(u store.User, given givenConsent) (store.User, error) {
	switch {
	case given.version != "" || given.lang != "":
		consent, err := checkConsent(true, given.version, given.lang)
		if err != nil {
			return u, err
		}
		u.ConsentVersion, u.ConsentLang, u.ConsentAt = consent.Version, consent.Lang, time.Now()
	case u.ConsentVersion == "":
		return u, errorf(http.StatusBadRequest, "consent_required", "Read and accept the consent text (version %s) to set up face sign-in; send it as the parts consent_version and consent_lang.", ConsentVersion)
	}
	return u, nil
}

// saveFace replaces the samples of u (as consentFor returned it; before is the user as
// signed in) with ds, and records a consent given anew. It returns the stored user.
func (s *Server) saveFace(ctx context.Context, u, before store.User, ds []match.Descriptor) (store.User, error) {
	if err := s.st.ReplaceSamples(ctx, u.ID, ds); err != nil {
		return store.User{}, fmt.Errorf("store face samples: %w", err)
	}
	s.index.Set(u.ID, ds)
	stored, err := s.st.User(ctx, u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("read user: %w", err)
	}
	if u.ConsentAt != before.ConsentAt {
		stored.ConsentVersion, stored.ConsentLang, stored.ConsentAt = u.ConsentVersion, u.ConsentLang, u.ConsentAt
		if err := s.st.UpdateUser(ctx, stored); err != nil {
			return store.User{}, fmt.Errorf("record consent: %w", err)
		}
		s.log.Info("consent recorded", "user", u.ID, "consent_version", u.ConsentVersion, "consent_lang", u.ConsentLang)
	}
	return stored, nil
}

// givenConsent is the consent sent with enrollment samples.
type givenConsent struct{ version, lang string }

// readSamples reads and checks the enrollment samples: each a good frame of one face, all
// of the same person (no two farther apart than match.SameSampleBound), at least minSamples
// of them not alike (near copies are dropped), and not the face of
// another account enrolling again (match.Index.Duplicate). A look-alike of someone enrolled
// is not refused: the PIN tells them apart.
func (s *Server) readSamples(w http.ResponseWriter, r *http.Request, c caller) ([]match.Descriptor, givenConsent, error) {
	var given givenConsent
	ds, err := s.readParts(w, r, c, &given)
	return ds, given, err
}

// readParts reads the parts of an enrollment: the samples, and the consent fields into given.
func (s *Server) readParts(w http.ResponseWriter, r *http.Request, c caller, given *givenConsent) ([]match.Descriptor, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the samples as multipart/form-data with %d to %d parts named \"sample\".", minSamples, maxSamples)
	}
	body := http.MaxBytesReader(w, r.Body, int64(maxSamples)*s.opts.MaxFrameBytes+64<<10)
	mr := multipart.NewReader(body, params["boundary"])
	var ds []match.Descriptor
	var poses []poseSample
	for i := 1; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ds, errorf(http.StatusRequestEntityTooLarge, "too_large", "The samples are larger than %d KB together; send smaller photos.", (int64(maxSamples)*s.opts.MaxFrameBytes)>>10)
		}
		if err != nil {
			return ds, errorf(http.StatusBadRequest, "bad_request", "The multipart body could not be read.")
		}
		if field := part.FormName(); field == "consent_version" || field == "consent_lang" {
			v, err := io.ReadAll(io.LimitReader(part, 33))
			if err != nil || len(v) > 32 {
				return ds, errorf(http.StatusBadRequest, "bad_request", "The part %q must be a short text such as %q.", field, ConsentVersion)
			}
			if field == "consent_version" {
				given.version = string(v)
			} else {
				given.lang = string(v)
			}
			i--
			continue
		}
		if part.FormName() != "sample" {
			return ds, errorf(http.StatusBadRequest, "bad_request", "Unexpected part %q; name every part \"sample\".", part.FormName())
		}
		if len(ds) == maxSamples {
			return ds, errorf(http.StatusBadRequest, "too_many_samples", "Send at most %d samples.", maxSamples)
		}
		frame, err := s.readUpload(part, fmt.Sprintf("Sample %d", i))
		if err != nil {
			return ds, err
		}
		f, err := s.analyze(r.Context(), frame.data, false)
		frame.free()
		if err != nil {
			var ae *apiError
			if errors.As(faceError(err), &ae) {
				ae.message = fmt.Sprintf("Sample %d: %s", i, ae.message)
				return ds, ae
			}
			return ds, err
		}
		for j := range ds {
			if match.Distance(&ds[j], &f.Descriptor) > match.SameSampleBound {
				s.metrics.rejects.WithLabelValues("samples_differ").Inc()
				return ds, errorf(http.StatusUnprocessableEntity, "samples_differ", "Samples %d and %d do not show the same person; take all samples of yourself alone.", j+1, i)
			}
		}
		ds = append(ds, f.Descriptor)
		poses = append(poses, poseSample{d: f.Descriptor, l: observation(f, time.Time{}).Landmarks})
		clear(f.Descriptor[:])
	}
	if len(ds) < minSamples {
		return ds, errorf(http.StatusBadRequest, "too_few_samples", "Send at least %d samples (parts named \"sample\"); got %d.", minSamples, len(ds))
	}
	kept := distinct(poses)
	n := len(kept)
	for i := range poses {
		clear(poses[i].d[:])
	}
	if n < minSamples {
		s.metrics.rejects.WithLabelValues("samples_alike").Inc()
		return ds, errorf(http.StatusUnprocessableEntity, "samples_alike", "Only %d of the samples differ from each other; take them while turning your head a little between them.", n)
	}
	clear(ds)
	ds = ds[:0]
	for i := range kept {
		ds = append(ds, kept[i].d)
		clear(kept[i].d[:])
	}
	if s.index.Duplicate(c.user.ID, ds, match.DuplicateBound) {
		s.metrics.rejects.WithLabelValues("duplicate").Inc()
		s.log.Info("enrollment refused: another account's face", "user", c.user.ID)
		return ds, errorf(http.StatusConflict, "duplicate", "%s", msgDuplicate)
	}
	return ds, nil
}

// deleteMyFace erases the caller's face data.
func (s *Server) deleteMyFace(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.eraseFace(r.Context(), c.user.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// eraseFace deletes a person's samples from the store and the index, and with them the
// consent they gave (deleting the face data withdraws it; setting up face sign-in again asks
// for it anew). Other replicas drop the samples at their next poll.
func (s *Server) eraseFace(ctx context.Context, id match.UserID) error {
	if err := s.st.DeleteSamples(ctx, id); err != nil {
		return notFoundAs(err, errorf(http.StatusNotFound, "not_found", "There is no such person."))
	}
	s.index.Delete(id)
	u, err := s.st.User(ctx, id)
	if err == nil {
		u.ConsentVersion, u.ConsentLang, u.ConsentAt = "", "", time.Time{}
		err = s.st.UpdateUser(ctx, u)
	}
	if err != nil {
		return notFoundAs(fmt.Errorf("withdraw consent of user %d: %w", id, err), errorf(http.StatusNotFound, "not_found", "There is no such person."))
	}
	s.log.Info("face data erased, consent withdrawn", "user", id)
	return nil
}

// guidanceCode is the guidance code clients get for a rejected frame.
func guidanceCode(r face.Reason) string {
	switch r {
	case face.TooSmall:
		return "move_closer"
	case face.NoFace, face.ManyFaces, face.TooDark, face.TooLarge, face.UnsupportedFormat:
		return string(r)
	}
	return "bad_image"
}
