{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "facelogin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; object names add "-api", "-web", ... (max 63). */}}
{{- define "facelogin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "facelogin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "facelogin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edgeline
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "facelogin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "facelogin.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's objects. */}}
{{- define "facelogin.componentLabels" -}}
{{ include "facelogin.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "facelogin.secretName" -}}
{{- default (printf "%s-secrets" (include "facelogin.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "facelogin.serviceAccountName" -}}
{{- include "facelogin.fullname" . }}
{{- end }}

{{/* The public URL users open. */}}
{{- define "facelogin.publicURL" -}}
{{- if .Values.publicURL }}{{ .Values.publicURL }}{{ else if .Values.host }}https://{{ .Values.host }}{{ end }}
{{- end }}

{{/*
image reference of a component: (dict "ctx" $ "component" "api" "image" .Values.api.image).
The repository has no default: the project publishes no image of its own.
*/}}
{{- define "facelogin.image" -}}
{{- $repo := required (printf "%s.image.repository is not set: publish the images (edgeline images push --repository REGISTRY/PATH, docs/images.md) and set it to REGISTRY/PATH/facelogin-%s, or set edgeline:appImageRepository in the stack config" .component .component) .image.repository }}
{{- $tag := default .ctx.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s@%s" $repo .image.digest }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{/*
Scheduling of one component from its placement preset, plus the component's
own nodeSelector, affinity (replaces the preset's) and tolerations (added).
Call with (dict "ctx" $ "component" "api" "values" .Values.api).

  cloud-only      never on an edge node: requires the node to lack the
                  node-role.kubernetes.io/edge label and does not tolerate the
                  edge taint.
  edge-preferred  tolerates edgeline.io/edge=true:NoSchedule and prefers nodes
                  labelled node-role.kubernetes.io/edge=true (and, if
                  placement.site is set, edgeline.io/site=<site>); falls back
                  to cloud nodes when no edge node fits.
  anywhere        tolerates the edge taint, no preference.
Every preset requires kubernetes.io/arch in .Values.architectures.
*/}}
{{- define "facelogin.scheduling" -}}
{{- $v := .values }}
{{- $preset := $v.placement.preset }}
{{- $archs := .ctx.Values.architectures }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
{{- if $v.affinity }}
  {{- toYaml $v.affinity | nindent 2 }}
{{- else }}
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: kubernetes.io/arch
              operator: In
              values: {{ toJson $archs }}
            {{- if eq $preset "cloud-only" }}
            - key: node-role.kubernetes.io/edge
              operator: DoesNotExist
            {{- end }}
    {{- if eq $preset "edge-preferred" }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        preference:
          matchExpressions:
            - key: node-role.kubernetes.io/edge
              operator: In
              values: ["true"]
      {{- with $v.placement.site }}
      - weight: 50
        preference:
          matchExpressions:
            - key: edgeline.io/site
              operator: In
              values: [{{ . | quote }}]
      {{- end }}
    {{- end }}
{{- end }}
{{- $tol := list }}
{{- if ne $preset "cloud-only" }}
{{- $tol = append $tol (dict "key" "edgeline.io/edge" "operator" "Equal" "value" "true" "effect" "NoSchedule") }}
{{- end }}
{{- $tol = concat $tol ($v.tolerations | default list) }}
{{- with $tol }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ $v.topologySpread.maxSkew }}
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "facelogin.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 8 }}
{{- end }}
{{- end }}

{{/* Pod-level security context shared by the app pods. */}}
{{- define "facelogin.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context shared by every container of the chart. */}}
{{- define "facelogin.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Egress rule to cluster DNS. */}}
{{- define "facelogin.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dnsNamespaceSelector | nindent 10 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}
