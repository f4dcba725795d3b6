// Package images holds the Dockerfiles of the face-login app (api and web). There is no
// container engine on the build machines, so this test checks the
// Dockerfiles against hadolint-style rules and against the rest of the
// repository (the chart's user id and ports, the models' checksums, the
// libraries go-face links) instead of building them.
package images
