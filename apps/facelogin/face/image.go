package face

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
)

// From bytes to what dlib reads: inspect looks at an image's header only (size, format,
// dimensions, PNG depth and interlacing) and is all that runs before a recognizer is taken;
// load, run while the caller holds one, decodes and converts the pixels when dlib cannot
// take the bytes as they are.

// limits bound what inspect accepts.
type limits struct {
	maxBytes  int64
	maxPixels int
}

// frame is an input image made ready for dlib.
type frame struct {
	// data is the input, a JPEG if isJPEG, else a PNG.
	data   []byte
	isJPEG bool
	// model is the colour model the header declares.
	model color.Model
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

// inspect checks an image's size, format and dimensions from its header, without decoding
// a pixel. It returns only *Error.
func inspect(data []byte, lim limits) (*frame, *Error) {
	if len(data) == 0 {
		return nil, reject(BadImage, "The image is empty; send a JPEG or PNG photo.")
	}
	if lim.maxBytes > 0 && int64(len(data)) > lim.maxBytes {
		return nil, reject(TooLarge, fmt.Sprintf("The image is larger than %d MB; send a smaller photo.", mib(lim.maxBytes)))
	}
	f := &frame{data: data, shrink: 1}
	var cfg image.Config
	var err error
	switch {
	case bytes.HasPrefix(data, jpegMagic):
		f.isJPEG = true
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case bytes.HasPrefix(data, pngMagic):
		if rerr := checkPNGHeader(data); rerr != nil {
			return nil, rerr
		}
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	default:
		return nil, reject(UnsupportedFormat, "This image format is not supported; send a JPEG or PNG photo.")
	}
	if err != nil {
		return nil, badImage(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, reject(BadImage, "The image has no pixels; send a JPEG or PNG photo.")
	}
	if lim.maxPixels > 0 && cfg.Width > lim.maxPixels/cfg.Height {
		return nil, reject(TooLarge, fmt.Sprintf("The image has more than %.1f megapixels; send a smaller photo.", float64(lim.maxPixels)/1e6))
	}
	f.bounds = image.Rect(0, 0, cfg.Width, cfg.Height)
	f.model = cfg.ColorModel
	return f, nil
}

// checkPNGHeader refuses, from the IHDR chunk, the PNGs whose decoding costs a multiple of
// what an 8-bit camera picture of the same size costs: 16 bits per sample (Go decodes them
// to 8 bytes a pixel) and Adam7 interlacing (decoded pass by pass into images of their
// own). No camera or browser canvas produces either.
func checkPNGHeader(data []byte) *Error {
	// Signature (8), IHDR length (4) and type (4), then width, height, bit depth, colour
	// type, compression, filter and interlace method.
	const ihdr = 8 + 4 + 4
	if len(data) < ihdr+13 || binary.BigEndian.Uint32(data[8:]) != 13 || string(data[12:16]) != "IHDR" {
		return reject(BadImage, "The PNG image has no valid header; send the complete JPEG or PNG photo.")
	}
	if depth := data[ihdr+8]; depth == 16 {
		return reject(UnsupportedFormat, "16-bit PNG images are not supported; send an 8-bit PNG or a JPEG.")
	}
	if interlace := data[ihdr+12]; interlace != 0 {
		return reject(UnsupportedFormat, "Interlaced PNG images are not supported; send a non-interlaced PNG or a JPEG.")
	}
	return nil
}

// load makes f ready for dlib. A colour JPEG of a usable size goes to dlib as it is, and its
// pixels, needed only to measure brightness, are left to decodePixels, which Analyze runs
// while dlib works. Every other image is decoded and converted here.
func (f *frame) load() *Error {
	long := max(f.bounds.Dx(), f.bounds.Dy())
	if f.isJPEG && f.model == color.YCbCrModel && long >= padBelow && long <= detectSide {
		f.jpeg, f.passthrough = f.data, true
		return nil
	}
	if err := f.decodePixels(); err != nil {
		return err
	}
	return f.convert()
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

// shrink returns src made k times smaller, each pixel the mean of a k×k block. It converts
// src to RGBA one band of k rows at a time, so it needs no full-size copy.
func shrink(src image.Image, k int) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()/k, b.Dy()/k))
	band := image.NewRGBA(image.Rect(0, 0, b.Dx(), k))
	n := uint32(k * k)
	for y := range dst.Rect.Dy() {
		draw.Draw(band, band.Rect, src, image.Pt(b.Min.X, b.Min.Y+y*k), draw.Src)
		for x := range dst.Rect.Dx() {
			var sum [4]uint32
			for yy := range k {
				row := band.Pix[band.PixOffset(x*k, yy):]
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

// patch returns the grey pixels of img inside r (bounds-relative, origin at 0,0) shrunk by
// the smallest integer factor that makes them at most side pixels wide, each pixel the mean
// of a block, and the rectangle of img they show.
func patch(img image.Image, r image.Rectangle, side int) (*image.Gray, image.Rectangle) {
	k := max(1, (r.Dx()+side-1)/side)
	out := image.NewGray(image.Rect(0, 0, r.Dx()/k, r.Dy()/k))
	shown := image.Rectangle{Min: r.Min, Max: r.Min.Add(out.Rect.Size().Mul(k))}
	o := img.Bounds().Min
	luma := func(x, y int) uint32 { return uint32(color.GrayModel.Convert(img.At(o.X+x, o.Y+y)).(color.Gray).Y) }
	switch m := img.(type) {
	case *image.YCbCr:
		luma = func(x, y int) uint32 { return uint32(m.Y[m.YOffset(o.X+x, o.Y+y)]) }
	case *image.Gray:
		luma = func(x, y int) uint32 { return uint32(m.Pix[m.PixOffset(o.X+x, o.Y+y)]) }
	}
	n := uint32(k * k)
	for y := range out.Rect.Dy() {
		for x := range out.Rect.Dx() {
			var sum uint32
			for yy := range k {
				for xx := range k {
					sum += luma(r.Min.X+x*k+xx, r.Min.Y+y*k+yy)
				}
			}
			out.Pix[y*out.Stride+x] = uint8(sum / n)
		}
	}
	return out, shown
}
