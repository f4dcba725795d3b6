package match

import "golang.org/x/sys/cpu"

// sqDistsHalfAVX2 is sqDistsHalf in AVX2, FMA and F16C instructions (dist_amd64.s).
//
//go:noescape
func sqDistsHalfAVX2(q *[half]float32, rows *uint16, n int, out *float32)

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// sqDistsHalf sets out[i] to the squared distance between q and the i-th row of half
// precision values in rows, for every i < len(out).
func sqDistsHalf(q *[half]float32, rows []uint16, out []float32) {
	if !haveAVX2 {
		sqDistsHalfGo(q, rows, out)
		return
	}
	if len(out) == 0 {
		return
	}
	_ = rows[len(out)*half-1]
	sqDistsHalfAVX2(q, &rows[0], len(out), &out[0])
}
