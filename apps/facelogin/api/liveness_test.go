package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

var sheldon = person{"Sheldon Cooper", "sheldon@example.com", "730519", "bazinga bazinga bazinga", "sheldon"}

// liveLogin opens a login WebSocket with liveness on, reads the challenge, then sends the
// frames chosen for its direction, one per answer, until a result or the frames run out.
func liveLogin(t *testing.T, c *client, frames func(direction string) [][]byte) (challenge wsMsg, msgs []wsMsg) {
	t.Helper()
	want(t, "start session", c.json("POST", "/api/session", struct{}{}), http.StatusOK, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, _, err := c.dialLogin(ctx, "")
	if err != nil {
		t.Fatalf("dial login WebSocket: %v", err)
	}
	defer conn.CloseNow()
	var ch struct {
		wsMsg
		Direction string
	}
	if err := wsjson.Read(ctx, conn, &ch); err != nil {
		t.Fatalf("read the challenge: %v", err)
	}
	if ch.Type != "challenge" || (ch.Direction != "left" && ch.Direction != "right") || ch.Message == "" {
		t.Fatalf("first message %+v, want a challenge to turn left or right", ch)
	}
	for _, f := range frames(ch.Direction) {
		if err := conn.Write(ctx, websocket.MessageBinary, f); err != nil {
			t.Fatalf("send frame: %v", err)
		}
		var m struct {
			wsMsg
			Reason string
		}
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("read answer after %v: %v", msgs, err)
		}
		m.wsMsg.Code += m.Reason
		msgs = append(msgs, m.wsMsg)
		if m.Type == "result" {
			break
		}
	}
	return ch.wsMsg, msgs
}

// TestLivenessLogin runs the face sign-in with liveness on the real models: a still photo
// sent again and again — which signs in without liveness — is never recognised and is told
// to turn; real photos of the person turning the asked way, then looking back, are.
func TestLivenessLogin(t *testing.T) {
	realEngine(t)
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{Liveness: true})
	c, _ := account(t, r, sheldon, store.RoleUser)
	liveEnrol(t, c)
	front := photo(t, "sheldon", 1)

	t.Run("still photo", func(t *testing.T) {
		_, msgs := liveLogin(t, r.client(), func(string) [][]byte {
			return [][]byte{front, front, front, front, front, front}
		})
		turn := 0
		for _, m := range msgs {
			if m.Type == "result" && m.Status == "recognized" {
				t.Fatalf("a still photo was recognised: %v", msgs)
			}
			if m.Code == "turn_head" {
				turn++
			}
		}
		if turn == 0 {
			t.Errorf("answers %v: want the page told to turn the head", msgs)
		}
	})

	t.Run("real turn", func(t *testing.T) {
		// By-eye pose labels of testdata/faces (apps/facelogin/liveness/sets_test.go):
		// sheldon4 turns to his left, sheldon3 to his right.
		_, msgs := liveLogin(t, r.client(), func(dir string) [][]byte {
			first, turned := photo(t, "sheldon", 1), photo(t, "sheldon", 4)
			if dir == "right" {
				turned = photo(t, "sheldon", 3)
			}
			return [][]byte{first, first, turned, front, front, front, front}
		})
		if got := last(msgs); got.Type != "result" || got.Status != "recognized" {
			t.Fatalf("answers %v: want recognized after the turn", msgs)
		}
	})

	t.Run("wrong way", func(t *testing.T) {
		_, msgs := liveLogin(t, r.client(), func(dir string) [][]byte {
			turned := photo(t, "sheldon", 3)
			if dir == "right" {
				turned = photo(t, "sheldon", 4)
			}
			return [][]byte{front, turned, front, front, front}
		})
		if got := last(msgs); got.Type != "result" || got.Status != "not_live" {
			t.Fatalf("answers %v: want not_live after a turn the other way", msgs)
		}
	})
}

// turned returns Sheldon's photo turned the given way, by the by-eye pose labels of
// testdata/faces (apps/facelogin/liveness/sets_test.go): sheldon4 turns to his left,
// sheldon3 to his right.
func turned(t *testing.T, dir string) []byte {
	if dir == "right" {
		return photo(t, "sheldon", 3)
	}
	return photo(t, "sheldon", 4)
}

// liveEnrol enrolls Sheldon over the WebSocket with liveness: front photos, the turn the
// challenge asks for, front again.
func liveEnrol(t *testing.T, c *client) []enrolMsg {
	t.Helper()
	_, msgs := wsEnroll(t, c, true, "", func(dir string) [][]byte {
		front := photo(t, "sheldon", 1)
		return [][]byte{front, photo(t, "sheldon", 2), front, turned(t, dir), front, front, front, front, front, front, front, front}
	})
	if got := msgs[len(msgs)-1]; got.Type != "result" || got.Status != "enrolled" || got.Samples < 3 {
		t.Fatalf("enrolment with the asked turn: answers %v, want enrolled with at least 3 samples", msgs)
	}
	return msgs
}

// TestLivenessEnrolment enrolls with liveness on the real models: an upload of samples,
// which no challenge asked for, is refused; copies of a still photo are not kept and never
// enrol; a turn the other way than asked is refused; the asked turn enrols, and the turned
// frame is among the samples.
func TestLivenessEnrolment(t *testing.T) {
	realEngine(t)
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{Liveness: true})
	c, _ := account(t, r, sheldon, store.RoleUser)
	front := photo(t, "sheldon", 1)

	ct, body := samples(t, front, photo(t, "sheldon", 2), photo(t, "sheldon", 3))
	want(t, "upload without a challenge", c.do("PUT", "/api/me/face", ct, body), http.StatusConflict, "challenge_required")

	t.Run("still photo", func(t *testing.T) {
		still := make([][]byte, 40)
		for i := range still {
			still[i] = front
		}
		_, msgs := wsEnroll(t, c, true, "", func(string) [][]byte { return still })
		for _, m := range msgs {
			if m.Samples > 1 || m.Status == "enrolled" {
				t.Fatalf("copies of a still photo kept %d samples (%v): %v", m.Samples, m, msgs)
			}
		}
		if got := msgs[len(msgs)-1]; got.Type != "result" || got.Status != "not_live" || got.Reason != "expired" {
			t.Fatalf("still photo: answers %v, want not_live (expired) once the challenge's frames or time ran out", msgs)
		}
		if msgs[1].Code != "turn_head" {
			t.Errorf("still photo: second answer %v, want turn_head", msgs[1])
		}
	})

	t.Run("wrong way", func(t *testing.T) {
		_, msgs := wsEnroll(t, c, true, "", func(dir string) [][]byte {
			other := map[string]string{"left": "right", "right": "left"}[dir]
			return [][]byte{front, photo(t, "sheldon", 2), turned(t, other), front, front}
		})
		if got := msgs[len(msgs)-1]; got.Type != "result" || got.Status != "not_live" {
			t.Fatalf("a turn the other way: answers %v, want not_live", msgs)
		}
		if n := r.descriptors(); n != 0 {
			t.Fatalf("index holds %d descriptors after refused enrolments", n)
		}
	})

	t.Run("asked turn", func(t *testing.T) {
		msgs := liveEnrol(t, c)
		// The frame of the turn (the fourth) must have been kept.
		if msgs[3].Samples <= msgs[2].Samples {
			t.Errorf("the turned frame was not kept as a sample: %v", msgs)
		}
		if n := r.descriptors(); n != msgs[len(msgs)-1].Samples {
			t.Errorf("index holds %d descriptors, the result says %d", n, msgs[len(msgs)-1].Samples)
		}
	})
}
