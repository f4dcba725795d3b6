package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// wall is a JPEG of an empty grey wall: a camera that shows no face.
func wall(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	for i := range img.Pix {
		img.Pix[i] = uint8(150 + i%7)
	}
	img.Set(0, 0, color.Gray{Y: 10})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openLogin starts a session and opens the login WebSocket.
func (c *client) openLogin(ctx context.Context) *websocket.Conn {
	c.t.Helper()
	want(c.t, "start session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
	conn, _, err := c.dialLogin(ctx, "")
	if err != nil {
		c.t.Fatalf("dial login WebSocket: %v", err)
	}
	return conn
}

// paced sends frame every gap, as a browser does, until a result or a close, and returns the
// result, the time from the first frame to it and the guidance codes on the way.
func (c *client) paced(frame []byte, gap time.Duration) (res wsMsg, took time.Duration, codes []string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := c.openLogin(ctx)
	defer conn.CloseNow()
	start := time.Now()
	for {
		if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
			c.t.Fatalf("send frame: %v", err)
		}
		var m wsMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			c.t.Fatalf("read answer after %v: %v", codes, err)
		}
		if m.Type != "guidance" {
			return m, time.Since(start), codes
		}
		codes = append(codes, m.Code)
		time.Sleep(gap)
	}
}

// TestFaceTime checks that a face login keeps looking for FaceTime, with guidance, before it
// ends as not recognised: "unknown" for a face that matches nobody, "no_face" for an empty
// camera; neither counts like a wrong secret.
func TestFaceTime(t *testing.T) {
	const faceTime = 2 * time.Second
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{TrustProxy: true, FaceTime: faceTime, ClientFailures: 1})
	enroll(t, r, amy, store.RoleUser)
	for _, tt := range []struct {
		name, status, guidance string
		frame                  []byte
	}{
		{"stranger", "unknown", "unknown", photo(t, "penny", 1)},
		{"empty camera", "no_face", "no_face", wall(t)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := r.client()
			c.xff = "192.0.2.50"
			res, took, codes := c.paced(tt.frame, 150*time.Millisecond)
			if res.Status != tt.status {
				t.Fatalf("result %+v after %v, want %s", res, took, tt.status)
			}
			if took < faceTime {
				t.Errorf("refused after %v, before FaceTime %v", took, faceTime)
			}
			if len(codes) == 0 || codes[len(codes)-1] != tt.guidance {
				t.Errorf("guidance on the way %v, want it to end with %q", codes, tt.guidance)
			}
		})
	}
	// ClientFailures is 1 and a stranger was just not recognised from this address: Amy's
	// password still works there, because nothing secret was tried.
	amyHere := r.client()
	amyHere.xff = "192.0.2.50"
	want(t, "Amy's password from the address of the stranger", amyHere.json("POST", "/api/login/password",
		map[string]string{"email": amy.email, "password": amy.password}), http.StatusOK, "")
}

// TestFaceLimitSaysWhen checks that a client past its limit of unknown faces is told so over
// the WebSocket, with the seconds to wait, instead of a refused handshake a browser can only
// call a lost connection; its password sign-in stays open.
func TestFaceLimitSaysWhen(t *testing.T) {
	const unknownFaces = 2
	logs := &logBuffer{}
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{TrustProxy: true, ClientFailures: 1, ClientUnknownFaces: unknownFaces, Logger: logs.logger()})
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	enroll(t, r, amy, store.RoleUser)
	c := r.client()
	c.xff = "192.0.2.60"
	for i := range unknownFaces {
		if got := last(c.faceLogin(photo(t, "penny", 1))); got.Status != "unknown" {
			t.Fatalf("stranger %d: %+v", i+1, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The limited client's WebSocket opens, to say why it is refused.
	conn := c.openLogin(ctx)
	defer conn.CloseNow()
	var m struct {
		Type       string `json:"type"`
		Code       string `json:"code"`
		RetryAfter int    `json:"retry_after"`
		Scope      string `json:"scope"`
	}
	if err := wsjson.Read(ctx, conn, &m); err != nil {
		t.Fatalf("read: %v", err)
	}
	if m.Type != "error" || m.Code != "rate_limited" || m.RetryAfter <= 0 || m.Scope != "face" {
		t.Errorf("limited face login says %+v, want an error rate_limited with retry_after, scope face", m)
	}
	_, _, err := conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != api.StatusLimited {
		t.Errorf("closed with %v, want %d", err, api.StatusLimited)
	}
	want(t, fmt.Sprintf("password after %d unknown faces", unknownFaces), c.json("POST", "/api/login/password",
		map[string]string{"email": amy.email, "password": amy.password}), http.StatusOK, "")
}
