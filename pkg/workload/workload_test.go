package workload_test

import (
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
		k, ok := workload.Lookup(c.group, c.kind)
		if !ok {
			t.Fatalf("%s/%s unknown", c.group, c.kind)
		}
		got, err := k.Claims(object(t, c.doc))
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v %v, want %v", c.kind, got, err, c.want)
		}
	}
	sts, _ := workload.Lookup("apps", "StatefulSet")
	if _, err := sts.Claims(object(t, `{metadata: {name: db}, spec: {replicas: many, volumeClaimTemplates: [{metadata: {name: data}}]}}`)); err == nil || !strings.Contains(err.Error(), "spec.replicas many is not a count") {
		t.Errorf("%v", err)
	}
	// A custom resource that shares a kind name is not a workload.
	if _, ok := workload.Lookup("argoproj.io", "Deployment"); ok {
		t.Error("argoproj.io Deployment taken for apps/v1's")
	}
}

func TestStopping(t *testing.T) {
	var names []string
	for _, k := range workload.Stoppable() {
		names = append(names, k.Name)
	}
	if !slices.Equal(names, []string{"Deployment", "StatefulSet", "CronJob"}) {
		t.Errorf("stoppable kinds %v", names)
	}
	for _, c := range []struct {
		group, kind, running, stopped, patch, report string
	}{
		{"apps", "Deployment", `{spec: {replicas: 2}}`, `{spec: {replicas: 0}}`, `{"spec":{"replicas":0}}`, "scaled Deployment web to 0"},
		{"batch", "CronJob", `{spec: {suspend: false}}`, `{spec: {suspend: true}}`, `{"spec":{"suspend":true}}`, "suspended CronJob web"},
	} {
		k, _ := workload.Lookup(c.group, c.kind)
		if k.Stopped(object(t, c.running)) || !k.Stopped(object(t, c.stopped)) || string(k.StopPatch()) != c.patch || k.StopReport("web") != c.report {
			t.Errorf("%s: stopped %v/%v, patch %s, report %q", c.kind, k.Stopped(object(t, c.running)), k.Stopped(object(t, c.stopped)), k.StopPatch(), k.StopReport("web"))
		}
	}
	// A Deployment with no replicas field runs one replica: not stopped.
	d, _ := workload.Lookup("apps", "Deployment")
	if d.Stopped(object(t, `{spec: {}}`)) {
		t.Error("a Deployment without replicas counts as stopped")
	}
	job, _ := workload.Lookup("batch", "Job")
	if job.CanStop() || job.Stopped(object(t, `{spec: {}}`)) {
		t.Error("a Job can be stopped")
	}
}
