package liveness

import "time"

// Check, for the tests, runs a challenge in direction dir issued at issued over a whole sequence of frames
// and returns the final verdict.
func (r Rule) Check(dir Direction, issued time.Time, frames []Observation) Verdict {
	c := &Challenge{Direction: dir, Issued: issued, rule: r, verdict: Verdict{Reason: Pending}}
	for _, o := range frames {
		if v := c.Add(o); v.Done() {
			return v
		}
	}
	return c.verdict
}

// Decide, for the tests, is what one frame whose motion against the first is m decides for
// a challenge in direction dir; planarity runs the pixel check (see Planarity).
func (r Rule) Decide(m Motion, dir Direction, planarity func() (float64, bool)) Reason {
	return r.decide(m, dir, planarity)
}

// Planarity, for the tests, runs the pixel check of o's face against first's.
func Planarity(first, o Observation) (float64, bool) {
	a, ok := canonical(&first)
	if !ok {
		return 0, false
	}
	b, ok := canonical(&o)
	if !ok {
		return 0, false
	}
	return planarity(a, b)
}
