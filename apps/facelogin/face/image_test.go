package face

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"
)

// testLimits are small enough that the fuzzer meets them.
var testLimits = limits{maxBytes: 1 << 20, maxPixels: 1 << 20}

// load runs what Analyze runs on an image before and around dlib: the header check, then
// decoding and conversion, and the decoding of a passed-through JPEG's pixels.
func load(data []byte, lim limits) (*frame, *Error) {
	f, err := inspect(data, lim)
	if err == nil {
		err = f.load()
	}
	if err == nil && f.passthrough {
		err = f.decodePixels()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gradient is a small test picture.
func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

// pngHeader returns a PNG whose IHDR claims w×h pixels, followed by the chunks of body (an
// encoded PNG whose own IHDR is skipped), so the header lies about the real data.
func pngHeader(w, h uint32, body []byte) []byte {
	var out bytes.Buffer
	out.Write(pngMagic)
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit grey
	writeChunk(&out, "IHDR", ihdr)
	if body != nil {
		out.Write(body[8+25:]) // skip magic and the 25-byte IHDR chunk
	}
	return out.Bytes()
}

func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}

// zeroPNG is a valid PNG of w×h black pixels of the given bit depth and colour type (6:
// RGBA, 0: grey), written row by row so that no w×h image is ever held in memory; zlib
// squeezes the zero rows about 1000:1. interlace sets the IHDR's interlace method without
// laying the data out in Adam7 passes: the header check must refuse it before decoding.
func zeroPNG(t testing.TB, w, h int, depth, colorType, interlace byte) []byte {
	t.Helper()
	var out bytes.Buffer
	out.Write(pngMagic)
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9], ihdr[12] = depth, colorType, interlace
	writeChunk(&out, "IHDR", ihdr)
	samples := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colorType]
	row := make([]byte, 1+w*samples*int(depth)/8) // filter byte 0, then zero samples
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	for range h {
		if _, err := zw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeChunk(&out, "IDAT", idat.Bytes())
	writeChunk(&out, "IEND", nil)
	return out.Bytes()
}

// pngBomb is a valid, tiny PNG of a huge all-black image: zlib squeezes its pixels ≈ 1000:1.
func pngBomb(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jpegHeader50MP is the first bytes of a 8660×5776 (50 MP) JPEG: every segment up to the
// start of the scan, and none of the compressed data.
func jpegHeader50MP(t testing.TB) []byte { return jpegHeaderOf(t, 8660, 5776) }

// jpegHeaderOf is the first bytes of a w×h JPEG, up to the start of the scan.
func jpegHeaderOf(t testing.TB, w, h int) []byte {
	t.Helper()
	small := encodeJPEG(t, gradient(16, 16))
	sof := bytes.Index(small, []byte{0xff, 0xc0})
	sos := bytes.Index(small, []byte{0xff, 0xda})
	if sof < 0 || sos < 0 {
		t.Fatal("no SOF0 or SOS in encoded JPEG")
	}
	out := bytes.Clone(small[:sos+2+int(binary.BigEndian.Uint16(small[sos+2:]))])
	binary.BigEndian.PutUint16(out[sof+5:], uint16(h))
	binary.BigEndian.PutUint16(out[sof+7:], uint16(w))
	return out
}

func TestImageRejects(t *testing.T) {
	good := encodeJPEG(t, gradient(500, 400))
	goodPNG := encodePNG(t, gradient(64, 64))
	corruptPNG := bytes.Clone(goodPNG)
	corruptPNG[len(corruptPNG)/2] ^= 0xff // breaks the IDAT checksum
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, gradient(8, 8), nil); err != nil {
		t.Fatal(err)
	}
	bomb := pngBomb(t, 8000, 8000) // 64 MP in ≈ 60 KB
	// The attack of issue 12: 99 KB on the wire, 4000×2990 16-bit RGBA, which Go decodes
	// to 96 MB and converts to 48 MB more; the pixel cap alone would let it through.
	deep := zeroPNG(t, 4000, 2990, 16, 6, 0)
	roomy := limits{maxBytes: testLimits.maxBytes, maxPixels: DefaultMaxPixels}
	tests := []struct {
		name string
		data []byte
		lim  limits
		want Reason
	}{
		{"zero bytes", nil, testLimits, BadImage},
		{"truncated JPEG", good[:len(good)/2], testLimits, BadImage},
		{"JPEG header only", good[:20], testLimits, BadImage},
		{"corrupt PNG", corruptPNG, testLimits, BadImage},
		{"PNG without data", pngHeader(64, 64, nil), testLimits, BadImage},
		{"PNG bomb", bomb, testLimits, TooLarge},
		{"16-bit PNG", encodePNG(t, image.NewRGBA64(image.Rect(0, 0, 64, 64))), testLimits, UnsupportedFormat},
		{"16-bit grey PNG", encodePNG(t, image.NewGray16(image.Rect(0, 0, 64, 64))), testLimits, UnsupportedFormat},
		{"interlaced PNG", zeroPNG(t, 64, 64, 8, 6, 1), testLimits, UnsupportedFormat},
		{"PNG without IHDR", append(bytes.Clone(pngMagic), "\x00\x00\x00\x0dIDAT"...), testLimits, BadImage},
		{"50 MP JPEG header", jpegHeader50MP(t), testLimits, TooLarge},
		{"over the byte cap", append(bytes.Clone(good), make([]byte, testLimits.maxBytes)...), testLimits, TooLarge},
		{"GIF", gifBuf.Bytes(), testLimits, UnsupportedFormat},
		{"text", []byte("hello, this is not an image"), testLimits, UnsupportedFormat},
		{"BMP", []byte("BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"), testLimits, UnsupportedFormat},
		{"4000x2990 16-bit RGBA PNG under the pixel cap", deep, roomy, UnsupportedFormat},
		{"frame over 1920x1080", jpegHeaderOf(t, 1920, 1082), limits{maxPixels: DefaultMaxFramePixels}, TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.data, tt.lim)
			if err == nil {
				t.Fatalf("load accepted %s", tt.name)
			}
			if err.Reason != tt.want {
				t.Fatalf("reason %q (%v), want %q", err.Reason, err, tt.want)
			}
			if err.Msg == "" || err.Reason.Status() < 400 || err.Reason.Status() > 499 {
				t.Fatalf("error %#v: want a message and a 4xx status", err)
			}
		})
	}
	if len(bomb) > 200<<10 || len(deep) > 200<<10 {
		t.Errorf("PNG bombs of %d and %d bytes; the test wants ones that are small on the wire", len(bomb), len(deep))
	}
}

// TestInspectDecodesNothing checks that the header check, all that runs before a
// recognizer is taken, allocates next to nothing for a 12 MP PNG it accepts.
func TestInspectDecodesNothing(t *testing.T) {
	big := zeroPNG(t, 4000, 2990, 8, 6, 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := inspect(big, limits{maxPixels: DefaultMaxPixels})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if f.bounds != image.Rect(0, 0, 4000, 2990) {
		t.Fatalf("bounds %v", f.bounds)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("inspect allocated %d bytes; the header check must not decode pixels", n)
	}
}

func TestImageConverts(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 150, 150))
	for i := range grey.Pix {
		grey.Pix[i] = 90
	}
	big := gradient(640, 480)
	tests := []struct {
		name        string
		data        []byte
		passthrough bool
		border      int
		light       float64
	}{
		{"grey PNG crop gets a border", encodePNG(t, grey), false, 75, 90},
		{"grey JPEG is converted to RGB", encodeJPEG(t, image.NewGray(image.Rect(0, 0, 640, 480))), false, 0, 0},
		{"RGB JPEG frame goes through", encodeJPEG(t, big), true, 0, -1},
		{"RGBA PNG frame is converted", encodePNG(t, big), false, 0, -1},
		{"large JPEG is shrunk", encodeJPEG(t, gradient(1700, 500)), false, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := load(tt.data, testLimits)
			if err != nil {
				t.Fatal(err)
			}
			if f.passthrough != tt.passthrough {
				t.Errorf("passthrough %v, want %v", f.passthrough, tt.passthrough)
			}
			if f.offset != image.Pt(tt.border, tt.border) {
				t.Errorf("offset %v, want a border of %d", f.offset, tt.border)
			}
			// What dlib gets must be a 3-component (RGB) JPEG of the padded size.
			img, err2 := jpeg.Decode(bytes.NewReader(f.jpeg))
			if err2 != nil {
				t.Fatal(err2)
			}
			if _, ok := img.(*image.YCbCr); !ok {
				t.Errorf("dlib gets a %T JPEG, want YCbCr (RGB)", img)
			}
			want := f.bounds.Inset(-tt.border).Size().Div(f.shrink)
			if got := img.Bounds().Size(); got != want {
				t.Errorf("dlib image %v, want %v", got, want)
			}
			if tt.light >= 0 {
				if got := brightness(f.src, f.bounds); got < tt.light-1 || got > tt.light+1 {
					t.Errorf("brightness %.1f, want %.0f", got, tt.light)
				}
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(encodeJPEG(f, gradient(32, 24)))
	f.Add(encodePNG(f, gradient(20, 30)))
	f.Add(encodePNG(f, image.NewGray(image.Rect(0, 0, 40, 40))))
	f.Add(jpegHeader50MP(f))
	f.Add(pngHeader(1<<20, 1<<20, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := load(data, testLimits)
		if err != nil {
			if err.Reason.Status()/100 != 4 || err.Msg == "" {
				t.Fatalf("rejection without a 4xx reason and message: %#v", err)
			}
			return
		}
		if int64(len(data)) > testLimits.maxBytes {
			t.Fatalf("accepted %d bytes over the %d cap", len(data), testLimits.maxBytes)
		}
		if px := fr.bounds.Dx() * fr.bounds.Dy(); px > testLimits.maxPixels || px == 0 {
			t.Fatalf("accepted a %v image against a cap of %d pixels", fr.bounds, testLimits.maxPixels)
		}
		if !bytes.HasPrefix(fr.jpeg, jpegMagic) {
			t.Fatal("dlib would get something other than a JPEG")
		}
	})
}
