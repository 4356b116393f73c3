{{- define "zooid-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "zooid-operator.labels" -}}
app.kubernetes.io/name: zooid-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "zooid-operator.selector" -}}
app.kubernetes.io/name: zooid-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zooid-operator.serviceAccount" -}}
{{- default (include "zooid-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
