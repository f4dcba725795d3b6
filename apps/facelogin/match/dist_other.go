//go:build !amd64

package match

// sqDistsHalf sets out[i] to the squared distance between q and the i-th row of half
// precision values in rows, for every i < len(out).
func sqDistsHalf(q *[half]float32, rows []uint16, out []float32) { sqDistsHalfGo(q, rows, out) }
