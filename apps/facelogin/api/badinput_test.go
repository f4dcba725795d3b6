package api_test

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/store"
)

// TestBadInput sends what a broken or hostile client sends and checks each gets a clear
// 4xx answer and nothing enrolled is lost.
func TestBadInput(t *testing.T) {
	r := newReplica(t, "sqlite:"+t.TempDir()+"/f.db", newSecrets(t), api.Options{})
	c, id := enroll(t, r, amy, store.RoleAdmin)
	good := photo(t, "amy", 4)

	bomb := pngOfSize(t, 20000, 20000) // 400 MP of grey in a few hundred KB
	fifty := pngOfSize(t, 8660, 5774)  // 50 MP
	if len(bomb) > 2<<20 || len(fifty) > 2<<20 {
		t.Fatalf("test PNGs are %d and %d bytes; they must fit the frame limit to reach the pixel check", len(bomb), len(fifty))
	}
	multi := func(images ...[]byte) (string, []byte) { return samples(t, images...) }

	type tc struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
		code                      string
	}
	cases := []tc{
		{"zero-byte frame", "POST", "/api/face/check", "image/jpeg", nil, 400, "bad_image"},
		{"truncated JPEG", "POST", "/api/face/check", "image/jpeg", good[:len(good)/2], 400, "bad_image"},
		{"corrupt JPEG", "POST", "/api/face/check", "image/jpeg", corrupt(good), 400, "bad_image"},
		{"PNG bomb", "POST", "/api/face/check", "image/png", bomb, 413, "too_large"},
		{"50 MP image", "POST", "/api/face/check", "image/png", fifty, 413, "too_large"},
		{"not an image", "POST", "/api/face/check", "image/jpeg", []byte("GIF89a...."), 415, "unsupported_format"},
		{"wrong content type", "POST", "/api/face/check", "text/plain", good, 415, "unsupported_media_type"},
		{"oversize body", "POST", "/api/face/check", "image/jpeg", make([]byte, api.DefaultMaxFrameBytes+1), 413, "too_large"},
		{"JSON as text/plain", "PUT", "/api/me/pin", "text/plain", []byte(`{"current":"471108","pin":"808142"}`), 415, "unsupported_media_type"},
		{"unknown JSON field", "PUT", "/api/me/pin", "application/json", []byte(`{"current":"471108","pin":"808142","admin":true}`), 400, "bad_request"},
		{"malformed JSON", "PUT", "/api/me/pin", "application/json", []byte(`{"current":`), 400, "bad_request"},
		{"two JSON values", "PUT", "/api/me/pin", "application/json", []byte(`{"current":"471108","pin":"808142"}{}`), 400, "bad_request"},
		{"oversize JSON", "POST", "/api/admin/invites", "application/json", []byte(`{"name":"` + strings.Repeat("a", 70<<10) + `"}`), 413, "too_large"},
		{"weak PIN", "PUT", "/api/me/pin", "application/json", []byte(`{"current":"471108","pin":"1234"}`), 400, "bad_pin"},
		{"unknown endpoint", "GET", "/api/nothing", "", nil, 404, "not_found"},
		{"known path, wrong method", "PATCH", "/api/me", "application/json", []byte(`{"name":"x"}`), 405, "method_not_allowed"},
		{"a list as the body", "PUT", "/api/me/pin", "application/json", []byte(`[1,2]`), 400, "bad_request"},
		{"a number for a string", "PUT", "/api/me/pin", "application/json", []byte(`{"current":471108,"pin":"808142"}`), 400, "bad_request"},
		{"name with a right-to-left override", "POST", "/api/admin/invites", "application/json", []byte(`{"name":"Amy \u202egnp.exe","email":"x@example.com"}`), 400, "bad_name"},
		{"name with a newline", "POST", "/api/admin/invites", "application/json", []byte(`{"name":"Amy\nAdmin: yes","email":"x@example.com"}`), 400, "bad_name"},
		{"name with NUL", "POST", "/api/admin/invites", "application/json", []byte(`{"name":"Amy\u0000","email":"x@example.com"}`), 400, "bad_name"},
		{"name of 201 characters", "POST", "/api/admin/invites", "application/json", []byte(`{"name":"` + strings.Repeat("é", 201) + `","email":"x@example.com"}`), 400, "bad_name"},
		{"name of 200 two-byte characters", "POST", "/api/admin/invites", "application/json", []byte(`{"name":"` + strings.Repeat("é", 200) + `","email":"long@example.com"}`), 201, ""},
		{"bad user id", "DELETE", "/api/admin/users/abc", "", nil, 400, "bad_request"},
		{"enrollment as JSON", "PUT", "/api/me/face", "application/json", []byte(`{}`), 415, "unsupported_media_type"},
	}
	ct, body := multi(good, good[:len(good)/3], good)
	cases = append(cases, tc{"truncated sample", "PUT", "/api/me/face", ct, body, 400, "bad_image"})
	ct, body = multi(good, good, good, good, good, good)
	cases = append(cases, tc{"six samples", "PUT", "/api/me/face", ct, body, 400, "too_many_samples"})
	// Two people as far apart as most are (docs/face-recognition.md: 5.7 % of pairs of
	// different people lie within the bound and pass, the price of never refusing one person).
	ct, body = multi(good, photo(t, "sheldon", 1), good)
	cases = append(cases, tc{"samples of two people", "PUT", "/api/me/face", ct, body, 422, "samples_differ"})
	ct, body = multi(good, groupPhoto(t), good)
	cases = append(cases, tc{"group photo as a sample", "PUT", "/api/me/face", ct, body, 422, "many_faces"})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := c.do(tc.method, tc.path, tc.ctype, tc.body)
			want(t, tc.name, res, tc.status, tc.code)
			// Errors speak JSON and English, never Go.
			for _, goism := range []string{"struct", "int64", "float64", "map[", "[]", "*api", "json:", "reflect"} {
				if res.status >= 400 && strings.Contains(string(res.body), goism) {
					t.Errorf("the answer names a Go type (%q): %s", goism, res.body)
				}
			}
			if res.status == http.StatusMethodNotAllowed && res.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("405 with Allow %q, want %q", res.header.Get("Allow"), "GET, HEAD")
			}
		})
	}

	// Nothing was lost: Amy's three samples are still there and she is still recognised.
	if got, err := r.st.Samples(t.Context(), id); err != nil || len(got) != 3 {
		t.Fatalf("Amy has %d samples after the bad input (%v), want 3", len(got), err)
	}
	if got := last(r.client().faceLogin(good)); got.Status != "recognized" {
		t.Fatalf("Amy after the bad input: %+v", got)
	}
	want(t, "good frame checked", c.do("POST", "/api/face/check", "image/jpeg", good), http.StatusOK, "")

	// Someone else's face cannot be enrolled by another account, and the answer does not
	// say whose it is.
	penny, _ := enroll(t, r, penny, store.RoleUser)
	ct, body = multi(photo(t, "amy", 1), photo(t, "amy", 2), photo(t, "amy", 3))
	res := penny.do("PUT", "/api/me/face", ct, body)
	want(t, "Amy's face for Penny's account", res, http.StatusConflict, "duplicate")
	res = penny.do("POST", "/api/face/check", "image/jpeg", photo(t, "amy", 1))
	if !strings.Contains(string(res.body), `"code":"duplicate"`) {
		t.Errorf("checking Amy's enrolled photo from Penny's account: %s, want duplicate", res.body)
	}
	for _, leak := range []string{"Amy", "amy@", "Fowler"} {
		if strings.Contains(string(res.body), leak) {
			t.Errorf("the duplicate answer names the other account: %s", res.body)
		}
	}
}

// groupPhoto returns a photo with several people in it.
func groupPhoto(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(os.Getenv("EDGELINE_FACES"), "groups", "bbt1.jpg"))
	if err != nil {
		t.Skipf("group photo: %v (set EDGELINE_FACES to testdata/faces)", err)
	}
	return b
}

// corrupt flips bytes in the middle of the entropy-coded data of a JPEG.
func corrupt(jpg []byte) []byte {
	b := bytes.Clone(jpg)
	for i := len(b) / 3; i < len(b)/3+200 && i < len(b); i++ {
		b[i] = 0xff
	}
	return b
}

// blankJPEG is a uniform grey frame: a camera pointed at a wall.
func blankJPEG(t *testing.T, w, h int, y uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = y
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, nil)
	return buf.Bytes()
}

// darken returns a JPEG with every pixel at a tenth of its brightness.
func darken(t *testing.T, jpg []byte) []byte {
	t.Helper()
	src, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	dst := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := src.At(x, y).RGBA()
			dst.Set(x, y, color.RGBA{uint8(r >> 8 / 10), uint8(g >> 8 / 10), uint8(bl >> 8 / 10), 255})
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 95})
	return buf.Bytes()
}

// pngOfSize writes a valid grey PNG of w×h pixels, streaming the rows through zlib so
// the test never holds the image: a decompression bomb when w×h is large.
func pngOfSize(t *testing.T, w, h int) []byte {
	t.Helper()
	return flatPNG(t, w, h, 8, 0)
}

// flatPNG writes a valid PNG of w×h mid-grey pixels of the given bit depth and colour type
// (0 grey, 2 RGB, 6 RGBA) as pngOfSize does.
func flatPNG(t *testing.T, w, h int, depth, colorType byte) []byte {
	t.Helper()
	channels := map[byte]int{0: 1, 2: 3, 6: 4}[colorType]
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.Write(&out, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = depth, colorType
	chunk("IHDR", ihdr)
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	bw := bufio.NewWriterSize(zw, 1<<16)
	row := make([]byte, w*channels*int(depth)/8+1) // filter byte 0, then the samples
	for i := 1; i < len(row); i++ {
		row[i] = 128
	}
	for range h {
		bw.Write(row)
	}
	bw.Flush()
	zw.Close()
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}
