{{/* Names, labels and the environment every Tern container shares. */}}

{{- define "tern.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tern.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tern.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tern.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tern.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tern.labels" -}}
helm.sh/chart: {{ include "tern.chart" . }}
{{ include "tern.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tern
{{- end -}}

{{/* Labels of one role: (dict "ctx" $ "role" "api") */}}
{{- define "tern.roleSelectorLabels" -}}
{{ include "tern.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "tern.roleLabels" -}}
{{ include "tern.labels" .ctx }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "tern.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tern.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tern.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the pods read: the existing one, or the chart's. */}}
{{- define "tern.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "tern.fullname" . -}}
{{- end -}}
{{- end -}}

{{/*
Checks across values that a JSON schema cannot say clearly; each failure names the value
to set. Called from every template that needs them, so `helm template` and `helm install`
stop with the same message.
*/}}
{{- define "tern.validate" -}}
{{- $v := .Values -}}
{{- if not (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "Kubernetes %s is too old for this chart: the gateways drain with lifecycle.preStop.sleep, on by default from 1.30" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if not $v.secrets.existingSecret -}}
{{- if not $v.secrets.masterKey -}}
{{- fail "secrets.masterKey is required (64 hex characters: openssl rand -hex 32), or name a Secret holding TERN_MASTER_KEY in secrets.existingSecret" -}}
{{- end -}}
{{- if not $v.postgresql.url -}}
{{- fail "postgresql.url is required (postgres://USER:PASSWORD@HOST:5432/DB): the roles share one external PostgreSQL; or name a Secret holding TERN_DATABASE_URL in secrets.existingSecret" -}}
{{- end -}}
{{- if not $v.redis.url -}}
{{- fail "redis.url is required (redis://[:PASSWORD@]HOST:6379[/DB]): several api and gateway pods meet in Redis; or name a Secret holding TERN_REDIS_URL in secrets.existingSecret" -}}
{{- end -}}
{{- if and $v.pulsar.enabled (not $v.pulsar.url) -}}
{{- fail "pulsar.enabled is true but pulsar.url is empty (pulsar://HOST:6650)" -}}
{{- end -}}
{{- end -}}
{{- $minGrace := add (int $v.gateway.preStopSleepSeconds) 30 -}}
{{- if le (int $v.gateway.terminationGracePeriodSeconds) (int $minGrace) -}}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%d) must be more than gateway.preStopSleepSeconds + 30 (%d): the gateway needs the sleep and then up to 30 s to close its sessions with 1012" (int $v.gateway.terminationGracePeriodSeconds) (int $minGrace)) -}}
{{- end -}}
{{- range $role := list "api" "gateway" "worker" -}}
{{- $r := index $v $role -}}
{{- if and $r.autoscaling.enabled (gt (int $r.autoscaling.minReplicas) (int $r.autoscaling.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) is above %s.autoscaling.maxReplicas (%d)" $role (int $r.autoscaling.minReplicas) $role (int $r.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether to render Prometheus Operator resources. */}}
{{- define "tern.prometheusOperator" -}}
{{- $mode := toString .Values.metrics.prometheusOperator -}}
{{- if eq $mode "true" -}}true
{{- else if and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") -}}true
{{- end -}}
{{- end -}}

{{/*
The environment of every Tern container: the ConfigMap, the Secret's keys, the node id
from the pod name. (dict "ctx" $)
*/}}
{{- define "tern.env" -}}
{{- $v := .ctx.Values -}}
{{- $secret := include "tern.secretName" .ctx -}}
- name: TERN_NODE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: TERN_MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.masterKey }}
- name: TERN_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.databaseUrl }}
- name: TERN_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.redisUrl }}
{{- if $v.pulsar.enabled }}
- name: TERN_PULSAR_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.pulsarUrl }}
{{- end }}
- name: TERN_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.adminPassword }}
      optional: true
{{- end -}}
