{{- define "airbyte.image" -}}
{{- $g := .root.Values.global.image -}}
{{- $tag := $g.tag | default .root.Chart.AppVersion -}}
{{- if $g.registry -}}
{{ printf "%s/vibedata/airbyte-%s:%s" $g.registry .name $tag }}
{{- else -}}
{{ printf "vibedata/airbyte-%s:%s" .name $tag }}
{{- end -}}
{{- end -}}

{{- define "airbyte.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: airbyte
{{- end -}}

{{- define "airbyte.env" -}}
- name: DATABASE_HOST
  value: {{ .Values.global.database.host | quote }}
- name: DATABASE_PORT
  value: {{ .Values.global.database.port | quote }}
- name: DATABASE_DB
  value: {{ .Values.global.database.name | quote }}
- name: DATABASE_USER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.global.database.secretName }}
      key: {{ .Values.global.database.userSecretKey }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.global.database.secretName }}
      key: {{ .Values.global.database.passwordSecretKey }}
- name: STORAGE_TYPE
  value: {{ .Values.global.storage.type | quote }}
- name: STORAGE_BUCKET_LOG
  value: {{ .Values.global.storage.bucket.log | quote }}
- name: STORAGE_BUCKET_STATE
  value: {{ .Values.global.storage.bucket.state | quote }}
- name: STORAGE_BUCKET_WORKLOAD_OUTPUT
  value: {{ .Values.global.storage.bucket.workloadOutput | quote }}
{{- if eq .Values.global.storage.type "azure" }}
- name: AZURE_STORAGE_CONNECTION_STRING
  valueFrom:
    secretKeyRef:
      name: {{ .Values.global.storage.secretName }}
      key: {{ .Values.global.storage.azure.connectionStringSecretKey }}
{{- end }}
{{- end -}}
