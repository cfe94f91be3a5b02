package fullloop

import (
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
// Ceph side: which images the hook Jobs use, which CephX user they run as,
// and which Secrets (in which namespace) hold its key. Everything is read
// from the rendered Jobs; the suite then does what Rook would (a CephClient
// becomes a CephX user, its key a Secret).

// hookImages are the project's image (the one that runs argocd-rbd-dr, to
// copy itself into the Ceph Jobs) and Rook's image (the Ceph Jobs' other
// containers, which run rbd) of the rendered Jobs.
func hookImages(t *testing.T, objs []*unstructured.Unstructured) (ours, ceph string) {
	t.Helper()
	for _, j := range jobs(t, objs) {
		for _, c := range containers(j) {
			if len(c.Command) > 0 && c.Command[0] == "argocd-rbd-dr" {
				ours = c.Image
			}
		}
	}
	for _, j := range jobs(t, objs) {
		if cephID(j) == "" {
			continue
		}
		for _, c := range containers(j) {
			if c.Image != ours {
				ceph = c.Image
			}
		}
	}
	if ours == "" || ceph == "" {
		t.Fatalf("could not tell the hook images apart in the rendered Jobs (ours %q, Rook's %q)", ours, ceph)
	}
	return ours, ceph
}

func containers(j *batchv1.Job) []corev1.Container {
	spec := j.Spec.Template.Spec
	return append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
}

// cephID is the CephX user a Ceph Job runs as (its --ceph-id), or "".
func cephID(j *batchv1.Job) string {
	for _, c := range containers(j) {
		for _, a := range c.Args {
			if id, ok := strings.CutPrefix(a, "--ceph-id="); ok {
				return id
			}
		}
	}
	return ""
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

// cephSecrets are the Secrets the rendered Ceph Jobs mount, each with the
// key of the Job's CephX user (keyOf) under every key the Job reads: what
// the platform team copies from Rook's CephClient Secret into the app's
// namespace. users are the CephX users the Jobs run as.
func cephSecrets(t *testing.T, objs []*unstructured.Unstructured, keyOf func(user string) (string, error)) (secrets []*corev1.Secret, users []string) {
	t.Helper()
	byRef := map[[2]string]*corev1.Secret{}
	for _, j := range jobs(t, objs) {
		id := cephID(j)
		if id == "" {
			continue
		}
		users = appendNew(users, id)
		key, err := keyOf(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				t.Fatalf("Job %s/%s mounts ConfigMap %s: the suite does not know what Rook would put there; teach cephSecrets", j.Namespace, j.Name, v.ConfigMap.Name)
			}
			if v.Secret == nil {
				continue
			}
			ref := [2]string{j.Namespace, v.Secret.SecretName}
			s := byRef[ref]
			if s == nil {
				s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: j.Namespace, Name: v.Secret.SecretName}, StringData: map[string]string{}}
				byRef[ref] = s
				secrets = append(secrets, s)
			}
			for _, it := range v.Secret.Items {
				s.StringData[it.Key] = key
			}
			if len(v.Secret.Items) == 0 {
				s.StringData[id] = key
			}
		}
	}
	sort.Slice(secrets, func(i, j int) bool {
		return secrets[i].Namespace+"/"+secrets[i].Name < secrets[j].Namespace+"/"+secrets[j].Name
	})
	return secrets, users
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
