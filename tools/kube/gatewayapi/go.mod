// Module gatewayapi pins the Gateway API release whose CRDs (HTTPRoute) the
// test control plane installs, so that the chart's HTTPRoute is validated by
// the real schema. Only the module's YAML is used; mk/kube.mk copies it.
module github.com/edgeline/edgeline/tools/kube/gatewayapi

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
