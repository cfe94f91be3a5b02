package config

import (
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// HookPods says how every pod argocd-rbd-dr renders (the hook Jobs' and
// the rpo-check's) is sized and scheduled, so that a namespace's quota, a
// tainted node pool or a private registry does not stop a failover.
type HookPods struct {
	// Resources of every container; DefaultHookResources when unset.
	Resources *Resources `yaml:"resources"`
	// NodeSelector, Tolerations and PriorityClassName are the pods'.
	NodeSelector      map[string]string `yaml:"nodeSelector"`
	Tolerations       []Toleration      `yaml:"tolerations"`
	PriorityClassName string            `yaml:"priorityClassName"`
	// ImagePullSecrets are Secrets in the app's namespace.
	ImagePullSecrets []string `yaml:"imagePullSecrets"`
}

// Resources are a container's requests and limits (cpu, memory,
// ephemeral-storage), as Kubernetes quantities.
type Resources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

// Toleration is a pod's toleration of a taint.
type Toleration struct {
	Key               string `yaml:"key"`
	Operator          string `yaml:"operator"`
	Value             string `yaml:"value"`
	Effect            string `yaml:"effect"`
	TolerationSeconds *int64 `yaml:"tolerationSeconds"`
}

// DefaultHookResources: a step is one process running the rbd CLI, a few
// tens of MiB; a request lets a namespace quota that requires one admit the
// pod, and the memory limit keeps a stuck rbd from taking the node's.
func DefaultHookResources() *Resources {
	return &Resources{
		Requests: map[string]string{"cpu": "50m", "memory": "128Mi"},
		Limits:   map[string]string{"memory": "512Mi"},
	}
}

var resourceNames = []string{"cpu", "memory", "ephemeral-storage"}

func (v *validator) hookPods(h *HookPods) {
	if h.Resources == nil {
		h.Resources = DefaultHookResources()
	}
	for _, part := range []string{"requests", "limits"} {
		list := map[string]map[string]string{"requests": h.Resources.Requests, "limits": h.Resources.Limits}[part]
		for _, name := range slices.Sorted(maps.Keys(list)) {
			q := list[name]
			field := fmt.Sprintf("hookPods.resources.%s.%s", part, name)
			if !slices.Contains(resourceNames, name) {
				v.addf(field, "is not a resource a hook pod can ask for; use cpu, memory or ephemeral-storage")
			} else if _, err := resource.ParseQuantity(q); err != nil {
				v.addf(field, "%s is not a quantity (e.g. 100m, 128Mi)", quote(q))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(h.NodeSelector)) {
		val := h.NodeSelector[k]
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			v.addf("hookPods.nodeSelector", "%s is not a label key: %s", quote(k), errs[0])
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			v.addf("hookPods.nodeSelector."+k, "%s is not a label value: %s", quote(val), errs[0])
		}
	}
	for i, t := range h.Tolerations {
		at := fmt.Sprintf("hookPods.tolerations[%d]", i)
		if !slices.Contains([]string{"", "Exists", "Equal"}, t.Operator) {
			v.addf(at+".operator", "%s is not Exists or Equal", quote(t.Operator))
		}
		if !slices.Contains([]string{"", "NoSchedule", "PreferNoSchedule", "NoExecute"}, t.Effect) {
			v.addf(at+".effect", "%s is not NoSchedule, PreferNoSchedule or NoExecute", quote(t.Effect))
		}
		if t.Operator == "Exists" && t.Value != "" {
			v.addf(at+".value", "must be empty with operator Exists")
		}
		if t.Key != "" {
			if errs := validation.IsQualifiedName(t.Key); len(errs) > 0 {
				v.addf(at+".key", "%s is not a taint key: %s", quote(t.Key), errs[0])
			}
		}
	}
	if h.PriorityClassName != "" {
		v.dnsSubdomain("hookPods.priorityClassName", "PriorityClass", h.PriorityClassName)
	}
	for i, name := range h.ImagePullSecrets {
		v.dnsSubdomain(fmt.Sprintf("hookPods.imagePullSecrets[%d]", i), "Secret", name)
	}
}
