// Package match compares face descriptors: Euclidean distance on dlib's 128-dimensional
// descriptors, several enrolled samples per person. It narrows a probe to the candidate
// people within a distance threshold (the PIN decides among them), finds a person enrolling
// twice (threshold and a margin to everyone else) and lists look-alike pairs. It knows
// nothing of images or storage. The distance
// kernels (dist*.go) are Go, with an AVX2 version of the sketch scan on amd64.
package match

// Descriptor is dlib's 128-dimensional face descriptor. It is biometric data: never log it.
type Descriptor [128]float32

// UserID identifies an enrolled person, as the store numbers them.
type UserID int64

// Dim is the number of components of a Descriptor.
const Dim = len(Descriptor{})

// Calibrated defaults for NewIndex, chosen on the 8 people × 5 photos of testdata/faces with
// leave-one-out 1:N identification; docs/face-recognition.md holds the table behind them and
// TestCalibration keeps that table true.
const (
	// DefaultThreshold is the largest Euclidean distance to a person's nearest sample that
	// still counts as that person.
	DefaultThreshold float32 = 0.5
	// DefaultMargin is how much nearer the best person must be than the second-best person.
	DefaultMargin float32 = 0.06
)
