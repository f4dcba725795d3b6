package face

import (
	"image"
	"image/color"
)

// The last step of Analyze: whether the one face found is good enough to describe someone.

// judge rejects a face too small or too dark for a reliable descriptor; nil means it is good.
func (e *Engine) judge(f Face) *Error {
	if f.Box.Dx() < e.opts.MinFaceSize {
		return reject(TooSmall, "Your face is too small in the picture; move closer to the camera.")
	}
	if f.Brightness < e.opts.MinBrightness {
		return reject(TooDark, "Your face is too dark; turn towards the light.")
	}
	return nil
}

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
