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
	enroll(t, r, sheldon, store.RoleUser)
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

// TestLivenessEnrolment checks that with liveness the samples must show a turn and near
// copies are not kept.
func TestLivenessEnrolment(t *testing.T) {
	realEngine(t)
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{Liveness: true})
	c, _ := enroll(t, r, sheldon, store.RoleUser) // photos 1–3: sheldon3 is turned
	one := photo(t, "sheldon", 1)
	ct, body := samples(t, one, one, one, one, one)
	want(t, "five copies of one photo", c.do("PUT", "/api/me/face", ct, body), http.StatusUnprocessableEntity, "samples_alike")
	ct, body = samples(t, photo(t, "sheldon", 1), photo(t, "sheldon", 2), one, photo(t, "sheldon", 4), photo(t, "sheldon", 5))
	res := c.do("PUT", "/api/me/face", ct, body)
	want(t, "a turn, one copy", res, http.StatusOK, "")
	var got struct{ Samples int }
	res.decode(t, &got)
	if got.Samples != 4 {
		t.Errorf("kept %d samples, want 4 (the copy of the first dropped)", got.Samples)
	}
}
