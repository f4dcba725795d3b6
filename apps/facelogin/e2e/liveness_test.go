package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// turnCamera makes a y4m of a person turning their head, from real photos of them at
// different poses: front photo, turned photo, front photo again, each a second and a half,
// scaled and placed as photoCamera places one.
func turnCamera(t *testing.T, c config, dir, person string, front, turned int) string {
	t.Helper()
	out := filepath.Join(dir, fmt.Sprintf("%s-turn-%d-%d.y4m", person, front, turned))
	var args []string
	for _, n := range []int{front, turned, front} {
		photo := filepath.Join(c.faces, "people", person, fmt.Sprintf("%s%d.png", person, n))
		if _, err := os.Stat(photo); err != nil {
			t.Fatalf("face photo: %v", err)
		}
		args = append(args, "-loop", "1", "-t", "1.5", "-i", photo)
	}
	args = append(args, "-filter_complex",
		"[0][1][2]concat=n=3:v=1,scale=240:240,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=0x8a8f8c,format=yuv420p",
		"-r", "10", out)
	ffmpeg(t, args...)
	return out
}

// tiltedPrintCamera makes a y4m of one photo held up as a print and tilted: upright for a
// second and a half, then turned about its vertical axis (its right edge going away: closer
// to the left and shorter, ffmpeg's perspective filter) over two seconds, held there, on a
// white card.
func tiltedPrintCamera(t *testing.T, c config, dir, person string, n int) string {
	t.Helper()
	photo := filepath.Join(c.faces, "people", person, fmt.Sprintf("%s%d.png", person, n))
	out := filepath.Join(dir, fmt.Sprintf("%s%d-tilted.y4m", person, n))
	// k runs 0 → 1 from 1.5 s to 3.5 s (input frames at 25 a second); the right edge moves
	// in by 30 % of the width and shrinks by 20 % of the height.
	k := `min(1\,max(0\,(in-37)/50))`
	ffmpeg(t, "-loop", "1", "-t", "4.5", "-i", photo, "-vf",
		"scale=240:240,pad=260:260:10:10:color=white,"+
			fmt.Sprintf("perspective=x0=0:y0=0:x1=W-0.3*W*%[1]s:y1=0.1*H*%[1]s:x2=0:y2=H:x3=W-0.3*W*%[1]s:y3=H-0.1*H*%[1]s:sense=destination:eval=frame,", k)+
			"pad=640:480:(ow-iw)/2:(oh-ih)/2:color=0x8a8f8c,format=yuv420p",
		"-r", "10", out)
	return out
}

// TestLivenessPage signs in with --liveness on: the page shows the challenge, a camera of
// the person really turning (real photos at two poses) reaches the PIN step when the
// challenge asks for the turn it shows, and a tilted print of the person does not.
func TestLivenessPage(t *testing.T) {
	c := needConfig(t)
	srv := newServer(t, c, "--liveness=false")
	cams := t.TempDir()

	// Amy enrols without liveness (her enrolment camera shows photos at three poses), then the
	// server restarts with it.
	path := invite(t, srv.env(), srv.bin, amyName, amyEmail, "admin")
	enrollCam := newChrome(t, c, "amy-enroll", posesCamera(t, c, cams, "amy", 3, 4, 5), browserOpts{})
	enrollCam.setLang(srv.base, "en", "/login/password")
	enroll(enrollCam, c, srv.base, path, "")
	enrollCam.close()
	// A head turn takes longer than a still face: the attempt may look for 30 s.
	srv.flags = []string{"--liveness", "--face-time", "30s"}
	srv.restart()

	// amy1 is turned to her right (by-eye labels in apps/facelogin/liveness/sets_test.go).
	amy := newChrome(t, c, "amy-turn", turnCamera(t, c, cams, "amy", 2, 1), browserOpts{})
	amy.setLang(srv.base, "de", "/login/password")
	// The direction is drawn per attempt and the video turns one way: start attempts until
	// one asks for that way (each asks for it with probability 1/2).
	passed := false
	for try := 1; try <= liveTries && !passed; try++ {
		amy.do("open the login page", 20*time.Second, chromedp.Navigate(srv.base+"/login?start=face"))
		code := ""
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && code != "turn_left" && code != "turn_right" {
			code, _ = chromedpEval(amy, `document.getElementById("guidance").dataset.code`)
			time.Sleep(100 * time.Millisecond)
		}
		// The live region shows a change at most every 1.5 s.
		text := amy.waitText("#guidance", map[string]string{"turn_left": "nach links", "turn_right": "nach rechts"}[code], 5*time.Second)
		switch code {
		case "turn_left":
			t.Logf("attempt %d asks to turn left; the camera turns right: start another", try)
			if text != "Drehen Sie den Kopf langsam nach links und schauen Sie dann wieder in die Kamera." {
				t.Errorf("the German challenge reads %q", text)
			}
			continue
		case "turn_right":
			if text != "Drehen Sie den Kopf langsam nach rechts und schauen Sie dann wieder in die Kamera." {
				t.Errorf("the German challenge reads %q", text)
			}
		default:
			t.Fatalf("no challenge shown within 30 s: %s", amy.describe())
		}
		t.Logf("attempt %d asks to turn right, as the camera does", try)
		got := amy.loginOutcome(90 * time.Second)
		if got != "pin" {
			t.Fatalf("a real turn the asked way: login ended with %q, want the PIN step: %s", got, amy.describe())
		}
		passed = true
	}
	if !passed {
		t.Fatalf("%d attempts in a row asked to turn left", liveTries)
	}
	enterPIN(amy, amyPIN)
	logout(amy)
	amy.close()

	print := newChrome(t, c, "amy-print", tiltedPrintCamera(t, c, cams, "amy", 2), browserOpts{})
	print.setLang(srv.base, "en", "/login/password")
	for try := 1; try <= 2; try++ {
		print.do("open the login page", 20*time.Second, chromedp.Navigate(srv.base+"/login?start=face"))
		got := print.loginOutcome(90 * time.Second)
		t.Logf("tilted print, attempt %d: %s", try, got)
		if got == "pin" || got == "profile" {
			t.Fatalf("a tilted print of Amy reached %q", got)
		} else if got != "not-live" && got != "unknown" {
			t.Errorf("a tilted print of Amy: login ended with %q, want not-live (or unknown): %s", got, print.describe())
		}
	}
}
