//go:build !amd64

package match

// sqDists sets out[i] to the squared distance between q and the i-th half row of rows, for
// every i < len(out).
func sqDists(q *[half]float32, rows []float32, out []float32) { sqDistsGo(q, rows, out) }
