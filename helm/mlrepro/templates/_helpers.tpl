{{/*
Names and metadata of a run. Everything is named after .Values.runId (not the release name), so the chart
renders exactly what `mlrepro generate` writes (mlrepro/render/podspec.py, manifests.py).
*/}}

{{- define "mlrepro.jobName" -}}
{{- .Values.runId -}}
{{- end -}}

{{- define "mlrepro.configMapName" -}}
{{- printf "%s-config" .Values.runId -}}
{{- end -}}

{{- define "mlrepro.claimName" -}}
{{- printf "%s-results" .Values.runId -}}
{{- end -}}

{{- define "mlrepro.deviceClaimTemplateName" -}}
{{- printf "%s-gpu" .Values.runId -}}
{{- end -}}

{{/*
A Job's pod template cannot change (Kubernetes rejects it: "field is immutable"). Every `mlrepro generate`
is a new run id, so an upgrade to new values makes a new Job; this stops an upgrade that would change the
template of an existing Job of the same run id with one clear message instead (lookup is empty in
`helm template`).
*/}}
{{- define "mlrepro.checkExistingJob" -}}
{{- $existing := lookup "batch/v1" "Job" .Release.Namespace (include "mlrepro.jobName" .) -}}
{{- if $existing -}}
{{- $annotations := $existing.metadata.annotations | default dict -}}
{{- $oldSpec := index $annotations "mlrepro.io/run-spec-sha256" | default "" -}}
{{- $oldProfile := index $annotations "mlrepro.io/profile-sha256" | default "" -}}
{{- if or (ne $oldSpec (sha256sum .Values.run.spec)) (ne $oldProfile .Values.profile.hash) -}}
{{- fail (printf "Job %s already exists with another run spec or profile, and a Job's pod template cannot change: render a new run (mlrepro generate gives each a new run id) or delete job/%s first" (include "mlrepro.jobName" .) (include "mlrepro.jobName" .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object and on the pod (podspec.standard_labels). */}}
{{- define "mlrepro.labels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" "mlrepro"
  "app.kubernetes.io/instance" .Values.runId
  "app.kubernetes.io/component" "benchmark"
  "app.kubernetes.io/managed-by" "mlrepro"
  "app.kubernetes.io/version" (toString .Chart.AppVersion)
  "mlrepro.io/profile" .Values.profile.name
  "mlrepro.io/profile-hash" (trunc 12 .Values.profile.hash)
  "mlrepro.io/run-id" .Values.runId
  "mlrepro.io/scenario" .Values.run.scenario
  "mlrepro.io/mode" .Values.run.mode -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* Annotations on every object: the full profile hash and the hash of run.json (podspec.standard_annotations). */}}
{{- define "mlrepro.annotations" -}}
{{- $annotations := dict
  "mlrepro.io/profile-sha256" .Values.profile.hash
  "mlrepro.io/run-spec-sha256" (sha256sum .Values.run.spec) -}}
{{- toYaml $annotations -}}
{{- end -}}

{{/* Container env: the profile's (literal: `$` is escaped as `$$` against Kubernetes' $(VAR) expansion),
then the run's identity. */}}
{{- define "mlrepro.env" -}}
{{- $env := list -}}
{{- range .Values.env -}}
{{- $env = append $env (dict "name" .name "value" (replace "$" "$$" (toString .value))) -}}
{{- end -}}
{{- $env = append $env (dict "name" "MLREPRO_RUN_ID" "value" .Values.runId) -}}
{{- $env = append $env (dict "name" "MLREPRO_PROFILE_HASH" "value" .Values.profile.hash) -}}
{{- $env = append $env (dict "name" "MLREPRO_IMAGE" "value" .Values.image) -}}
{{- $env = append $env (dict "name" "MLREPRO_TARGET" "value" "kubernetes") -}}
{{- $env = append $env (dict "name" "MLREPRO_NODE_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "spec.nodeName"))) -}}
{{- toYaml $env -}}
{{- end -}}

{{/* requests/limits without the entries set to null (a profile without a cpu or memory value). */}}
{{- define "mlrepro.resources" -}}
{{- $out := dict -}}
{{- range $kind, $list := .Values.resources -}}
{{- $clean := dict -}}
{{- range $name, $quantity := $list -}}
{{- if not (kindIs "invalid" $quantity) -}}
{{- $_ := set $clean $name (toString $quantity) -}}
{{- end -}}
{{- end -}}
{{- if $clean -}}
{{- $_ := set $out $kind $clean -}}
{{- end -}}
{{- end -}}
{{- if .Values.deviceClaim -}}
{{- $_ := set $out "claims" (list (dict "name" "gpu")) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Labels of the model server's objects and pod (serverspec.server_labels): routed by mlrepro.io/server-for,
never by mlrepro.io/run-id (the client Job's). */}}
{{- define "mlrepro.serverLabels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" "mlrepro"
  "app.kubernetes.io/instance" .Values.runId
  "app.kubernetes.io/component" "model-server"
  "app.kubernetes.io/managed-by" "mlrepro"
  "app.kubernetes.io/version" (toString .Chart.AppVersion)
  "mlrepro.io/profile" .Values.profile.name
  "mlrepro.io/profile-hash" (trunc 12 .Values.profile.hash)
  "mlrepro.io/server-for" .Values.runId -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* The model server's env: the profile's and serve.env (as values.server.env carries them), then the run's
identity. */}}
{{- define "mlrepro.serverEnv" -}}
{{- $env := list -}}
{{- range .Values.server.env -}}
{{- $env = append $env (dict "name" .name "value" (replace "$" "$$" (toString .value))) -}}
{{- end -}}
{{- $env = append $env (dict "name" "MLREPRO_RUN_ID" "value" .Values.runId) -}}
{{- $env = append $env (dict "name" "MLREPRO_PROFILE_HASH" "value" .Values.profile.hash) -}}
{{- $env = append $env (dict "name" "MLREPRO_IMAGE" "value" .Values.image) -}}
{{- toYaml $env -}}
{{- end -}}

{{/* The model server's requests/limits (nulls dropped) and its DRA claim. */}}
{{- define "mlrepro.serverResources" -}}
{{- $out := dict -}}
{{- range $kind, $list := .Values.server.resources -}}
{{- $clean := dict -}}
{{- range $name, $quantity := $list -}}
{{- if not (kindIs "invalid" $quantity) -}}
{{- $_ := set $clean $name (toString $quantity) -}}
{{- end -}}
{{- end -}}
{{- if $clean -}}
{{- $_ := set $out $kind $clean -}}
{{- end -}}
{{- end -}}
{{- if .Values.server.deviceClaim -}}
{{- $_ := set $out "claims" (list (dict "name" "gpu")) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
