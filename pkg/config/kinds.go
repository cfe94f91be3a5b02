package config

import (
	"fmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// WorkloadKind teaches argocd-rbd-dr a custom kind that runs pods (an
// operator's database, say): where its pods' spec is, and which field
// stops it. Without it, such an object that mounts a protected claim is
// refused, since quiesce could not stop it before the demote.
type WorkloadKind struct {
	Group    string `yaml:"group"`
	Version  string `yaml:"version"`
	Kind     string `yaml:"kind"`
	Resource string `yaml:"resource"`
	// PodSpec is the dotted path of its pods' spec (spec.template.spec).
	PodSpec string `yaml:"podSpec"`
	// Replicas (set to 0) or Suspend (set to true) is the dotted path of
	// the field that stops it; exactly one.
	Replicas string `yaml:"replicas"`
	Suspend  string `yaml:"suspend"`
}

// kind is the workload model's view of it.
func (w WorkloadKind) kind() workload.Kind {
	k := workload.Kind{Group: w.Group, Version: w.Version, Name: w.Kind, Resource: w.Resource, PodSpec: workload.Path(w.PodSpec)}
	if w.Suspend != "" {
		k.StopPath, k.StopValue = workload.Path(w.Suspend), true
	} else {
		k.StopPath, k.StopValue = workload.Path(w.Replicas), int64(0)
	}
	return k
}

// Workloads is every kind argocd-rbd-dr knows under these settings.
func (s *Settings) Workloads() workload.Catalog {
	if s == nil {
		return workload.Builtin
	}
	var taught []workload.Kind
	for _, w := range s.WorkloadKinds {
		taught = append(taught, w.kind())
	}
	return workload.Builtin.With(taught...)
}

func (v *validator) workloadKinds(kinds []WorkloadKind) {
	seen := map[string]int{}
	for i, w := range kinds {
		at := fmt.Sprintf("workloadKinds[%d]", i)
		stop := "replicas"
		switch {
		case w.Replicas != "" && w.Suspend != "":
			v.addf(at, "gives both replicas and suspend; give the one field that stops a %s", w.Kind)
		case w.Suspend != "":
			stop = "suspend"
		case w.Replicas == "":
			v.addf(at, "gives neither replicas nor suspend: say which field stops a %s (replicas: spec.replicas, set to 0; or suspend: spec.suspend, set to true)", w.Kind)
			continue
		}
		for _, p := range workload.Check(w.kind()) {
			field := p.Field
			if field == "stop" {
				field = stop
			}
			v.addf(at+"."+field, "%s", p.Message)
		}
		key := w.Group + "/" + w.Kind
		if workload.Builtin.Has(w.kind()) {
			v.addf(at+".kind", "%s is built in; remove it from the settings", key)
		}
		if j, dup := seen[key]; dup {
			v.addf(at+".kind", "%s is already workloadKinds[%d]", key, j)
		} else {
			seen[key] = i
		}
	}
}
