{{/* Names ---------------------------------------------------------------------------------------------- */}}

{{- define "wsgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wsgate.fullname" -}}
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

{{- define "wsgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wsgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object, without app.kubernetes.io/component. */}}
{{- define "wsgate.baseLabels" -}}
helm.sh/chart: {{ include "wsgate.chart" . }}
{{ include "wsgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: wsgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "wsgate.labels" -}}
{{ include "wsgate.baseLabels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "wsgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wsgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wsgate.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Shutdown timing --------------------------------------------------------------------------------------
On pod deletion: preStop sleep (the pod still serves while endpoints propagate), then SIGTERM: /readyz fails,
new upgrades are accepted for --shutdown-delay-seconds, then refused; open connections get close 1012 paced
over --drain-seconds; then the process exits. The grace period covers all of it (it includes preStop). */}}

{{- define "wsgate.shutdownSeconds" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.controller.shutdownDelaySeconds) (int .Values.controller.drainSeconds) -}}
{{- end -}}

{{- define "wsgate.terminationGracePeriodSeconds" -}}
{{- $needed := int (include "wsgate.shutdownSeconds" .) -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $needed (int .Values.terminationGraceMarginSeconds) -}}
{{- else -}}
{{- $set := int .Values.terminationGracePeriodSeconds -}}
{{- if le $set $needed -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than preStopSleepSeconds + controller.shutdownDelaySeconds + controller.drainSeconds (%d + %d + %d = %d), or connections are killed before they drain; raise it or leave it null to compute it" $set (int .Values.preStopSleepSeconds) (int .Values.controller.shutdownDelaySeconds) (int .Values.controller.drainSeconds) $needed) -}}
{{- end -}}
{{- $set -}}
{{- end -}}
{{- end -}}

{{/* Checks of values that the schema cannot express --------------------------------------------------- */}}

{{- define "wsgate.validate" -}}
{{- $a := .Values.autoscaling -}}
{{- if and (ne $a.mode "none") (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- end -}}
{{- $m := .Values.metrics -}}
{{- if and $m.serviceMonitor.enabled $m.podMonitor.enabled -}}
{{- fail "enable metrics.serviceMonitor or metrics.podMonitor, not both: every pod would be scraped twice and sums (the HPA metric included) doubled" -}}
{{- end -}}
{{- $pdb := .Values.podDisruptionBudget -}}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.maxUnavailable)) -}}
{{- fail "set podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable, not both" -}}
{{- end -}}
{{- if and .Values.service.externalTrafficPolicy (eq .Values.service.type "ClusterIP") -}}
{{- fail "service.externalTrafficPolicy applies to LoadBalancer and NodePort Services only" -}}
{{- end -}}
{{- if and (gt (int .Values.preStopSleepSeconds) 0) (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "preStopSleepSeconds > 0 uses the preStop sleep action, which needs Kubernetes 1.30 or newer (this is %s); the image has no shell for an exec sleep. Set preStopSleepSeconds: 0 and raise controller.shutdownDelaySeconds instead (with helm template, pass --kube-version)" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if and .Values.tls.defaultCertificate.secretName (not .Values.tls.enabled) -}}
{{- fail "tls.defaultCertificate.secretName needs tls.enabled: true" -}}
{{- end -}}
{{- if and (eq .Values.rbac.scope "Namespaces") .Values.controller.watchNamespace -}}
{{- fail "set rbac.namespaces (rbac.scope: Namespaces) or controller.watchNamespace, not both" -}}
{{- end -}}
{{- end -}}

{{/* The namespaces wsgate watches, comma-separated; empty: all (cluster-wide RBAC). */}}
{{- define "wsgate.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "Namespaces" -}}
{{- join "," (uniq .Values.rbac.namespaces) -}}
{{- else -}}
{{- .Values.controller.watchNamespace -}}
{{- end -}}
{{- end -}}

{{/* Monitoring: render a monitor only when its API exists, unless told to skip the check. */}}
{{- define "wsgate.monitoringAPI" -}}
{{- if or .Values.metrics.skipCapabilityCheck (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* The query KEDA runs: the sum of active connections over this release's pods (threshold is per pod). */}}
{{- define "wsgate.kedaQuery" -}}
{{- if .Values.autoscaling.keda.query -}}
{{- .Values.autoscaling.keda.query -}}
{{- else -}}
{{- printf "sum(wsgate_connections_active{namespace=\"%s\",pod=~\"%s-.*\"})" .Release.Namespace (include "wsgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
RBAC rules for the kinds that are not namespaced (scope 'clusterResource' in permissions.ts), for the routing
APIs that are on; empty when both are off.
*/}}
{{- define "wsgate.clusterResourceRules" -}}
{{- if .Values.controller.gatewayApi.enabled }}
  # the GatewayClasses of controller wsgate.io/gateway-controller
  - apiGroups: ["gateway.networking.k8s.io"]
    resources: ["gatewayclasses"]
    verbs: ["list", "watch"]
  # GatewayClass conditions (leader only)
  - apiGroups: ["gateway.networking.k8s.io"]
    resources: ["gatewayclasses/status"]
    verbs: ["patch"]
  # namespace labels for Gateway allowedRoutes selectors
  - apiGroups: [""]
    resources: ["namespaces"]
    verbs: ["list", "watch"]
{{- end }}
{{- if .Values.controller.ingress.enabled }}
  # which IngressClasses are wsgate's, and the default one
  - apiGroups: ["networking.k8s.io"]
    resources: ["ingressclasses"]
    verbs: ["list", "watch"]
{{- end }}
{{- end }}
