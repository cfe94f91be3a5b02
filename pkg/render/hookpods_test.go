package render_test

import (
	"encoding/json"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// Every pod the plugin renders (each hook Job's and the rpo-check's) is
// sized and placed as the settings' hookPods say; by default it carries
// requests and a memory limit, so a quota that demands them admits it.
func TestHookPodsFromSettings(t *testing.T) {
	pods := func(t *testing.T, settings *config.Settings) []corev1.PodSpec {
		var out []corev1.PodSpec
		for _, site := range []string{"site-a", "site-b"} {
			for _, o := range objects(t, toYAML(t, renderExampleWith(t, site, "", func(p *config.Policy) { p.ForcePromote = true }, settings))) {
				b, _ := json.Marshal(o.Object)
				switch o.GetKind() {
				case "Job":
					var j batchv1.Job
					if err := json.Unmarshal(b, &j); err != nil {
						t.Fatal(err)
					}
					out = append(out, j.Spec.Template.Spec)
				case "CronJob":
					var cj batchv1.CronJob
					if err := json.Unmarshal(b, &cj); err != nil {
						t.Fatal(err)
					}
					out = append(out, cj.Spec.JobTemplate.Spec.Template.Spec)
				}
			}
		}
		if len(out) != 6 { // promote, check; quiesce, demote, resync, check
			t.Fatalf("%d pods, want 6", len(out))
		}
		return out
	}
	for _, pod := range pods(t, exampleSettings(t)) {
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			if c.Resources.Requests.Cpu().Cmp(resource.MustParse("50m")) != 0 || c.Resources.Limits.Memory().Cmp(resource.MustParse("512Mi")) != 0 {
				t.Errorf("%s: default resources %+v", c.Name, c.Resources)
			}
		}
	}

	settings := exampleSettings(t)
	seconds := int64(30)
	settings.HookPods = config.HookPods{
		Resources:         &config.Resources{Requests: map[string]string{"cpu": "100m", "memory": "64Mi"}, Limits: map[string]string{"cpu": "1", "memory": "256Mi"}},
		NodeSelector:      map[string]string{"node-role.kubernetes.io/infra": ""},
		Tolerations:       []config.Toleration{{Key: "dedicated", Operator: "Equal", Value: "infra", Effect: "NoSchedule"}, {Key: "node.kubernetes.io/unreachable", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: &seconds}},
		PriorityClassName: "rbd-dr-failover",
		ImagePullSecrets:  []string{"registry-pull"},
	}
	for _, pod := range pods(t, settings) {
		if _, ok := pod.NodeSelector["node-role.kubernetes.io/infra"]; !ok || len(pod.Tolerations) != 2 || *pod.Tolerations[1].TolerationSeconds != 30 ||
			pod.PriorityClassName != "rbd-dr-failover" || len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "registry-pull" {
			t.Errorf("pod placement: %+v", pod)
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			if c.Resources.Limits.Cpu().Cmp(resource.MustParse("1")) != 0 || c.Resources.Requests.Memory().Cmp(resource.MustParse("64Mi")) != 0 {
				t.Errorf("%s: resources %+v", c.Name, c.Resources)
			}
		}
	}
}
