package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// BenchmarkLoginFrame measures one login frame through the api — a binary WebSocket message
// answered with guidance, including the session's store lookups — against the baseline of
// the same frame through the bare engine (Analyze) and the index (Search), alternating the
// two in every iteration so machine load affects both alike. It reports both and their ratio.
func BenchmarkLoginFrame(b *testing.B) {
	dsn := "sqlite:" + b.TempDir() + "/f.db"
	sec := newSecrets(b)
	st, err := store.Open(context.Background(), dsn, sec.keys)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng := realEngine(b)
	srv, err := api.New(api.Options{Store: st, Engine: eng, Pepper: sec.pepper, InsecureCookies: true,
		MaxFrames: 1 << 30, MaxFramesPerSec: 1 << 20, ClientFailures: 1 << 30, MaxLoginDuration: time.Hour, FaceTime: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := &replica{st: st, srv: srv, ts: ts, cookies: &cookieLog{}}
	frame := photo(b, "penny", 1) // nobody is enrolled: every steady frame answers "unknown"
	ix := match.NewIndex(match.DefaultThreshold, match.DefaultMargin)

	c := r.client()
	ctx := context.Background()
	res, err := c.hc.Post(c.base+"/api/session", "application/json", nil)
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("session: %v %v", err, res)
	}
	res.Body.Close()
	conn, _, err := c.dialLogin(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()

	var base, service time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		f, err := eng.Analyze(ctx, frame)
		if err != nil {
			b.Fatal(err)
		}
		ix.Search(f.Descriptor)
		base += time.Since(start)

		start = time.Now()
		if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
			b.Fatal(err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			b.Fatal(err)
		}
		if m.Type != "guidance" {
			// UnknownFrames steady frames end the attempt; open the next one.
			conn.CloseNow()
			if conn, _, err = c.dialLogin(ctx, ""); err != nil {
				b.Fatal(err)
			}
		}
		service += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(base.Microseconds())/n/1000, "engine-ms/frame")
	b.ReportMetric(float64(service.Microseconds())/n/1000, "api-ms/frame")
	b.ReportMetric(float64(service)/float64(base), "api/engine")
}
