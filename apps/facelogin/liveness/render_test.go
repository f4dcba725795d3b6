package liveness_test

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// The fake camera: a 640×480 frame, a pinhole of focal length focal pixels. A picture held
// upright at distance focal fills as many frame pixels as it has, so the base frame of every
// sequence shows the photo at twice its size, as a webcam at arm's length would.
const (
	frameW, frameH = 640, 480
	focal          = 600.0
	photoScale     = 2  // a 150 px crop becomes a 300 px print
	margin         = 20 // white border of the print, print pixels
	jpegQuality    = 90 // what a browser sends
	badJPEG        = 25 // the jpeg attack's recompression
	blurRadius     = 3  // the blur attack's box radius
	printDistance  = focal
)

// pose is where a flat or slightly bent print is in front of the camera.
type pose struct {
	// Tilt turns the print by Tilt degrees about an axis in its plane at Axis degrees from
	// the frame's x axis (0: about the horizontal axis, 90: about the vertical one).
	Tilt, Axis float64
	// Roll turns the print in its own plane, degrees.
	Roll float64
	// Scale brings the print closer (>1) or takes it away (<1).
	Scale float64
	// DX, DY move the print sideways, frame pixels at the print's distance.
	DX, DY float64
	// Bend curves the print about its vertical axis: depth = Bend·u² print pixels.
	Bend float64
	// Blur and JPEG degrade the frame: a box blur radius, a recompression quality.
	Blur, JPEG int
}

// render draws photo as a print at p on a plain background and returns the frame as the
// camera would send it (JPEG).
func render(photo *image.Gray, p pose) ([]byte, error) {
	b := photo.Bounds()
	side := float64(max(b.Dx(), b.Dy())*photoScale + 2*margin)
	half := side / 2
	sample := func(u, v float64) (float64, bool) {
		x, y := u+half-margin, v+half-margin
		if u < -half || u >= half || v < -half || v >= half {
			return 0, false
		}
		px, py := x/photoScale, y/photoScale
		if px < 0 || py < 0 || px >= float64(b.Dx())-1 || py >= float64(b.Dy())-1 {
			return 245, true // the print's white border
		}
		return bilinear(photo, px, py), true
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	rot := rotation(p.Tilt, p.Axis, p.Roll)
	dist := printDistance / scale
	t := [3]float64{p.DX / focal * dist, p.DY / focal * dist, dist}
	n := [3]float64{rot[0][2], rot[1][2], rot[2][2]}
	nt := n[0]*t[0] + n[1]*t[1] + n[2]*t[2]
	out := image.NewGray(image.Rect(0, 0, frameW, frameH))
	for y := range frameH {
		for x := range frameW {
			d := [3]float64{(float64(x) - frameW/2) / focal, (float64(y) - frameH/2) / focal, 1}
			nd := n[0]*d[0] + n[1]*d[1] + n[2]*d[2]
			bg := 70 + float64(x)/16 + float64(y)/24
			if math.Abs(nd) < 1e-6 {
				out.Pix[y*out.Stride+x] = uint8(bg)
				continue
			}
			// Intersect the ray with the print; a bent print is found by moving the plane
			// to the depth of the point hit, a few times.
			var u, v, h float64
			for range 4 {
				lambda := (nt + h) / nd
				w := [3]float64{lambda*d[0] - t[0], lambda*d[1] - t[1], lambda*d[2] - t[2]}
				u = rot[0][0]*w[0] + rot[1][0]*w[1] + rot[2][0]*w[2]
				v = rot[0][1]*w[0] + rot[1][1]*w[1] + rot[2][1]*w[2]
				if p.Bend == 0 {
					break
				}
				h = p.Bend * u * u
			}
			g, ok := sample(u, v)
			if !ok {
				g = bg
			}
			out.Pix[y*out.Stride+x] = uint8(math.Round(math.Max(0, math.Min(255, g))))
		}
	}
	var img image.Image = out
	if p.Blur > 0 {
		img = boxBlur(out, p.Blur)
	}
	var buf bytes.Buffer
	if p.JPEG > 0 {
		// Recompress as a phone screenshot passed around would be, twice.
		for range 2 {
			buf.Reset()
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: p.JPEG}); err != nil {
				return nil, err
			}
			var err error
			if img, err = jpeg.Decode(bytes.NewReader(buf.Bytes())); err != nil {
				return nil, err
			}
		}
	}
	buf.Reset()
	if err := jpeg.Encode(&buf, toRGB(img), &jpeg.Options{Quality: jpegQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// rotation returns Rz(roll) then a turn by tilt about the in-plane axis at axis degrees, as
// the columns of a matrix taking print coordinates to camera coordinates.
func rotation(tilt, axis, roll float64) [3][3]float64 {
	rad := math.Pi / 180
	a := [3]float64{math.Cos(axis * rad), math.Sin(axis * rad), 0}
	c, s := math.Cos(tilt*rad), math.Sin(tilt*rad)
	var r [3][3]float64
	// Rodrigues' formula for the turn about a.
	k := [3][3]float64{{0, -a[2], a[1]}, {a[2], 0, -a[0]}, {-a[1], a[0], 0}}
	for i := range 3 {
		for j := range 3 {
			id := 0.0
			if i == j {
				id = 1
			}
			var kk float64
			for m := range 3 {
				kk += k[i][m] * k[m][j]
			}
			r[i][j] = id + s*k[i][j] + (1-c)*kk
		}
	}
	cr, sr := math.Cos(roll*rad), math.Sin(roll*rad)
	z := [3][3]float64{{cr, -sr, 0}, {sr, cr, 0}, {0, 0, 1}}
	var out [3][3]float64
	for i := range 3 {
		for j := range 3 {
			for m := range 3 {
				out[i][j] += r[i][m] * z[m][j]
			}
		}
	}
	return out
}

func bilinear(img *image.Gray, x, y float64) float64 {
	x0, y0 := int(x), int(y)
	fx, fy := x-float64(x0), y-float64(y0)
	at := func(x, y int) float64 { return float64(img.Pix[y*img.Stride+x]) }
	return at(x0, y0)*(1-fx)*(1-fy) + at(x0+1, y0)*fx*(1-fy) + at(x0, y0+1)*(1-fx)*fy + at(x0+1, y0+1)*fx*fy
}

func boxBlur(src *image.Gray, r int) *image.Gray {
	b := src.Bounds()
	out := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var sum, n int
			for yy := max(b.Min.Y, y-r); yy <= min(b.Max.Y-1, y+r); yy++ {
				for xx := max(b.Min.X, x-r); xx <= min(b.Max.X-1, x+r); xx++ {
					sum += int(src.Pix[yy*src.Stride+xx])
					n++
				}
			}
			out.Pix[y*out.Stride+x] = uint8(sum / n)
		}
	}
	return out
}

// toRGB copies img into RGBA, so the JPEG is a colour one like a browser's.
func toRGB(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, img.At(x, y))
		}
	}
	return out
}

// loadPhoto reads one photo of testdata/faces/people as grey pixels from 0,0.
func loadPhoto(facesDir, name string) (*image.Gray, error) {
	person := name[:len(name)-1]
	f, err := os.Open(filepath.Join(facesDir, "people", person, name+".png"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	b := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(g, g.Bounds(), img, b.Min, draw.Src)
	return g, nil
}
