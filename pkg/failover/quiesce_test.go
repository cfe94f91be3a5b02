package failover_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
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
