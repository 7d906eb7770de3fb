{{- define "rollout-runner.name" -}}rollout-runner-controller{{- end }}

{{- define "rollout-runner.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: rollout-runner-controller
app.kubernetes.io/part-of: rollout-runner
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "rollout-runner.selector" -}}
app.kubernetes.io/name: rollout-runner-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rollout-runner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rollout-runner.name" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaced rules, verbatim the list `rollout-runner install` prints: the Rust test */}}
{{/* controller_install compares this block with install's, so keep it plain YAML. What is rendered */}}
{{/* is "rollout-runner.namespacedRules": these, filtered by rbac.routers, plus */}}
{{/* rbac.additionalRules. */}}
{{- define "rollout-runner.rules" }}
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch, update, patch]
- apiGroups: [argoproj.io]
  resources: [rollouts/status, analysisruns/status, experiments/status]
  verbs: [get, update, patch]
- apiGroups: [argoproj.io]
  resources: [analysisruns, experiments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [argoproj.io]
  resources: [analysistemplates]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, update, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [get, list, watch, update, patch]
- apiGroups: [split.smi-spec.io]
  resources: [trafficsplits]
  verbs: [get, create, update, patch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, update, patch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [create]
- apiGroups: [gateway.networking.k8s.io]
  resources: [grpcroutes]
  verbs: [get, list, watch, update, patch]
- apiGroups: [traefik.io, traefik.containo.us]
  resources: [traefikservices]
  verbs: [get, list, watch, update, patch]
{{- end }}

{{/* The routers (rbac.routers keys) a rule serves, by API group; none: always granted. */}}
{{- define "rollout-runner.routersOf" -}}
{{- $group := index .apiGroups 0 -}}
{{- if eq $group "networking.k8s.io" -}}
{{- if has "create" .verbs }}nginx{{ else }}nginx alb{{ end -}}
{{- else if eq $group "networking.istio.io" }}istio
{{- else if eq $group "split.smi-spec.io" }}smi
{{- else if eq $group "gateway.networking.k8s.io" }}gatewayAPI
{{- else if has $group (list "traefik.io" "traefik.containo.us") }}traefik
{{- end -}}
{{- end }}

{{/* The rules of the controller's role (ClusterRole or each watched namespace's Role). */}}
{{- define "rollout-runner.namespacedRules" -}}
{{- $routers := .Values.rbac.routers -}}
{{- $rules := list -}}
{{- range include "rollout-runner.rules" . | fromYamlArray -}}
{{- $needs := include "rollout-runner.routersOf" . | splitList " " | compact -}}
{{- $keep := not $needs -}}
{{- range $needs -}}
{{- if index $routers . -}}{{- $keep = true -}}{{- end -}}
{{- end -}}
{{- if $keep -}}{{- $rules = append $rules . -}}{{- end -}}
{{- end -}}
{{- concat $rules .Values.rbac.additionalRules | toYaml -}}
{{- end }}

{{/* The webhooks whose body template is given inline (templateBody): non-empty when any is. */}}
{{- define "rollout-runner.notificationTemplates" -}}
{{- range .Values.notifications.webhooks }}{{ if .templateBody }}{{ .name }} {{ end }}{{ end }}
{{- end }}
