// Package workload is the one model of the objects that mount an app's
// claims: which kinds run pods and where their pod spec is, which claims an
// object mounts (its pods' volumes, and a StatefulSet's volumeClaimTemplates
// as <template>-<statefulset>-<ordinal>), and how each kind is stopped. The
// renderer's checks and passive transform, and the quiesce hook, read it
// from here, so that what the renderer counts as stoppable is exactly what
// quiesce stops.
package workload

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Kind is one kind of object that runs pods.
type Kind struct {
	Group, Version, Name string
	// Resource is the API resource, for listing and patching.
	Resource string
	// PodSpec is where the object keeps its pods' spec; nil for a kind
	// nobody taught argocd-rbd-dr (Unknown), whose claims are read from
	// anywhere in the object.
	PodSpec []string
	// StopPath is the field that stops it, StopValue what it is set to
	// (replicas 0, suspend true); nil when argocd-rbd-dr cannot stop it.
	StopPath  []string
	StopValue any
	// StartValue is what the field is when git leaves it out (replicas 1,
	// suspend false): the active site's rendering states it, so that a stop
	// made outside git (quiesce's patch, a person's during an adoption) is
	// undone by the next sync. nil: not known (a taught kind), left out.
	StartValue any
}

// Catalog is the kinds argocd-rbd-dr knows: the built-in ones and those
// the platform's settings teach it.
type Catalog []Kind

// The kinds argocd-rbd-dr stops.
var (
	Deployment  = Kind{Group: "apps", Version: "v1", Name: "Deployment", Resource: "deployments", PodSpec: podTemplate, StopPath: replicas, StopValue: int64(0), StartValue: int64(1)}
	StatefulSet = Kind{Group: "apps", Version: "v1", Name: "StatefulSet", Resource: "statefulsets", PodSpec: podTemplate, StopPath: replicas, StopValue: int64(0), StartValue: int64(1)}
	CronJob     = Kind{Group: "batch", Version: "v1", Name: "CronJob", Resource: "cronjobs", PodSpec: []string{"spec", "jobTemplate", "spec", "template", "spec"}, StopPath: []string{"spec", "suspend"}, StopValue: true, StartValue: false}
	// Rollout is Argo Rollouts' kind: its pod template and replicas are
	// where a Deployment has them. One with spec.workloadRef runs the pods
	// of a Deployment's template: that Deployment mounts the claims.
	Rollout = Kind{Group: "argoproj.io", Version: "v1alpha1", Name: "Rollout", Resource: "rollouts", PodSpec: podTemplate, StopPath: replicas, StopValue: int64(0), StartValue: int64(1)}
)

// Core are the kinds quiesce always stops: every cluster serves them. A
// Rollout or a kind the settings teach is stopped, and its rights granted,
// only where the app has one (the renderer passes it with --workload-kind):
// granting rights on a resource takes holding them, which Argo CD's
// controller may not for a kind the cluster does not serve.
var Core = Catalog{Deployment, StatefulSet, CronJob}

// Builtin are the kinds known without settings, in their own API groups (a
// custom resource that shares a kind name is none of them).
var Builtin = Core.With(
	Rollout,
	Kind{Group: "apps", Version: "v1", Name: "DaemonSet", Resource: "daemonsets", PodSpec: podTemplate},
	Kind{Group: "apps", Version: "v1", Name: "ReplicaSet", Resource: "replicasets", PodSpec: podTemplate},
	Kind{Group: "", Version: "v1", Name: "ReplicationController", Resource: "replicationcontrollers", PodSpec: podTemplate},
	Kind{Group: "batch", Version: "v1", Name: "Job", Resource: "jobs", PodSpec: podTemplate},
	Kind{Group: "", Version: "v1", Name: "Pod", Resource: "pods", PodSpec: []string{"spec"}},
)

var (
	podTemplate = []string{"spec", "template", "spec"}
	replicas    = []string{"spec", "replicas"}
)

// With is the catalog and the kinds taught by the settings.
func (c Catalog) With(taught ...Kind) Catalog { return append(slices.Clip(c), taught...) }

// Lookup finds a kind by its API group and name.
func (c Catalog) Lookup(group, name string) (Kind, bool) {
	i := slices.IndexFunc(c, func(k Kind) bool { return k.Group == group && k.Name == name })
	if i < 0 {
		return Kind{}, false
	}
	return c[i], true
}

// Has says whether the catalog holds the kind.
func (c Catalog) Has(k Kind) bool {
	_, ok := c.Lookup(k.Group, k.Name)
	return ok
}

// Stoppable lists the kinds argocd-rbd-dr stops before it demotes.
func (c Catalog) Stoppable() []Kind {
	var out []Kind
	for _, k := range c {
		if k.CanStop() {
			out = append(out, k)
		}
	}
	return out
}

// Unknown is an object's kind that the catalog does not hold: its claims
// are found wherever the object names one, and it cannot be stopped.
func Unknown(group, name string) Kind { return Kind{Group: group, Name: name} }

// IsUnknown says whether the kind was made by Unknown.
func (k Kind) IsUnknown() bool { return k.PodSpec == nil }

// CanStop says whether argocd-rbd-dr can stop objects of the kind: scale a
// Deployment or StatefulSet to 0, suspend a CronJob. A DaemonSet, a bare
// Pod, a Job or a ReplicaSet would keep writing to an image being demoted.
func (k Kind) CanStop() bool { return len(k.StopPath) > 0 }

// Stopped says whether obj is stopped already.
func (k Kind) Stopped(obj map[string]any) bool {
	if !k.CanStop() {
		return false
	}
	v, found, _ := unstructured.NestedFieldNoCopy(obj, k.StopPath...)
	if b, ok := k.StopValue.(bool); ok {
		return found && v == b
	}
	n, ok := number(v)
	stop, _ := number(k.StopValue)
	return found && ok && n == stop
}

// StopPatch is the JSON merge patch that stops an object of the kind.
func (k Kind) StopPatch() []byte {
	var patch any = k.StopValue
	for i := len(k.StopPath) - 1; i >= 0; i-- {
		patch = map[string]any{k.StopPath[i]: patch}
	}
	out, _ := json.Marshal(patch) // maps, strings, int64 and bool always marshal
	return out
}

// StopReport says, for reports, what stopping the named object did:
// "scaled Deployment web to 0", "suspended CronJob backup".
func (k Kind) StopReport(name string) string {
	if _, suspend := k.StopValue.(bool); suspend {
		return "suspended " + k.Name + " " + name
	}
	return fmt.Sprintf("scaled %s %s to %v", k.Name, name, k.StopValue)
}

// claimsAnywhere finds every persistentVolumeClaim.claimName in v, at any
// depth: where a kind nobody taught keeps its pods is not known.
func claimsAnywhere(v any, out []string) []string {
	switch t := v.(type) {
	case map[string]any:
		if pvc, ok := t["persistentVolumeClaim"].(map[string]any); ok {
			if name, ok := pvc["claimName"].(string); ok && name != "" && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(t)) {
			out = claimsAnywhere(t[key], out)
		}
	case []any:
		for _, item := range t {
			out = claimsAnywhere(item, out)
		}
	}
	return out
}

// Claims are the PersistentVolumeClaims an object of the kind mounts, in
// the order it names them: its pods' volumes, and for a StatefulSet each
// replica's claim of each volumeClaimTemplate.
func (k Kind) Claims(obj map[string]any) ([]string, error) {
	if k.IsUnknown() {
		return claimsAnywhere(obj, nil), nil
	}
	var out []string
	volumes, _, _ := unstructured.NestedSlice(obj, append(slices.Clone(k.PodSpec), "volumes")...)
	for _, v := range volumes {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if name, ok, _ := unstructured.NestedString(m, "persistentVolumeClaim", "claimName"); ok && name != "" {
			out = append(out, name)
		}
	}
	if k.Group != "apps" || k.Name != "StatefulSet" {
		return out, nil
	}
	tmpls, _, _ := unstructured.NestedSlice(obj, "spec", "volumeClaimTemplates")
	if len(tmpls) == 0 {
		return out, nil
	}
	replicas := int64(1)
	if r, found, _ := unstructured.NestedFieldNoCopy(obj, "spec", "replicas"); found {
		n, ok := number(r)
		if !ok || n < 0 {
			return nil, fmt.Errorf("spec.replicas %v is not a count", r)
		}
		replicas = n
	}
	name, _, _ := unstructured.NestedString(obj, "metadata", "name")
	for _, t := range tmpls {
		m, _ := t.(map[string]any)
		tmpl, _, _ := unstructured.NestedString(m, "metadata", "name")
		for i := range replicas {
			out = append(out, fmt.Sprintf("%s-%s-%d", tmpl, name, i))
		}
	}
	return out, nil
}

// number reads a whole number as JSON, YAML or the API gives it.
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}
