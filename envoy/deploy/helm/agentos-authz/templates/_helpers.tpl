{{/* Names and labels of the agentos-authz chart. */}}

{{- define "agentos-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-agentos-authz, or the release name when it already contains the chart's name. */}}
{{- define "agentos-authz.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The selector: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "agentos-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentos-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ext-authz
{{- end }}

{{- define "agentos-authz.labels" -}}
{{ include "agentos-authz.selectorLabels" . }}
app.kubernetes.io/part-of: agentos-authz
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentos-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agentos-authz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "agentos-authz.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the verification key files, "" when there is none. */}}
{{- define "agentos-authz.keysSecret" -}}
{{- if .Values.keys.existingSecret }}
{{- .Values.keys.existingSecret }}
{{- else if get .Values.keys "files" }}
{{- printf "%s-keys" (include "agentos-authz.fullname" .) }}
{{- end }}
{{- end }}

{{/* The file names of the keys Secret, sorted. */}}
{{- define "agentos-authz.keyFiles" -}}
{{- if .Values.keys.existingSecret }}
{{- toJson (sortAlpha .Values.keys.existingSecretFiles) }}
{{- else }}
{{- toJson (sortAlpha (keys (get .Values.keys "files" | default dict))) }}
{{- end }}
{{- end }}

{{/* Whether service accounts are on: "true" or "". */}}
{{- define "agentos-authz.serviceAccountsOn" -}}
{{- if or .Values.serviceAccounts.dbUrl .Values.serviceAccounts.existingSecret }}true{{ end }}
{{- end }}

{{/*
GOMEMLIMIT: goMemLimitPercent of resources.limits.memory, in MiB (Go's runtime/debug syntax).
Quantities: a plain byte count or a Ki/Mi/Gi/Ti or k/M/G/T suffix (values.schema.json).
*/}}
{{- define "agentos-authz.goMemLimit" -}}
{{- $limit := toString .Values.resources.limits.memory }}
{{- $m := regexFind "^[0-9]+" $limit }}
{{- $suffix := trimPrefix $m $limit }}
{{- $mult := get (dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000) $suffix }}
{{- $bytes := mul (atoi $m) $mult }}
{{- $mib := div (mul $bytes (int .Values.goMemLimitPercent)) (mul 100 1048576) }}
{{- if lt $mib 1 }}
{{- fail (printf "resources.limits.memory %s: too small for GOMEMLIMIT (want at least a few MiB)" $limit) }}
{{- end }}
{{- printf "%dMiB" $mib }}
{{- end }}

{{/* Render-time checks: each fails with the value to change. */}}
{{- define "agentos-authz.validate" -}}
{{- $owned := dict "grpc_addr" "ports.grpc" "http_addr" "ports.http" "admin_addr" "ports.admin" "shutdown_delay" "shutdownDelaySeconds" "tls" "tls" }}
{{- range $key, $instead := $owned }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is set by the chart: use the value %s instead" $key $instead) }}
{{- end }}
{{- end }}
{{- $jwt := get .Values.config "jwt" | default dict }}
{{- if hasKey $jwt "verification_key_files" }}
{{- fail "config.jwt.verification_key_files is set by the chart from the keys Secret: use keys.files or keys.existingSecret" }}
{{- end }}
{{- if and .Values.keys.jwksFile (hasKey $jwt "jwks_file") }}
{{- fail "config.jwt.jwks_file and keys.jwksFile are both set: keep one" }}
{{- end }}
{{- if and .Values.keys.jwksFile (get $jwt "jwks_url") }}
{{- fail "keys.jwksFile and config.jwt.jwks_url are both set: the service reads one JWK Set, a file or a URL" }}
{{- end }}
{{- if and .Values.keys.existingSecret (get .Values.keys "files") }}
{{- fail "keys.files and keys.existingSecret are both set: the chart either creates the keys Secret from keys.files or mounts keys.existingSecret; set keys.files to null (--set keys.files=null) to drop the example key" }}
{{- end }}
{{- if and .Values.keys.existingSecret (not .Values.keys.existingSecretFiles) }}
{{- fail "keys.existingSecret needs keys.existingSecretFiles: the names of the Secret's keys to mount" }}
{{- end }}
{{- if and .Values.keys.jwksFile (not (has .Values.keys.jwksFile (fromJsonArray (include "agentos-authz.keyFiles" .)))) }}
{{- fail (printf "keys.jwksFile %q is not one of the keys Secret's files %s" .Values.keys.jwksFile (include "agentos-authz.keyFiles" .)) }}
{{- end }}
{{- if and .Values.serviceAccounts.dbUrl .Values.serviceAccounts.existingSecret }}
{{- fail "serviceAccounts.dbUrl and serviceAccounts.existingSecret are both set: keep one" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName: the Secret holding the certificate and its key (e.g. a cert-manager Certificate's)" }}
{{- end }}
{{- if and .Values.tls.clientCA.enabled (not .Values.tls.enabled) }}
{{- fail "tls.clientCA.enabled needs tls.enabled: mutual TLS is TLS with client certificates" }}
{{- end }}
{{- if and .Values.serviceMonitor.clientCertSecret (not .Values.tls.clientCA.enabled) }}
{{- fail "serviceMonitor.clientCertSecret needs tls.clientCA.enabled: without mutual TLS no listener asks for a client certificate" }}
{{- end }}
{{- $need := add .Values.shutdownDelaySeconds .Values.drainTimeoutSeconds 3 }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "terminationGracePeriodSeconds %v must cover shutdownDelaySeconds %v + drainTimeoutSeconds %v + 3s margin = %v" .Values.terminationGracePeriodSeconds .Values.shutdownDelaySeconds .Values.drainTimeoutSeconds $need) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas %v > autoscaling.maxReplicas %v" .Values.autoscaling.minReplicas .Values.autoscaling.maxReplicas) }}
{{- end }}
{{- if .Values.podDisruptionBudget.enabled }}
{{- $floor := ternary .Values.autoscaling.minReplicas .Values.replicas .Values.autoscaling.enabled }}
{{- if ge (int .Values.podDisruptionBudget.minAvailable) (int $floor) }}
{{- fail (printf "podDisruptionBudget.minAvailable %v >= the replica count %v: node drains would block forever" .Values.podDisruptionBudget.minAvailable $floor) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The configuration file: config with what the chart owns merged in. */}}
{{- define "agentos-authz.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $jwt := deepCopy (get .Values.config "jwt" | default dict) }}
{{- $files := list }}
{{- range (fromJsonArray (include "agentos-authz.keyFiles" .)) }}
{{- if eq . $.Values.keys.jwksFile }}
{{- $_ := set $jwt "jwks_file" (printf "/var/run/secrets/agentos-authz/keys/%s" .) }}
{{- else }}
{{- $files = append $files (printf "/var/run/secrets/agentos-authz/keys/%s" .) }}
{{- end }}
{{- end }}
{{- if $files }}
{{- $_ := set $jwt "verification_key_files" $files }}
{{- end }}
{{- $_ := set $cfg "jwt" $jwt }}
{{- $_ := set $cfg "grpc_addr" (printf ":%d" (int .Values.ports.grpc)) }}
{{- $_ := set $cfg "http_addr" (printf ":%d" (int .Values.ports.http)) }}
{{- $_ := set $cfg "admin_addr" (printf ":%d" (int .Values.ports.admin)) }}
{{- $_ := set $cfg "shutdown_delay" (printf "%ds" (int .Values.shutdownDelaySeconds)) }}
{{- if .Values.tls.enabled }}
{{- $tls := dict "cert_file" (printf "/var/run/secrets/agentos-authz/tls/%s" .Values.tls.certKey) "key_file" (printf "/var/run/secrets/agentos-authz/tls/%s" .Values.tls.keyKey) }}
{{- if .Values.tls.clientCA.enabled }}
{{- $_ := set $tls "client_ca_file" (printf "/var/run/secrets/agentos-authz/client-ca/%s" .Values.tls.clientCA.key) }}
{{- /* kubelet's HTTPS probes present no client certificate (README.md, "Operating in production"). */}}
{{- $_ := set $tls "admin_client_auth" "except_health_and_metrics" }}
{{- end }}
{{- $_ := set $cfg "tls" $tls }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
