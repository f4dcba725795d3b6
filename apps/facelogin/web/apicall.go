package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// apiTimeout bounds every call a page makes to the API while rendering.
const apiTimeout = 5 * time.Second

// errAPIDown means the API could not be reached or failed (5xx): the page says so.
var errAPIDown = errors.New("api unavailable")

// apiResult is a buffered API response.
type apiResult struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to the API on behalf of the browser request r, carrying its cookies,
// language and client address, and buffers the answer.
func (s *server) call(ctx context.Context, r *http.Request, method, target string) (*apiResult, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	req.Host = r.Host
	req.RemoteAddr = r.RemoteAddr
	req.TLS = r.TLS
	for _, h := range []string{"Cookie", "Accept-Language", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-Ip"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set("Accept", "application/json")
	rec := &bufferWriter{header: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				rec.status = http.StatusInternalServerError
			}
		}()
		s.api.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s %s: %w", method, target, ctx.Err())
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &apiResult{status: rec.status, header: rec.header, body: rec.buf.Bytes()}, nil
}

// getJSON fetches target into v. It returns the status code; errAPIDown for transport
// failures and 5xx answers.
func (s *server) getJSON(w http.ResponseWriter, r *http.Request, target string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	res, err := s.call(ctx, r, http.MethodGet, target)
	if err != nil {
		s.log.Warn("api call failed", "target", routeOfAPI(target), "err", err)
		return 0, errAPIDown
	}
	// The API may refresh the session cookie; the browser must see that.
	for _, c := range res.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	if res.status >= 500 {
		s.log.Warn("api call failed", "target", routeOfAPI(target), "status", res.status)
		return res.status, errAPIDown
	}
	if res.status != http.StatusOK || v == nil {
		return res.status, nil
	}
	if err := json.Unmarshal(res.body, v); err != nil {
		s.log.Warn("api answer unreadable", "target", routeOfAPI(target), "err", err)
		return res.status, errAPIDown
	}
	return res.status, nil
}

// routeOfAPI drops path parameters (invite tokens) from log lines.
func routeOfAPI(target string) string {
	if len(target) > len("/api/invites/") && target[:len("/api/invites/")] == "/api/invites/" {
		return "/api/invites/{token}"
	}
	return target
}

// bufferWriter is a minimal in-memory http.ResponseWriter for calls to the API.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}
