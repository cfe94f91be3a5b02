package workload_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

func object(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClaims(t *testing.T) {
	cases := []struct {
		group, kind, doc string
		want             []string
	}{
		{"apps", "Deployment", `{spec: {template: {spec: {volumes: [{name: a, persistentVolumeClaim: {claimName: data}}, {name: b, emptyDir: {}}]}}}}`, []string{"data"}},
		{"batch", "CronJob", `{spec: {jobTemplate: {spec: {template: {spec: {volumes: [{name: a, persistentVolumeClaim: {claimName: data}}]}}}}}}`, []string{"data"}},
		{"", "Pod", `{spec: {volumes: [{name: a, persistentVolumeClaim: {claimName: data}}]}}`, []string{"data"}},
		// A StatefulSet's templates, one claim per replica; replicas defaults to 1.
		{"apps", "StatefulSet", `{metadata: {name: db}, spec: {replicas: 2, volumeClaimTemplates: [{metadata: {name: data}}, {metadata: {name: wal}}]}}`,
			[]string{"data-db-0", "data-db-1", "wal-db-0", "wal-db-1"}},
		{"apps", "StatefulSet", `{metadata: {name: db}, spec: {volumeClaimTemplates: [{metadata: {name: data}}]}}`, []string{"data-db-0"}},
		{"apps", "StatefulSet", `{metadata: {name: db}, spec: {replicas: 0, volumeClaimTemplates: [{metadata: {name: data}}]}}`, nil},
	}
	for _, c := range cases {
		k, ok := workload.Builtin.Lookup(c.group, c.kind)
		if !ok {
			t.Fatalf("%s/%s unknown", c.group, c.kind)
		}
		got, err := k.Claims(object(t, c.doc))
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v %v, want %v", c.kind, got, err, c.want)
		}
	}
	sts, _ := workload.Builtin.Lookup("apps", "StatefulSet")
	if _, err := sts.Claims(object(t, `{metadata: {name: db}, spec: {replicas: many, volumeClaimTemplates: [{metadata: {name: data}}]}}`)); err == nil || !strings.Contains(err.Error(), "spec.replicas many is not a count") {
		t.Errorf("%v", err)
	}
	// A custom resource that shares a kind name is not a workload.
	if _, ok := workload.Builtin.Lookup("argoproj.io", "Deployment"); ok {
		t.Error("argoproj.io Deployment taken for apps/v1's")
	}
}

func TestStopping(t *testing.T) {
	var names []string
	for _, k := range workload.Builtin.Stoppable() {
		names = append(names, k.Name)
	}
	if !slices.Equal(names, []string{"Deployment", "StatefulSet", "CronJob", "Rollout"}) {
		t.Errorf("stoppable kinds %v", names)
	}
	for _, c := range []struct {
		group, kind, running, stopped, patch, report string
	}{
		{"apps", "Deployment", `{spec: {replicas: 2}}`, `{spec: {replicas: 0}}`, `{"spec":{"replicas":0}}`, "scaled Deployment web to 0"},
		{"batch", "CronJob", `{spec: {suspend: false}}`, `{spec: {suspend: true}}`, `{"spec":{"suspend":true}}`, "suspended CronJob web"},
	} {
		k, _ := workload.Builtin.Lookup(c.group, c.kind)
		if k.Stopped(object(t, c.running)) || !k.Stopped(object(t, c.stopped)) || string(k.StopPatch()) != c.patch || k.StopReport("web") != c.report {
			t.Errorf("%s: stopped %v/%v, patch %s, report %q", c.kind, k.Stopped(object(t, c.running)), k.Stopped(object(t, c.stopped)), k.StopPatch(), k.StopReport("web"))
		}
	}
	// A Deployment with no replicas field runs one replica: not stopped.
	d, _ := workload.Builtin.Lookup("apps", "Deployment")
	if d.Stopped(object(t, `{spec: {}}`)) {
		t.Error("a Deployment without replicas counts as stopped")
	}
	job, _ := workload.Builtin.Lookup("batch", "Job")
	if job.CanStop() || job.Stopped(object(t, `{spec: {}}`)) {
		t.Error("a Job can be stopped")
	}
}

// An Argo Rollout is built in: its pods' claims are read, and it is
// scaled to 0 like a Deployment.
func TestRollout(t *testing.T) {
	k, ok := workload.Builtin.Lookup("argoproj.io", "Rollout")
	if !ok {
		t.Fatal("Rollout unknown")
	}
	got, err := k.Claims(object(t, `{spec: {replicas: 3, template: {spec: {volumes: [{name: a, persistentVolumeClaim: {claimName: data}}]}}}}`))
	if err != nil || !slices.Equal(got, []string{"data"}) {
		t.Errorf("claims %v %v", got, err)
	}
	if k.Version != "v1alpha1" || string(k.StopPatch()) != `{"spec":{"replicas":0}}` || k.StopReport("web") != "scaled Rollout web to 0" {
		t.Errorf("version %s, patch %s, report %q", k.Version, k.StopPatch(), k.StopReport("web"))
	}
}

// A kind nobody taught: its claims are found wherever the object names one,
// and it cannot be stopped.
func TestUnknownKind(t *testing.T) {
	k := workload.Unknown("example.com", "Database")
	got, err := k.Claims(object(t, `{spec: {podTemplate: {volumes: [{persistentVolumeClaim: {claimName: data}}]}, backup: {claim: {persistentVolumeClaim: {claimName: backup}}}, other: {claimName: not-a-volume}}}`))
	if err != nil || !slices.Equal(got, []string{"backup", "data"}) {
		t.Errorf("claims %v %v", got, err)
	}
	if !k.IsUnknown() || k.CanStop() || k.Stopped(object(t, `{spec: {replicas: 0}}`)) {
		t.Error("an unknown kind can be stopped")
	}
}

// A kind the settings teach goes to the quiesce hook as a flag and back
// unchanged; a nested stop field is patched where it is.
func TestTaughtKindFlag(t *testing.T) {
	for _, k := range []workload.Kind{
		{Group: "example.com", Version: "v1", Resource: "databases", Name: "Database", PodSpec: []string{"spec", "podTemplate", "spec"}, StopPath: []string{"spec", "replicas"}, StopValue: int64(0)},
		{Group: "batch.example.com", Version: "v1beta1", Resource: "exports", Name: "Export", PodSpec: []string{"spec", "pod"}, StopPath: []string{"spec", "schedule", "paused"}, StopValue: true},
	} {
		back, err := workload.ParseFlag(k.Flag())
		if err != nil || !reflect.DeepEqual(back, k) {
			t.Errorf("%s: %+v %v", k.Flag(), back, err)
		}
	}
	// The renderer passes a Rollout the same way, when the app has one
	// (without its start value: quiesce only stops).
	want := workload.Rollout
	want.StartValue = nil
	if k, err := workload.ParseFlag(workload.Rollout.Flag()); err != nil || !reflect.DeepEqual(k, want) {
		t.Errorf("Rollout: %+v %v", k, err)
	}
	k, _ := workload.ParseFlag("batch.example.com/v1beta1/exports/Export:spec.pod:spec.schedule.paused=true")
	if got := string(k.StopPatch()); got != `{"spec":{"schedule":{"paused":true}}}` {
		t.Errorf("patch %s", got)
	}
	if !k.Stopped(object(t, `{spec: {schedule: {paused: true}}}`)) || k.Stopped(object(t, `{spec: {paused: true}}`)) {
		t.Error("a nested stop field is not read where it is")
	}
	for flag, want := range map[string]string{
		"example.com/v1/databases/Database:spec.template.spec":                 "not three parts",
		"example.com/v1/Database:spec.template.spec:spec.replicas=0":           "GROUP/VERSION/RESOURCE/KIND",
		"example.com/v1/databases/Database:spec.template.spec:spec.replicas=3": "0 (replicas) or true",
		"example.com/v1/databases/Database:spec.template.spec:replicas=0":      "stop",
		"example.com/v1/databases/Database:spec..spec:spec.replicas=0":         "podSpec",
		"example.com/v1/data;rm/Database:spec.template.spec:spec.replicas=0":   "resource",
		"apps/v1/deployments/Deployment:spec.template.spec:spec.replicas=0":    "group",
	} {
		if _, err := workload.ParseFlag(flag); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", flag, err, want)
		}
	}
}
