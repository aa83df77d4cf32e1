{{/*
Names. The StatefulSet's name is capped at 52 characters: Kubernetes appends a
controller-revision hash to it in a 63-character label.
*/}}
{{- define "billing.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "billing.fullname" -}}
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

{{- define "billing.headlessName" -}}
{{- printf "%s-headless" (include "billing.fullname" .) }}
{{- end }}

{{- define "billing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "billing.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "billing.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "billing.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
--cluster-members: every node, this one included, as
<pod>@<pod>.<headless service>.<namespace>.svc.<cluster domain>:<cluster port>.
StatefulSet pods are named <fullname>-0 .. <fullname>-(replicas-1), and the
headless Service gives each a stable DNS name, so the list is known before any
pod starts.
*/}}
{{- define "billing.clusterMembers" -}}
{{- $fullname := include "billing.fullname" . }}
{{- $domain := printf "%s.%s.svc.%s" (include "billing.headlessName" .) .Release.Namespace .Values.clusterDomain }}
{{- $members := list }}
{{- range $ordinal := until (int .Values.replicaCount) }}
{{- $pod := printf "%s-%d" $fullname $ordinal }}
{{- $members = append $members (printf "%s@%s.%s:%d" $pod $pod $domain (int $.Values.cluster.port)) }}
{{- end }}
{{- join "," $members }}
{{- end }}

{{/*
A value of billingd.ini: strings quoted (CAF's INI parser requires it), whole
numbers as integers (YAML numbers arrive as float64), booleans as they are.
*/}}
{{- define "billing.iniValue" -}}
{{- if kindIs "string" . }}
{{- quote . }}
{{- else if kindIs "bool" . }}
{{- ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}
{{- int64 . }}
{{- else }}
{{- fail (printf "config values must be strings, integers or booleans, not %s" (kindOf .)) }}
{{- end }}
{{- end }}

{{/*
The probes call /healthz and /readyz, over HTTPS when TLS is on. With mTLS
kubelet cannot complete the handshake (it has no client certificate), so the
probe only checks that the port accepts connections.
*/}}
{{- define "billing.probe" -}}
{{- if and .root.Values.tls.clientCASecret (ne (.root.Values.tls.clientAuth | default "required") "optional") -}}
tcpSocket:
  port: http
{{- else -}}
httpGet:
  path: {{ .path }}
  port: http
  scheme: {{ ternary "HTTPS" "HTTP" (ne .root.Values.tls.existingSecret "") }}
{{- end }}
{{- end }}

{{/* Fails the install early on settings billingd would refuse at start. */}}
{{- define "billing.checkValues" -}}
{{- if and (not .Values.auth.existingSecret) (not .Values.auth.insecureNoAuth) }}
{{- fail "billingd needs authentication: set auth.existingSecret to a Secret holding the token digest file, or auth.insecureNoAuth=true for development" }}
{{- end }}
{{- if and .Values.auth.existingSecret .Values.auth.insecureNoAuth }}
{{- fail "set either auth.existingSecret or auth.insecureNoAuth, not both" }}
{{- end }}
{{- if and .Values.tls.clientCASecret (not .Values.tls.existingSecret) }}
{{- fail "tls.clientCASecret (mTLS) needs tls.existingSecret (the server certificate)" }}
{{- end }}
{{- $managed := list "listen" "data-dir" "regions" "metald-region" "auth-tokens-file" "insecure-no-auth" "tls-cert-file" "tls-key-file" "tls-client-ca-file" "tls-client-auth" "config-file" "node-id" "cluster-members" "cluster-bind-address" "cluster-tls-cert-file" "cluster-tls-key-file" "cluster-tls-ca-file" "etcd-endpoints" "etcd-prefix" "etcd-lease-ttl-seconds" "shards" "cluster-address" "etcd-ca-file" "etcd-cert-file" "etcd-key-file" }}
{{- range $key, $value := .Values.config }}
{{- if has $key $managed }}
{{- fail (printf "config.%s is set by the chart itself; use the chart's own values for it" $key) }}
{{- end }}
{{- end }}
{{- end }}
