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
