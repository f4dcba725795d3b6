package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// The front end's /healthz and /readyz answer as the api's do (docs/api.md), so probes and
// people read the same JSON whichever command serves them.

// healthz reports that the process runs.
func healthz(w http.ResponseWriter, r *http.Request) {
	writeStatus(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

// readyz relays the api's /readyz answer, ready (200) or not (503, the store unreachable),
// so the front end is ready exactly when the api behind it is. An api that does not answer
// in time, or not in the api's way, is 503 {"status":"api unreachable"}.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res, err := s.call(ctx, r, http.MethodGet, "/readyz")
	if err == nil && (res.status == http.StatusOK || res.status == http.StatusServiceUnavailable) && json.Valid(res.body) {
		writeStatus(w, res.status, res.body)
		return
	}
	if err == nil {
		s.log.Warn("readiness: api answered unexpectedly", "status", res.status)
	} else {
		s.log.Warn("readiness: api unreachable", "err", err)
	}
	writeStatus(w, http.StatusServiceUnavailable, []byte(`{"status":"api unreachable"}`+"\n"))
}

// writeStatus writes a JSON health answer.
func writeStatus(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
