// Hybrid k3s clusters: a cloud VPS, Raspberry Pi agents over SSH, Helm releases.
package edgeline
