// Package deptest holds the repository's dependency wall: a test that keeps go-face (cgo)
// inside apps/facelogin/face and the provisioning stack (Pulumi, Helm, Kubernetes clients,
// Terraform) out of the face-login app, so the app builds small and stays portable.
package deptest
