// Package match identifies a person from a face descriptor: Euclidean distance on dlib's
// 128-dimensional descriptors, several enrolled samples per person, a distance threshold and
// a margin to the second-best person. It is pure Go and knows nothing of images or storage.
package match

// Descriptor is dlib's 128-dimensional face descriptor. It is biometric data: never log it.
type Descriptor [128]float32

// UserID identifies an enrolled person, as the store numbers them.
type UserID int64
