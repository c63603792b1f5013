{{/* ============================================================================
     Names and labels
     ============================================================================ */}}

{{/* The chart name (nameOverride wins). */}}
{{- define "eventfold.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name prefix: <release>-eventfold unless the release name contains it. */}}
{{- define "eventfold.fullname" -}}
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

{{/* A component's resource name: (dict "root" $ "component" "query") -> <fullname>-query. */}}
{{- define "eventfold.componentName" -}}
{{- printf "%s-%s" (include "eventfold.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* chart-version for the helm.sh/chart label. */}}
{{- define "eventfold.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the release's pods (stable across upgrades). */}}
{{- define "eventfold.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventfold.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "eventfold.labels" -}}
helm.sh/chart: {{ include "eventfold.chart" . }}
{{ include "eventfold.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eventfold
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "worker"). */}}
{{- define "eventfold.componentSelectorLabels" -}}
{{ include "eventfold.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's resources: (dict "root" $ "component" "worker"). */}}
{{- define "eventfold.componentLabels" -}}
{{ include "eventfold.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "eventfold.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eventfold.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository:tag, or repository@sha256:... for a digest. */}}
{{- define "eventfold.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* ============================================================================
     Derived settings
     ============================================================================ */}}

{{/* The URL every stage reaches the schema registry at. */}}
{{- define "eventfold.registryUrl" -}}
{{- if .Values.registry.enabled }}
{{- printf "http://%s:%d" (include "eventfold.componentName" (dict "root" . "component" "registry")) (int .Values.registry.port) }}
{{- else }}
{{- required "registry.externalUrl is required when registry.enabled=false (the URL of a Confluent-compatible schema registry, e.g. --set registry.externalUrl=https://schema-registry.example.com)" .Values.registry.externalUrl }}
{{- end }}
{{- end }}

{{/* Where the pods read eventfold.toml: the ConfigMap, or with SASL its copy with the credentials. */}}
{{- define "eventfold.configFile" -}}
{{- if .Values.kafka.sasl.enabled -}}
/run/eventfold/eventfold.toml
{{- else -}}
/etc/eventfold/config/eventfold.toml
{{- end }}
{{- end }}

{{/* Name of the Secret with the SASL credentials. */}}
{{- define "eventfold.saslSecretName" -}}
{{- default (printf "%s-kafka-sasl" (include "eventfold.fullname" .)) .Values.kafka.sasl.existingSecret }}
{{- end }}

{{/* Name of the Secret with the Kafka TLS material. */}}
{{- define "eventfold.tlsSecretName" -}}
{{- default (printf "%s-kafka-tls" (include "eventfold.fullname" .)) .Values.kafka.tls.existingSecret }}
{{- end }}

{{/* Whether pods mount the Kafka TLS Secret ("true" or ""). */}}
{{- define "eventfold.mountKafkaTls" -}}
{{- $tls := .Values.kafka.tls }}
{{- if and $tls.enabled (or (not $tls.useSystemTrustStore) $tls.clientAuth) }}true{{ end }}
{{- end }}

{{/* Name of the Secret with the PostgreSQL URL. */}}
{{- define "eventfold.postgresSecretName" -}}
{{- default (printf "%s-postgres" (include "eventfold.fullname" .)) .Values.store.postgres.existingSecret }}
{{- end }}

{{/* Name of the claim holding the SQLite store. */}}
{{- define "eventfold.dataClaimName" -}}
{{- default (printf "%s-data" (include "eventfold.fullname" .)) .Values.store.sqlite.persistence.existingClaim }}
{{- end }}

{{/* Whether the SQLite store pods must share one node ("true" or ""). */}}
{{- define "eventfold.sqliteCoLocate" -}}
{{- $s := .Values.store }}
{{- if and (eq $s.backend "sqlite") $s.sqlite.persistence.enabled $s.sqlite.coLocate }}true{{ end }}
{{- end }}

{{/* ============================================================================
     Validation: every rule a schema cannot express. Rendered from configmap.yaml,
     so any `helm template/install/upgrade` fails early with the message.
     ============================================================================ */}}
{{- define "eventfold.validate" -}}
{{- $v := .Values }}
{{- if and (not $v.registry.enabled) (not $v.registry.externalUrl) }}
{{- fail "registry.externalUrl is required when registry.enabled=false (the URL of a Confluent-compatible schema registry, e.g. --set registry.externalUrl=https://schema-registry.example.com)" }}
{{- end }}
{{- if gt (int $v.worker.replicas) (int $v.kafka.topicPartitions) }}
{{- fail (printf "worker.replicas (%d) must not exceed kafka.topicPartitions (%d): each partition is folded by one worker at a time, so extra workers would sit idle. Lower worker.replicas or add partitions and raise kafka.topicPartitions." (int $v.worker.replicas) (int $v.kafka.topicPartitions)) }}
{{- end }}
{{- if gt (mul 3 (int $v.kafka.heartbeatIntervalMs)) (int $v.kafka.sessionTimeoutMs) }}
{{- fail (printf "kafka.heartbeatIntervalMs (%d) must be at most a third of kafka.sessionTimeoutMs (%d)" (int $v.kafka.heartbeatIntervalMs) (int $v.kafka.sessionTimeoutMs)) }}
{{- end }}
{{- with $v.kafka.sasl }}
{{- if and .enabled (not .existingSecret) (or (not .username) (not .password)) }}
{{- fail "kafka.sasl.enabled=true needs kafka.sasl.existingSecret, or kafka.sasl.username and kafka.sasl.password" }}
{{- end }}
{{- if and .enabled (or (hasKey $v.kafka.properties "sasl.username") (hasKey $v.kafka.properties "sasl.password")) }}
{{- fail "kafka.properties must not set sasl.username or sasl.password: with kafka.sasl.enabled they come from the kafka.sasl Secret" }}
{{- end }}
{{- end }}
{{- with $v.kafka.tls }}
{{- if and .enabled (not .existingSecret) (not .useSystemTrustStore) (not .caCert) }}
{{- fail "kafka.tls.enabled=true needs a CA: kafka.tls.existingSecret, kafka.tls.caCert, or kafka.tls.useSystemTrustStore=true" }}
{{- end }}
{{- if and .enabled .clientAuth (not .existingSecret) (or (not .clientCert) (not .clientKey)) }}
{{- fail "kafka.tls.clientAuth=true needs kafka.tls.existingSecret, or kafka.tls.clientCert and kafka.tls.clientKey" }}
{{- end }}
{{- end }}
{{- if and (eq $v.store.backend "postgres") (not $v.store.postgres.existingSecret) (not $v.store.postgres.url) }}
{{- fail "store.backend=postgres needs store.postgres.existingSecret or store.postgres.url" }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled=true needs metrics.enabled=true" }}
{{- end }}
{{- range $name := list "registry" "collector" "query" }}
{{- if eq (int (index $v $name).port) (int $v.metrics.port) }}
{{- fail (printf "%s.port and metrics.port must differ (both are %d)" $name (int $v.metrics.port)) }}
{{- end }}
{{- end }}
{{- range $name := list "collector" "query" }}
{{- with (index $v $name).autoscaling }}
{{- if and .enabled (gt (int .minReplicas) (int .maxReplicas)) }}
{{- fail (printf "%s.autoscaling.minReplicas (%d) must not exceed %s.autoscaling.maxReplicas (%d)" $name (int .minReplicas) $name (int .maxReplicas)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* ============================================================================
     Pod template shared by every eventfold workload.
     Parameters (dict):
       root        the chart's root context ($)
       component   registry | collector | worker | query | schema
       args        eventfold arguments after --config (list)
       values      the component's values (resources, nodeSelector, ...)
       httpPort    the component's HTTP port, 0 for none
       usesStore   whether it opens the read store (worker, query)
       probes      whether to add liveness/readiness/startup probes
       restartPolicy, terminationGracePeriodSeconds   optional
     ============================================================================ */}}
{{- define "eventfold.podTemplate" -}}
{{- $root := .root }}
{{- $c := .component }}
{{- $v := .values }}
{{- $V := $root.Values }}
{{- $httpPort := int (default 0 .httpPort) }}
{{- $store := and .usesStore true }}
{{- $sqlite := and $store (eq $V.store.backend "sqlite") }}
{{- $postgres := and $store (eq $V.store.backend "postgres") }}
{{- $metrics := and $V.metrics.enabled (ne $c "schema") }}
{{- $probePort := "" }}
{{- if gt $httpPort 0 }}{{ $probePort = "http" }}{{ else if $metrics }}{{ $probePort = "metrics" }}{{ end -}}
metadata:
  labels:
    {{- include "eventfold.componentSelectorLabels" (dict "root" $root "component" $c) | nindent 4 }}
    app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
    app.kubernetes.io/part-of: eventfold
    {{- if and $sqlite (include "eventfold.sqliteCoLocate" $root) }}
    eventfold/store: sqlite
    {{- end }}
    {{- with $V.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    checksum/secrets: {{ include (print $root.Template.BasePath "/secrets.yaml") $root | sha256sum }}
    {{- with merge (dict) (default (dict) $v.podAnnotations) $V.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "eventfold.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $V.serviceAccount.automountServiceAccountToken }}
  {{- with $V.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $V.podSecurityContext | nindent 4 }}
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  {{- with .terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  {{- if $V.kafka.sasl.enabled }}
  initContainers:
    # Appends the SASL credentials from the Secret to a private copy of eventfold.toml
    # (librdkafka keys contain dots, so they cannot be EVENTFOLD__* environment variables).
    - name: kafka-credentials
      image: {{ include "eventfold.image" $root | quote }}
      imagePullPolicy: {{ $V.image.pullPolicy }}
      command: ["/bin/sh", "-ec"]
      args:
        - |
          umask 077
          nl='
          '
          cr="$(printf '\r')"
          for value in "$KAFKA_SASL_USERNAME" "$KAFKA_SASL_PASSWORD"; do
            case "$value" in
              *"$nl"*|*"$cr"*) echo "kafka SASL credentials must be a single line" >&2; exit 1 ;;
            esac
          done
          esc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
          {
            cat /etc/eventfold/config/eventfold.toml
            printf '"sasl.username" = "%s"\n' "$(esc "$KAFKA_SASL_USERNAME")"
            printf '"sasl.password" = "%s"\n' "$(esc "$KAFKA_SASL_PASSWORD")"
          } > /run/eventfold/eventfold.toml
      env:
        - name: KAFKA_SASL_USERNAME
          valueFrom:
            secretKeyRef:
              name: {{ include "eventfold.saslSecretName" $root }}
              key: {{ $V.kafka.sasl.usernameKey }}
        - name: KAFKA_SASL_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "eventfold.saslSecretName" $root }}
              key: {{ $V.kafka.sasl.passwordKey }}
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          memory: 32Mi
      securityContext:
        {{- toYaml $V.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/eventfold/config
          readOnly: true
        - name: config-rendered
          mountPath: /run/eventfold
  {{- end }}
  containers:
    - name: {{ $c }}
      image: {{ include "eventfold.image" $root | quote }}
      imagePullPolicy: {{ $V.image.pullPolicy }}
      args:
        - --config
        - {{ include "eventfold.configFile" $root }}
        {{- range .args }}
        - {{ . | quote }}
        {{- end }}
      {{- $env := concat (default (list) $V.extraEnv) (default (list) $v.extraEnv) }}
      {{- if or $postgres $env }}
      env:
        {{- if $postgres }}
        - name: EVENTFOLD__STORE__URL
          valueFrom:
            secretKeyRef:
              name: {{ include "eventfold.postgresSecretName" $root }}
              key: {{ $V.store.postgres.urlKey }}
        {{- end }}
        {{- with $env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- if or (gt $httpPort 0) $metrics }}
      ports:
        {{- if gt $httpPort 0 }}
        - name: http
          containerPort: {{ $httpPort }}
          protocol: TCP
        {{- end }}
        {{- if $metrics }}
        - name: metrics
          containerPort: {{ $V.metrics.port }}
          protocol: TCP
        {{- end }}
      {{- end }}
      {{- if and .probes $probePort }}
      {{- with $V.probes }}
      startupProbe:
        httpGet:
          path: {{ .startup.path }}
          port: {{ $probePort }}
        periodSeconds: {{ .startup.periodSeconds }}
        timeoutSeconds: {{ .startup.timeoutSeconds }}
        failureThreshold: {{ .startup.failureThreshold }}
      livenessProbe:
        httpGet:
          path: {{ .liveness.path }}
          port: {{ $probePort }}
        initialDelaySeconds: {{ .liveness.initialDelaySeconds }}
        periodSeconds: {{ .liveness.periodSeconds }}
        timeoutSeconds: {{ .liveness.timeoutSeconds }}
        failureThreshold: {{ .liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: {{ .readiness.path }}
          port: {{ $probePort }}
        initialDelaySeconds: {{ .readiness.initialDelaySeconds }}
        periodSeconds: {{ .readiness.periodSeconds }}
        timeoutSeconds: {{ .readiness.timeoutSeconds }}
        failureThreshold: {{ .readiness.failureThreshold }}
      {{- end }}
      {{- end }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $V.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/eventfold/config
          readOnly: true
        {{- if $V.kafka.sasl.enabled }}
        - name: config-rendered
          mountPath: /run/eventfold
          readOnly: true
        {{- end }}
        {{- if include "eventfold.mountKafkaTls" $root }}
        - name: kafka-tls
          mountPath: /etc/eventfold/kafka-tls
          readOnly: true
        {{- end }}
        {{- if $sqlite }}
        - name: data
          mountPath: /var/lib/eventfold
        {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "eventfold.componentName" (dict "root" $root "component" "config") }}
    {{- if $V.kafka.sasl.enabled }}
    - name: config-rendered
      emptyDir:
        medium: Memory
        sizeLimit: 1Mi
    {{- end }}
    {{- if include "eventfold.mountKafkaTls" $root }}
    {{- $tls := $V.kafka.tls }}
    - name: kafka-tls
      secret:
        secretName: {{ include "eventfold.tlsSecretName" $root }}
        defaultMode: 288 # 0440: owner and group (fsGroup) may read
        items:
          {{- if not $tls.useSystemTrustStore }}
          - key: {{ $tls.caCertKey }}
            path: ca.crt
          {{- end }}
          {{- if $tls.clientAuth }}
          - key: {{ $tls.clientCertKey }}
            path: tls.crt
          - key: {{ $tls.clientKeyKey }}
            path: tls.key
          {{- end }}
    {{- end }}
    {{- if $sqlite }}
    - name: data
      {{- if $V.store.sqlite.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ include "eventfold.dataClaimName" $root }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $v.affinity }}
  affinity:
    {{- toYaml $v.affinity | nindent 4 }}
  {{- else if and $sqlite (include "eventfold.sqliteCoLocate" $root) }}
  # The SQLite store is one file on one volume: its readers and writers share a node.
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - labelSelector:
            matchLabels:
              {{- include "eventfold.selectorLabels" $root | nindent 14 }}
              eventfold/store: sqlite
          topologyKey: kubernetes.io/hostname
  {{- end }}
{{- end }}

{{/* ============================================================================
     HorizontalPodAutoscaler (autoscaling/v2) for a Deployment:
     (dict "root" $ "component" "query" "autoscaling" .Values.query.autoscaling)
     ============================================================================ */}}
{{- define "eventfold.hpa" }}
{{- $a := .autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "eventfold.componentName" (dict "root" .root "component" .component) }}
  labels:
    {{- include "eventfold.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "eventfold.componentName" (dict "root" .root "component" .component) }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- if $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $a.targetMemoryUtilizationPercentage }}
    {{- end }}
{{- end }}
