package render_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// rpoCheckOf decodes the one rpo-check CronJob of a rendering.
func rpoCheckOf(t *testing.T, r *render.Result) batchv1.CronJob {
	t.Helper()
	if len(r.Checks) != 1 {
		t.Fatalf("%d checks rendered, want the rpo-check CronJob", len(r.Checks))
	}
	b, err := json.Marshal(r.Checks[0])
	if err != nil {
		t.Fatal(err)
	}
	var cj batchv1.CronJob
	if err := json.Unmarshal(b, &cj); err != nil {
		t.Fatal(err)
	}
	return cj
}

// Both roles run the check, with the namespace's own key and the promised
// interval, never suspended, never a hook; its Job fails once and stays
// failed (no retries), which is what turns the CronJob Degraded.
func TestRPOCheckCronJob(t *testing.T) {
	for _, site := range []string{"site-a", "site-b"} {
		r := renderExample(t, site, "", nil)
		cj := rpoCheckOf(t, r)
		if cj.Namespace != "wordpress" || cj.Labels[render.StepLabel] != string(hookcmd.RPOCheck) || cj.Spec.JobTemplate.Spec.Template.Labels[render.StepLabel] != string(hookcmd.RPOCheck) {
			t.Errorf("%s: %s/%s labels %v", site, cj.Namespace, cj.Name, cj.Labels)
		}
		if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
			t.Errorf("%s (%s): the check is suspended", site, r.Role)
		}
		if len(cj.Annotations) != 0 {
			t.Errorf("%s: annotations %v: the check is one of the app's objects, not a hook", site, cj.Annotations)
		}
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || *cj.Spec.JobTemplate.Spec.BackoffLimit != 0 {
			t.Errorf("%s: concurrency %s, backoffLimit %d", site, cj.Spec.ConcurrencyPolicy, *cj.Spec.JobTemplate.Spec.BackoffLimit)
		}
		pod := cj.Spec.JobTemplate.Spec.Template.Spec
		c := pod.Containers[0]
		req, err := hookcmd.Parse(c.Command[2], c.Args)
		if err != nil || req.Step != hookcmd.RPOCheck || req.RPO != 5*time.Minute || req.Ceph.ID != "wordpress" || req.Peer.ID != "" ||
			!slices.Equal(req.Targets, []string{"replicapool/wordpress/csi-vol-mysql", "replicapool/wordpress/csi-vol-wordpress"}) || req.Timeout >= 5*time.Minute {
			t.Errorf("%s: %v %+v", site, err, req)
		}
		if *pod.AutomountServiceAccountToken || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || len(pod.Volumes) != 2 {
			t.Errorf("%s: the check's pod is not the Ceph Jobs' least-privilege pod: %+v", site, pod)
		}
	}
	// promote (which does prepare's work first) gets the promise too.
	checked := 0
	for _, h := range objects(t, toYAML(t, renderExample(t, "site-a", "", nil))) {
		if h.GetKind() != "Job" || h.GetLabels()[render.StepLabel] != "promote" {
			continue
		}
		checked++
		b, _ := json.Marshal(h.Object)
		var j batchv1.Job
		_ = json.Unmarshal(b, &j)
		if !slices.Contains(j.Spec.Template.Spec.Containers[0].Args, "--rpo=5m0s") {
			t.Errorf("%s: args %v lack --rpo", j.Name, j.Spec.Template.Spec.Containers[0].Args)
		}
	}
	if checked != 1 {
		t.Errorf("found %d promote Jobs, want 1", checked)
	}
}

func TestRPOCheckSchedule(t *testing.T) {
	cases := []struct {
		rpo  time.Duration
		want string // the schedule without its offset
	}{
		{time.Minute, "* * * * *"},
		{5 * time.Minute, "-59/5 * * * *"},
		{7 * time.Minute, "-59/6 * * * *"}, // never less often than promised
		{45 * time.Minute, "-59/30 * * * *"},
		{time.Hour, " * * * *"},
		{24 * time.Hour, " * * * *"}, // at least hourly
	}
	for _, c := range cases {
		settings := exampleSettings(t)
		settings.Namespaces[0].Interval = c.rpo
		cj := rpoCheckOf(t, renderExampleWith(t, "site-a", "", nil, settings))
		if !strings.HasSuffix(cj.Spec.Schedule, c.want) {
			t.Errorf("rpo %s: schedule %q, want ...%q", c.rpo, cj.Spec.Schedule, c.want)
		}
	}
}
