package api_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
)

// TestWebSocketGuards checks what the login WebSocket refuses: foreign origins, requests
// without a session, oversized frames, frames larger than a camera's or deeper than 8 bits,
// text messages and frame floods. SQLite is enough:
// the guards do not depend on the store.
func TestWebSocketGuards(t *testing.T) {
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{
		Origins: []string{"https://login.example.com"}, MaxFrameBytes: 256 << 10, MaxFramesPerSec: 5,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	withSession := func() *client {
		c := r.client()
		want(t, "session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
		return c
	}

	t.Run("origin", func(t *testing.T) {
		c := withSession()
		_, res, err := c.dialLogin(ctx, "https://evil.example.net")
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: err %v, response %v; want 403", err, res)
		}
		conn, _, err := c.dialLogin(ctx, "https://login.example.com")
		if err != nil {
			t.Fatalf("configured origin refused: %v", err)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("no session", func(t *testing.T) {
		_, res, err := r.client().dialLogin(ctx, "")
		if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no cookie: err %v, response %v; want 401", err, res)
		}
	})

	// closedWith reads until the server closes and returns the close status and reason.
	closedWith := func(conn *websocket.Conn) (websocket.StatusCode, string) {
		for {
			_, _, err := conn.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					return ce.Code, ce.Reason
				}
				t.Fatalf("connection ended without a close frame: %v", err)
			}
		}
	}

	t.Run("flood", func(t *testing.T) {
		conn, _, err := withSession().dialLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		go func() {
			for range 50 {
				if conn.Write(ctx, websocket.MessageBinary, []byte("x")) != nil {
					return
				}
			}
		}()
		code, reason := closedWith(conn)
		if code != websocket.StatusPolicyViolation || !strings.Contains(reason, "per second") {
			t.Fatalf("flood closed with %v %q, want policy violation naming the rate", code, reason)
		}
	})

	t.Run("frame too large", func(t *testing.T) {
		conn, _, err := withSession().dialLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		conn.Write(ctx, websocket.MessageBinary, make([]byte, 256<<10+1))
		if code, reason := closedWith(conn); code != websocket.StatusMessageTooBig {
			t.Fatalf("oversized frame closed with %v %q, want %v", code, reason, websocket.StatusMessageTooBig)
		}
	})

	t.Run("text message", func(t *testing.T) {
		conn, _, err := withSession().dialLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		conn.Write(ctx, websocket.MessageText, []byte(`{"hello":1}`))
		if code, _ := closedWith(conn); code != websocket.StatusUnsupportedData {
			t.Fatalf("text message closed with %v, want %v", code, websocket.StatusUnsupportedData)
		}
	})

	t.Run("guidance", func(t *testing.T) {
		conn, _, err := withSession().dialLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		for _, tc := range []struct {
			name  string
			frame []byte
			code  string
		}{
			{"zero bytes", nil, "bad_image"},
			{"corrupt", []byte("\xff\xd8\xffnot really a jpeg"), "bad_image"},
			// Two people at sign-in distance. (Camera frames are searched at half size: a
			// face under ≈ 160 px beside a larger one, as in a group photo, is not seen.)
			{"several people", cameraFrame(t, "amy", "penny"), "many_faces"},
			{"no face", blankJPEG(t, 640, 480, 128), "no_face"},
			{"dark", darken(t, photo(t, "amy", 1)), "too_dark"},
			// A camera frame is at most 1920×1080 and 8 bits deep, refused from the header.
			{"frame over 1920×1080", blankJPEG(t, 1921, 1080, 128), "too_large"},
			{"16-bit PNG", png16(t, 64, 64), "unsupported_format"},
		} {
			if err := conn.Write(ctx, websocket.MessageBinary, tc.frame); err != nil {
				t.Fatal(err)
			}
			var m wsMsg
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				t.Fatal(err)
			}
			if m.Type != "guidance" || m.Code != tc.code || m.Message == "" {
				t.Errorf("%s: answered %+v, want guidance %s", tc.name, m, tc.code)
			}
			time.Sleep(250 * time.Millisecond) // stay under the frame rate
		}
	})
}

// png16 is a 16-bit RGBA PNG of w×h pixels, which no camera or canvas produces.
func png16(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA64(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
