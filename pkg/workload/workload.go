// Package workload is the one model of the objects that mount an app's
// claims: which kinds run pods and where their pod spec is, which claims an
// object mounts (its pods' volumes, and a StatefulSet's volumeClaimTemplates
// as <template>-<statefulset>-<ordinal>), and how each kind is stopped. The
// renderer's checks and passive transform, and the quiesce hook, read it
// from here, so that what the renderer counts as stoppable is exactly what
// quiesce stops.
package workload

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Kind is one kind of object that runs pods.
type Kind struct {
	Group, Name string
	// Resource is the API resource, for listing and patching.
	Resource string
	// PodSpec is where the object keeps its pods' spec.
	PodSpec []string
	// StopField is the spec field that stops it, StopValue what it is set
	// to (replicas 0, suspend true); "" when argocd-rbd-dr cannot stop it.
	StopField string
	StopValue any
}

// Kinds are the kinds that run pods, in their own API groups (a custom
// resource that shares a kind name is none of them).
var Kinds = []Kind{
	{Group: "apps", Name: "Deployment", Resource: "deployments", PodSpec: []string{"spec", "template", "spec"}, StopField: "replicas", StopValue: int64(0)},
	{Group: "apps", Name: "StatefulSet", Resource: "statefulsets", PodSpec: []string{"spec", "template", "spec"}, StopField: "replicas", StopValue: int64(0)},
	{Group: "batch", Name: "CronJob", Resource: "cronjobs", PodSpec: []string{"spec", "jobTemplate", "spec", "template", "spec"}, StopField: "suspend", StopValue: true},
	{Group: "apps", Name: "DaemonSet", Resource: "daemonsets", PodSpec: []string{"spec", "template", "spec"}},
	{Group: "apps", Name: "ReplicaSet", Resource: "replicasets", PodSpec: []string{"spec", "template", "spec"}},
	{Group: "", Name: "ReplicationController", Resource: "replicationcontrollers", PodSpec: []string{"spec", "template", "spec"}},
	{Group: "batch", Name: "Job", Resource: "jobs", PodSpec: []string{"spec", "template", "spec"}},
	{Group: "", Name: "Pod", Resource: "pods", PodSpec: []string{"spec"}},
}

// Lookup finds a kind by its API group and name.
func Lookup(group, name string) (Kind, bool) {
	i := slices.IndexFunc(Kinds, func(k Kind) bool { return k.Group == group && k.Name == name })
	if i < 0 {
		return Kind{}, false
	}
	return Kinds[i], true
}

// Stoppable lists the kinds argocd-rbd-dr stops before it demotes.
func Stoppable() []Kind {
	var out []Kind
	for _, k := range Kinds {
		if k.CanStop() {
			out = append(out, k)
		}
	}
	return out
}

// CanStop says whether argocd-rbd-dr can stop objects of the kind: scale a
// Deployment or StatefulSet to 0, suspend a CronJob. A DaemonSet, a bare
// Pod, a Job or a ReplicaSet would keep writing to an image being demoted.
func (k Kind) CanStop() bool { return k.StopField != "" }

// Stopped says whether obj is stopped already.
func (k Kind) Stopped(obj map[string]any) bool {
	if !k.CanStop() {
		return false
	}
	v, found, _ := unstructured.NestedFieldNoCopy(obj, "spec", k.StopField)
	if b, ok := k.StopValue.(bool); ok {
		return found && v == b
	}
	n, ok := number(v)
	stop, _ := number(k.StopValue)
	return found && ok && n == stop
}

// StopPatch is the JSON merge patch that stops an object of the kind.
func (k Kind) StopPatch() []byte {
	switch v := k.StopValue.(type) {
	case bool:
		return fmt.Appendf(nil, `{"spec":{%q:%t}}`, k.StopField, v)
	default:
		return fmt.Appendf(nil, `{"spec":{%q:%v}}`, k.StopField, v)
	}
}

// StopReport says, for reports, what stopping the named object did:
// "scaled Deployment web to 0", "suspended CronJob backup".
func (k Kind) StopReport(name string) string {
	if _, suspend := k.StopValue.(bool); suspend {
		return "suspended " + k.Name + " " + name
	}
	return fmt.Sprintf("scaled %s %s to %v", k.Name, name, k.StopValue)
}

// Claims are the PersistentVolumeClaims an object of the kind mounts, in
// the order it names them: its pods' volumes, and for a StatefulSet each
// replica's claim of each volumeClaimTemplate.
func (k Kind) Claims(obj map[string]any) ([]string, error) {
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
