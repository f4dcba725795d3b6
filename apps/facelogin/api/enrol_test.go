package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// account invites p and creates their account (consent, PIN, password), without face data,
// and returns their signed-in client and user id.
func account(t testing.TB, r *replica, p person, role store.Role) (*client, match.UserID) {
	t.Helper()
	inv, err := api.CreateInvite(context.Background(), r.st, api.InviteOptions{Name: p.name, Email: p.email, Role: role})
	if err != nil {
		t.Fatalf("invite %s: %v", p.email, err)
	}
	c := r.client()
	res := c.do("GET", "/api/invites/"+inv.Token, "", nil)
	want(t, "open invitation", res, http.StatusOK, "")
	var details struct {
		Name    string
		Consent struct{ Version, Text string }
	}
	res.decode(t, &details)
	if details.Name != p.name || details.Consent.Version == "" || details.Consent.Text == "" {
		t.Fatalf("invitation details %s", res.body)
	}
	res = c.json("POST", "/api/enroll", map[string]any{"token": inv.Token, "consent_version": details.Consent.Version,
		"accept": true, "pin": p.pin, "password": p.password})
	want(t, "enroll", res, http.StatusCreated, "")
	var created struct{ User struct{ ID int64 } }
	res.decode(t, &created)
	return c, match.UserID(created.User.ID)
}

// enrolMsg is a message of the enrolment WebSocket.
type enrolMsg struct {
	Type, Code, Status, Reason, Message, Direction string
	Samples                                        int
}

func (m enrolMsg) String() string {
	return m.Type + ":" + m.Code + m.Status + "/" + m.Reason
}

// wsEnroll opens the enrolment WebSocket (query: its query string), reads the challenge
// when the server has liveness on (live; direction "" otherwise), then sends the frames chosen for the
// direction, one per answer, until a result or the frames run out. It returns the messages
// answering the frames.
func wsEnroll(t *testing.T, c *client, live bool, query string, frames func(direction string) [][]byte) (direction string, msgs []enrolMsg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/api/ws/enroll"+query,
		&websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {c.base}}})
	if err != nil {
		t.Fatalf("dial enrolment WebSocket: %v (%v)", err, res)
	}
	defer conn.CloseNow()
	send := func(f []byte) {
		if err := conn.Write(ctx, websocket.MessageBinary, f); err != nil {
			t.Fatalf("send frame: %v", err)
		}
	}
	read := func() enrolMsg {
		var m enrolMsg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("read answer after %v: %v", msgs, err)
		}
		return m
	}
	fs := frames("")
	if live {
		m := read()
		if m.Type != "challenge" || (m.Direction != "left" && m.Direction != "right") || m.Message == "" {
			t.Fatalf("first message %+v, want a challenge to turn left or right", m)
		}
		direction, fs = m.Direction, frames(m.Direction)
	}
	for i, f := range fs {
		if i > 0 {
			// As the page, leave time between frames: the server allows 8 a second.
			time.Sleep(150 * time.Millisecond)
		}
		send(f)
		m := read()
		msgs = append(msgs, m)
		if m.Type == "result" {
			break
		}
	}
	return direction, msgs
}

// TestEnrolSocket enrolls over the WebSocket without liveness on the real models: copies of
// one still photo stay one sample and are told to turn; different photos of the person
// become the samples; no consent on record, another person, an unknown origin are refused.
func TestEnrolSocket(t *testing.T) {
	realEngine(t)
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{})
	c, id := account(t, r, amy, store.RoleUser)
	one := photo(t, "amy", 2)

	_, msgs := wsEnroll(t, c, false, "", func(string) [][]byte { return [][]byte{one, one, one, one, one, one, one, one} })
	for i, m := range msgs {
		switch {
		case m.Type != "guidance":
			t.Fatalf("copies of one photo: answer %d is %v, want guidance only: %v", i, m, msgs)
		case m.Samples != 1:
			t.Fatalf("copies of one photo: %d samples after frame %d, want 1: %v", m.Samples, i+1, msgs)
		case i > 0 && m.Code != "too_similar":
			t.Errorf("copy %d answered %v, want too_similar", i+1, m)
		}
	}
	if n := r.descriptors(); n != 0 {
		t.Fatalf("index holds %d descriptors after copies of one photo", n)
	}

	// Five photos of Amy at her poses (1 turned right, 4 turned left), copies in between.
	_, msgs = wsEnroll(t, c, false, "", func(string) [][]byte {
		return [][]byte{photo(t, "amy", 2), one, photo(t, "amy", 1), photo(t, "amy", 3), one, photo(t, "amy", 4), photo(t, "amy", 5)}
	})
	if got := msgs[len(msgs)-1]; got.Type != "result" || got.Status != "enrolled" || got.Samples != 5 {
		t.Fatalf("five poses: answers %v, want enrolled with 5 samples", msgs)
	}
	if got := r.descriptors(); got != 5 {
		t.Errorf("index holds %d descriptors, want 5", got)
	}

	// Another person in the middle ends the enrolment; the five samples stay.
	_, msgs = wsEnroll(t, c, false, "", func(string) [][]byte {
		return [][]byte{photo(t, "amy", 2), photo(t, "sheldon", 1)}
	})
	if got := msgs[len(msgs)-1]; got.Type != "result" || got.Status != "samples_differ" {
		t.Fatalf("amy then sheldon: answers %v, want samples_differ", msgs)
	}
	if got := r.descriptors(); got != 5 {
		t.Errorf("index holds %d descriptors after a refused enrolment, want 5", got)
	}

	// After deleting the face data the consent must be given again.
	want(t, "delete face", c.do("DELETE", "/api/me/face", "", nil), http.StatusNoContent, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/api/ws/enroll",
		&websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {c.base}}})
	if err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("enrolment without consent on record: %v %v, want 400 consent_required", err, res)
	}
	_, res, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/api/ws/enroll?consent_version="+api.ConsentVersion+"&consent_lang=en",
		&websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("enrolment from another origin: %v %v, want 403", err, res)
	}
	_, res, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/api/ws/enroll",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {c.base}}})
	if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("enrolment without a session: %v %v, want 401", err, res)
	}
	_, msgs = wsEnroll(t, c, false, "?consent_version="+api.ConsentVersion+"&consent_lang=de", func(string) [][]byte {
		return [][]byte{photo(t, "amy", 1), photo(t, "amy", 2), photo(t, "amy", 3), photo(t, "amy", 4), photo(t, "amy", 5)}
	})
	if got := msgs[len(msgs)-1]; got.Status != "enrolled" {
		t.Fatalf("enrolment with consent given: %v", msgs)
	}
	u, err := r.st.User(context.Background(), id)
	if err != nil || u.ConsentLang != "de" || u.ConsentVersion != api.ConsentVersion {
		t.Fatalf("consent after enrolment: %q %q (%v)", u.ConsentVersion, u.ConsentLang, err)
	}
}

// TestEnrolUploadCopies uploads copies of one photo over HTTP: they are not kept as samples
// of their own, with or without liveness.
func TestEnrolUploadCopies(t *testing.T) {
	realEngine(t)
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{})
	c, _ := account(t, r, sheldon, store.RoleUser)
	one := photo(t, "sheldon", 1)
	ct, body := samples(t, one, one, one, one, one)
	want(t, "five copies of one photo", c.do("PUT", "/api/me/face", ct, body), http.StatusUnprocessableEntity, "samples_alike")
	ct, body = samples(t, one, photo(t, "sheldon", 2), one, photo(t, "sheldon", 4), photo(t, "sheldon", 5))
	res := c.do("PUT", "/api/me/face", ct, body)
	want(t, "four poses, one copy", res, http.StatusOK, "")
	var got struct{ Samples int }
	res.decode(t, &got)
	if got.Samples != 4 {
		t.Errorf("kept %d samples, want 4 (the copy of the first dropped)", got.Samples)
	}
}
