package failover_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

func podSpec(pvc string) corev1.PodSpec {
	return corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc}}}}}
}

func pod(name, pvc, app string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": app}},
		Spec:       podSpec(pvc), Status: corev1.PodStatus{Phase: phase}}
}

func deployment(name, pvc string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{Spec: podSpec(pvc)}}}
}

func TestQuiesce(t *testing.T) {
	kube := kubefake.Cluster(t,
		deployment("web", "data", 2), pod("web-0", "data", "web", corev1.PodRunning),
		deployment("other", "unrelated", 1), pod("other-0", "unrelated", "other", corev1.PodRunning),
		pod("old-job", "data", "job", corev1.PodSucceeded),
	)
	o, _ := opts()
	r := failover.Quiesce(context.Background(), kube, "shop", []string{"data"}, o)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r[0].Before != "used by 1 pod(s)" || r[0].After != "unused" || r[0].Action != "scaled Deployment web to 0" {
		t.Errorf("%+v", r[0])
	}
	var patched []string
	for _, a := range kube.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patched = append(patched, p.GetName()+" "+string(p.GetPatch()))
		}
	}
	if len(patched) != 1 || patched[0] != `web {"spec":{"replicas":0}}` {
		t.Errorf("patched %v: only the workload using the PVC may be scaled", patched)
	}
	// Run again: nothing to scale, nothing to wait for.
	r = failover.Quiesce(context.Background(), kube, "shop", []string{"data"}, o)
	if r.Err() != nil || r[0].Before != "unused" || r[0].Action != "none" {
		t.Errorf("second run: %+v", r)
	}
}

func TestQuiesceNamesThePodsItCannotStop(t *testing.T) {
	kube := kubefake.Cluster(t, pod("backup-x", "data", "backup", corev1.PodRunning))
	o, _ := opts()
	r := failover.Quiesce(context.Background(), kube, "shop", []string{"data"}, o)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "pods still use the volumes, so they are not demoted: data (pods backup-x)") {
		t.Errorf("%v", err)
	}
}

// When the last look at the pods fails (the step's deadline has passed, and
// client-go refuses to ask), the message still names the pods seen before.
func TestQuiesceNamesThePodsWhenTheLastListFails(t *testing.T) {
	kube := kubefake.Cluster(t, pod("holder", "data", "x", corev1.PodRunning))
	lists := 0
	kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists++; lists > 2 {
			return true, nil, context.DeadlineExceeded
		}
		return false, nil, nil
	})
	o, _ := opts()
	r := failover.Quiesce(context.Background(), kube, "shop", []string{"data"}, o)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "data (pods holder)") {
		t.Errorf("%v", err)
	}
}

// What the renderer counts as stoppable, quiesce stops: a CronJob that
// mounts the claim is suspended (a run between quiesce and demote would
// write to the image), and a StatefulSet whose claim comes only from its
// volumeClaimTemplates (data-db-0) is scaled to 0.
func TestQuiesceStopsCronJobsAndClaimTemplates(t *testing.T) {
	replicas := int32(1)
	sts := &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec:       appsv1.StatefulSetSpec{Replicas: &replicas, VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}}}
	cron := &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "shop"},
		Spec:       batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: podSpec("data-db-0")}}}}}
	other := cron.DeepCopy()
	other.Name, other.Spec.JobTemplate.Spec.Template.Spec = "report", podSpec("unrelated")
	kube := kubefake.Cluster(t, sts, pod("db-0", "data-db-0", "db", corev1.PodRunning), cron, other)
	o, _ := opts()
	r := failover.Quiesce(context.Background(), kube, "shop", []string{"data-db-0"}, o)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r[0].Action != "scaled StatefulSet db to 0, suspended CronJob backup" || r[0].After != "unused" {
		t.Errorf("%+v", r[0])
	}
	var patched []string
	for _, a := range kube.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patched = append(patched, p.GetName()+" "+string(p.GetPatch()))
		}
	}
	if strings.Join(patched, "; ") != `db {"spec":{"replicas":0}}; backup {"spec":{"suspend":true}}` {
		t.Errorf("patched %v", patched)
	}
	// Run again: both are stopped already; nothing is patched.
	before := len(kube.Actions())
	if r := failover.Quiesce(context.Background(), kube, "shop", []string{"data-db-0"}, o); r.Err() != nil || r[0].Action != "none" {
		t.Errorf("second run: %+v", r[0])
	}
	for _, a := range kube.Actions()[before:] {
		if _, ok := a.(k8stesting.PatchAction); ok {
			t.Errorf("second run patched %v", a)
		}
	}
}

// A cluster without Argo Rollouts answers "not found" to a list of
// rollouts: nothing of the kind runs there, and quiesce goes on. Any other
// failure to list a kind it stops fails the step, naming the kind.
func TestQuiesceWithoutTheRolloutsResource(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{apierrors.NewNotFound(schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, ""), ""},
		{apierrors.NewForbidden(schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, "", errors.New("no rights")), "listing rollouts in shop"},
	} {
		kube := kubefake.Cluster(t, deployment("web", "data", 1), pod("web-0", "data", "web", corev1.PodRunning))
		kube.PrependReactor("list", "rollouts", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, c.err })
		o, _ := opts()
		o.Kinds = workload.Core.With(workload.Rollout) // the app has a Rollout
		err := failover.Quiesce(context.Background(), kube, "shop", []string{"data"}, o).Err()
		if c.want == "" && err != nil {
			t.Errorf("%v: %v", c.err, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: got %v, want %q", c.err, err, c.want)
		}
	}
}
