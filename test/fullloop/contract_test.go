package fullloop

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// This file is the one place that knows what the plugin renders for the
// Ceph side: which images the hook Jobs use, and which Secrets and
// ConfigMaps (in which namespace) they mount. Everything is read from the
// rendered Jobs; only the values are Rook's conventions. When the settings
// file takes the Ceph connection over (issue 11), this is what changes.

// hookImages are the project's image (the one that runs argocd-rbd-dr) and
// Rook's image (the one that runs toolbox.sh) of the rendered Jobs.
func hookImages(t *testing.T, objs []*unstructured.Unstructured) (ours, ceph string) {
	t.Helper()
	for _, j := range jobs(t, objs) {
		spec := j.Spec.Template.Spec
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			switch {
			case len(c.Command) > 0 && c.Command[0] == "argocd-rbd-dr":
				ours = c.Image
			case len(c.Command) > 0 && strings.HasSuffix(c.Command[0], "/toolbox.sh"):
				ceph = c.Image
			}
		}
	}
	if ours == "" || ceph == "" {
		t.Fatalf("could not tell the hook images apart in the rendered Jobs (ours %q, Rook's %q)", ours, ceph)
	}
	return ours, ceph
}

func jobs(t *testing.T, objs []*unstructured.Unstructured) []*batchv1.Job {
	t.Helper()
	var out []*batchv1.Job
	for _, o := range objs {
		if o.GetKind() != "Job" {
			continue
		}
		j := &batchv1.Job{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, j, true); err != nil {
			t.Fatalf("%s: %v", describe(o), err)
		}
		out = append(out, j)
	}
	return out
}

// rookFacts are what Rook keeps for a site, in the shape the Jobs read.
type rookFacts struct {
	monEndpoints string // "a=127.0.0.3:3300"
	adminKey     string
}

// rookValue is Rook's content for a key of the Secret or ConfigMap the Ceph
// Jobs mount (rook-ceph-mon, rook-ceph-mon-endpoints).
func rookValue(f rookFacts, kind, name, key string) (string, error) {
	switch key {
	case "ceph-secret":
		return f.adminKey, nil
	case "ceph-username":
		return "client.admin", nil
	case "data":
		return f.monEndpoints, nil
	}
	return "", fmt.Errorf("the Ceph hook Jobs read key %q of %s %s; the suite knows only Rook's ceph-secret, ceph-username (Secret rook-ceph-mon) and data (ConfigMap rook-ceph-mon-endpoints): teach rookValue", key, kind, name)
}

// cephObjects are the Secrets and ConfigMaps the rendered Ceph Jobs mount or
// read env from, filled as Rook would, in the Jobs' namespaces.
func cephObjects(t *testing.T, objs []*unstructured.Unstructured, f rookFacts) (secrets []*corev1.Secret, configMaps []*corev1.ConfigMap) {
	t.Helper()
	type ref struct{ ns, name string }
	sec, cms := map[ref]map[string]bool{}, map[ref]map[string]bool{}
	add := func(m map[ref]map[string]bool, r ref, keys ...string) {
		if m[r] == nil {
			m[r] = map[string]bool{}
		}
		for _, k := range keys {
			m[r][k] = true
		}
	}
	itemKeys := func(items []corev1.KeyToPath) []string {
		var ks []string
		for _, it := range items {
			ks = append(ks, it.Key)
		}
		return ks
	}
	for _, j := range jobs(t, objs) {
		spec := j.Spec.Template.Spec
		for _, v := range spec.Volumes {
			switch {
			case v.Secret != nil:
				add(sec, ref{j.Namespace, v.Secret.SecretName}, itemKeys(v.Secret.Items)...)
			case v.ConfigMap != nil:
				add(cms, ref{j.Namespace, v.ConfigMap.Name}, itemKeys(v.ConfigMap.Items)...)
			}
		}
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					add(sec, ref{j.Namespace, e.ValueFrom.SecretKeyRef.Name}, e.ValueFrom.SecretKeyRef.Key)
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					add(cms, ref{j.Namespace, e.ValueFrom.ConfigMapKeyRef.Name}, e.ValueFrom.ConfigMapKeyRef.Key)
				}
			}
		}
	}
	for r, keys := range sec {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name}, StringData: map[string]string{}}
		for _, k := range sortedKeys(keys) {
			v, err := rookValue(f, "Secret", r.name, k)
			if err != nil {
				t.Fatal(err)
			}
			s.StringData[k] = v
		}
		secrets = append(secrets, s)
	}
	for r, keys := range cms {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name}, Data: map[string]string{}}
		for _, k := range sortedKeys(keys) {
			v, err := rookValue(f, "ConfigMap", r.name, k)
			if err != nil {
				t.Fatal(err)
			}
			cm.Data[k] = v
		}
		configMaps = append(configMaps, cm)
	}
	return secrets, configMaps
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
