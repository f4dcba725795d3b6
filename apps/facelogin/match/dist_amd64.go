package match

import "golang.org/x/sys/cpu"

// sqDistsAVX2 is sqDists in AVX2 and FMA instructions (dist_amd64.s).
//
//go:noescape
func sqDistsAVX2(q *[half]float32, rows *float32, n int, out *float32)

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// sqDists sets out[i] to the squared distance between q and the i-th half row of rows, for
// every i < len(out).
func sqDists(q *[half]float32, rows []float32, out []float32) {
	if !haveAVX2 {
		sqDistsGo(q, rows, out)
		return
	}
	if len(out) == 0 {
		return
	}
	_ = rows[len(out)*half-1]
	sqDistsAVX2(q, &rows[0], len(out), &out[0])
}
