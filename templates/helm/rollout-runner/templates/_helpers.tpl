{{- define "rollout-runner.name" -}}rollout-runner-controller{{- end }}

{{- define "rollout-runner.labels" -}}
app.kubernetes.io/name: rollout-runner-controller
app.kubernetes.io/part-of: rollout-runner
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rollout-runner.selector" -}}
app.kubernetes.io/name: rollout-runner-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The namespaced rules: the same list `rollout-runner install` prints (a test compares them). */}}
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
  verbs: [get, create, update, patch]
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
