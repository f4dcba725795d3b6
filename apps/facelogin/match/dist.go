package match

import "math"

// The distance kernels: exact distances in float32 and the sketch distances over
// half-precision rows (sqDistsHalf, in assembly on amd64: dist_amd64.s).

// Distance returns the Euclidean distance between a and b.
func Distance(a, b *Descriptor) float32 {
	return float32(math.Sqrt(float64(sqDist(a[:], b[:]))))
}

// sqDist returns the squared Euclidean distance between two vectors whose length is a
// multiple of 16.
func sqDist(a, b []float32) float32 {
	var s float32
	for k := 0; k+16 <= len(a); k += 16 {
		s += sqDist16((*[16]float32)(a[k:k+16]), (*[16]float32)(b[k:k+16]))
	}
	return s
}

// sqDistsHalfGo is the portable sqDistsHalf.
func sqDistsHalfGo(q *[half]float32, rows []uint16, out []float32) {
	var row [half]float32
	for i := range out {
		for k, h := range rows[i*half : (i+1)*half] {
			row[k] = fromHalf(h)
		}
		out[i] = sqDist(q[:], row[:])
	}
}

// sqDistBounded adds the squared distance of a and b (a multiple of 16 long) to s and
// returns it and true, or false as soon as the sum reaches bound.
func sqDistBounded(a, b []float32, s, bound float32) (float32, bool) {
	for k := 0; k+16 <= len(a); k += 16 {
		s += sqDist16((*[16]float32)(a[k:k+16]), (*[16]float32)(b[k:k+16]))
		if s >= bound {
			return s, false
		}
	}
	return s, true
}

// sqDist16 is the squared distance of 16 components, unrolled without bounds checks.
func sqDist16(a, b *[16]float32) float32 {
	d0, d1, d2, d3 := a[0]-b[0], a[1]-b[1], a[2]-b[2], a[3]-b[3]
	s0, s1, s2, s3 := d0*d0, d1*d1, d2*d2, d3*d3
	d0, d1, d2, d3 = a[4]-b[4], a[5]-b[5], a[6]-b[6], a[7]-b[7]
	s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	d0, d1, d2, d3 = a[8]-b[8], a[9]-b[9], a[10]-b[10], a[11]-b[11]
	s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	d0, d1, d2, d3 = a[12]-b[12], a[13]-b[13], a[14]-b[14], a[15]-b[15]
	s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	return (s0 + s1) + (s2 + s3)
}
