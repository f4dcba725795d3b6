package face

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
)

// limits bound what decode accepts.
type limits struct {
	maxBytes  int64
	maxPixels int
}

// frame is an input image made ready for dlib.
type frame struct {
	// data is the input, a JPEG if isJPEG, else a PNG.
	data   []byte
	isJPEG bool
	// jpeg is the RGB JPEG go-face decodes: the input itself when it already is one of a
	// usable size, otherwise a conversion of it (padded when the input is a tight crop).
	jpeg []byte
	// src is the decoded input, for measuring brightness (set by decodePixels).
	src image.Image
	// bounds are the input's bounds, origin at 0,0.
	bounds image.Rectangle
	// offset is where the input's origin lies inside the image behind jpeg.
	offset image.Point
	// shrink is the factor by which the image behind jpeg is smaller than the input.
	shrink int
	// passthrough reports that jpeg is the input itself.
	passthrough bool
}

// Images whose longer side is below padBelow are taken for tight crops around a face and get
// a border of half their longer side: dlib's HOG detector misses faces that fill the image.
const padBelow = 400

// Images whose longer side is over detectSide are shrunk by an integer factor for detection:
// HOG's cost grows with the pixel count, and a face filling a tenth of such an image is
// still well over the detector's 80 px.
const detectSide = 1600

// jpegQuality is the quality of converted frames: high enough not to move descriptors.
const jpegQuality = 92

var (
	jpegMagic = []byte{0xff, 0xd8, 0xff}
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
)

// decode checks a frame's size, format and dimensions before decoding it, then decodes it
// and converts it for go-face. It returns only *Error.
func decode(data []byte, lim limits) (*frame, *Error) {
	f, err := prepare(data, lim)
	if err == nil && f.passthrough {
		err = f.decodePixels()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// prepare checks a frame's size, format and dimensions from its header. A colour JPEG of a
// usable size goes to dlib as it is, and its pixels, needed only to measure brightness, are
// left to decodePixels, which Analyze runs while dlib works. Every other frame is decoded
// and converted here.
func prepare(data []byte, lim limits) (*frame, *Error) {
	if len(data) == 0 {
		return nil, reject(BadImage, "The image is empty; send a JPEG or PNG photo.")
	}
	if lim.maxBytes > 0 && int64(len(data)) > lim.maxBytes {
		return nil, reject(TooLarge, fmt.Sprintf("The image is larger than %d MB; send a smaller photo.", mib(lim.maxBytes)))
	}
	f := &frame{data: data, shrink: 1}
	switch {
	case bytes.HasPrefix(data, jpegMagic):
		f.isJPEG = true
	case bytes.HasPrefix(data, pngMagic):
	default:
		return nil, reject(UnsupportedFormat, "This image format is not supported; send a JPEG or PNG photo.")
	}
	var cfg image.Config
	var err error
	if f.isJPEG {
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	} else {
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return nil, badImage(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, reject(BadImage, "The image has no pixels; send a JPEG or PNG photo.")
	}
	if lim.maxPixels > 0 && (cfg.Width > lim.maxPixels/cfg.Height) {
		return nil, reject(TooLarge, fmt.Sprintf("The image has more than %.1f megapixels; send a smaller photo.", float64(lim.maxPixels)/1e6))
	}
	f.bounds = image.Rect(0, 0, cfg.Width, cfg.Height)
	long := max(cfg.Width, cfg.Height)
	if f.isJPEG && cfg.ColorModel == color.YCbCrModel && long >= padBelow && long <= detectSide {
		// Already an RGB JPEG of a usable size: dlib decodes it as it is.
		f.jpeg, f.passthrough = data, true
		return f, nil
	}
	if err := f.decodePixels(); err != nil {
		return nil, err
	}
	if err := f.convert(); err != nil {
		return nil, err
	}
	return f, nil
}

// decodePixels decodes f.data into f.src.
func (f *frame) decodePixels() *Error {
	var err error
	if f.isJPEG {
		f.src, err = jpeg.Decode(bytes.NewReader(f.data))
	} else {
		f.src, err = png.Decode(bytes.NewReader(f.data))
	}
	if err != nil {
		return badImage(err)
	}
	if b := f.src.Bounds(); b.Size() != f.bounds.Size() {
		return reject(BadImage, "The image's header does not match its pixels; send a JPEG or PNG photo.")
	}
	return nil
}

// convert encodes f.src as an RGB JPEG for dlib, with a border if it is a tight crop and
// shrunk if it is large.
func (f *frame) convert() *Error {
	b := f.src.Bounds()
	long := max(b.Dx(), b.Dy())
	if long > detectSide {
		f.shrink = (long + detectSide - 1) / detectSide
		f.offset = image.Point{}
		return f.encode(shrink(f.src, f.shrink))
	}
	f.shrink = 1
	var border int
	if long < padBelow {
		border = long / 2
	}
	canvas := image.NewRGBA(image.Rect(0, 0, b.Dx()+2*border, b.Dy()+2*border))
	// A mid-grey border: it adds no edges for the detector to find.
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.Gray{Y: 128}), image.Point{}, draw.Src)
	f.offset = image.Pt(border, border)
	draw.Draw(canvas, f.bounds.Add(f.offset), f.src, b.Min, draw.Over)
	return f.encode(canvas)
}

func (f *frame) encode(img *image.RGBA) *Error {
	var buf bytes.Buffer
	buf.Grow(img.Bounds().Dx() * img.Bounds().Dy() / 4)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return badImage(err)
	}
	f.jpeg, f.passthrough = buf.Bytes(), false
	return nil
}

// shrink returns src made k times smaller, each pixel the mean of a k×k block.
func shrink(src image.Image, k int) *image.RGBA {
	b := src.Bounds()
	full := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(full, full.Bounds(), src, b.Min, draw.Src)
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()/k, b.Dy()/k))
	n := uint32(k * k)
	for y := range dst.Rect.Dy() {
		for x := range dst.Rect.Dx() {
			var sum [4]uint32
			for yy := y * k; yy < (y+1)*k; yy++ {
				row := full.Pix[full.PixOffset(x*k, yy):]
				for i := range k * 4 {
					sum[i%4] += uint32(row[i])
				}
			}
			o := dst.PixOffset(x, y)
			for c := range 4 {
				dst.Pix[o+c] = uint8(sum[c] / n)
			}
		}
	}
	return dst
}

func badImage(err error) *Error {
	msg := "The image could not be read; it may be truncated or corrupt. Send a JPEG or PNG photo."
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "The image is cut off; send the complete JPEG or PNG photo."
	}
	return &Error{Reason: BadImage, Msg: msg, err: err}
}

func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// brightness returns the mean luma (0–255, BT.601) of img inside r.
func brightness(img image.Image, r image.Rectangle) float64 {
	r = r.Add(img.Bounds().Min).Intersect(img.Bounds())
	if r.Empty() {
		return 0
	}
	var sum uint64
	switch m := img.(type) {
	case *image.YCbCr:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := m.YOffset(r.Min.X, y)
			for _, v := range m.Y[i : i+r.Dx()] {
				sum += uint64(v)
			}
		}
	case *image.Gray:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := m.PixOffset(r.Min.X, y)
			for _, v := range m.Pix[i : i+r.Dx()] {
				sum += uint64(v)
			}
		}
	default:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				sum += uint64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
			}
		}
	}
	return float64(sum) / float64(r.Dx()*r.Dy())
}
