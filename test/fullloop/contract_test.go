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

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// This file is the one place that knows what the plugin renders for the
// Ceph side: which images the hook Jobs use, which CephX users they run as
// (their own, and the peer reader on the other site), and which Secrets (in
// which namespace) hold their keys. Everything is read from the rendered
// Jobs; the suite then does what Rook and the platform team would (a
// CephClient becomes a CephX user, its key a Secret).

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

// cephJob is a rendered Ceph Job with the request its command line parses
// to, by the hook contract's own parser.
type cephJob struct {
	job *batchv1.Job
	req hookcmd.Request
}

func cephJobs(t *testing.T, objs []*unstructured.Unstructured) []cephJob {
	t.Helper()
	var out []cephJob
	for _, j := range jobs(t, objs) {
		if cephID(j) == "" {
			continue
		}
		c := j.Spec.Template.Spec.Containers[0]
		req, err := hookcmd.Parse(c.Command[len(c.Command)-1], c.Args)
		if err != nil {
			t.Fatalf("Job %s/%s: %v", j.Namespace, j.Name, err)
		}
		out = append(out, cephJob{j, req})
	}
	return out
}

// keySource is the Secret and the key in it that the Job's container finds
// at file, or "" "".
func keySource(j *batchv1.Job, file string) (secret, key string) {
	s, _, key := testutil.SecretFile(j.Spec.Template.Spec, file)
	if s == nil {
		return "", ""
	}
	return s.SecretName, key
}

// cephSecrets are the Secrets the rendered Ceph Jobs of site mount, each key
// holding what the platform team copies there from Rook: the key of the
// Job's own user (--ceph-id, read from --ceph-keyfile) as made on site, and
// the key of the peer reader (--peer-ceph-id, --peer-ceph-keyfile) as made on
// the site whose monitors --peer-ceph-mon-host names (siteOf). keyOf makes a
// user on a site. users are the users made, as user@site.
func cephSecrets(t *testing.T, objs []*unstructured.Unstructured, site string, siteOf func(monHost string) (string, error),
	keyOf func(site, user string) (string, error)) (secrets []*corev1.Secret, users []string) {
	t.Helper()
	byRef := map[[2]string]*corev1.Secret{}
	for _, cj := range cephJobs(t, objs) {
		j := cj.job
		type cred struct{ site, user, file string }
		creds := []cred{{site, cj.req.Ceph.ID, cj.req.Ceph.KeyFile}}
		if p := cj.req.Peer; p != (rbd.Conn{}) {
			peer, err := siteOf(p.MonHost)
			if err != nil {
				t.Fatalf("Job %s/%s: --peer-ceph-mon-host: %v", j.Namespace, j.Name, err)
			}
			creds = append(creds, cred{peer, p.ID, p.KeyFile})
		}
		used := map[string]bool{}
		for _, c := range creds {
			name, item := keySource(j, c.file)
			if name == "" {
				t.Fatalf("Job %s/%s reads %s's key from %s, which no Secret volume of it provides", j.Namespace, j.Name, c.user, c.file)
			}
			used[name] = true
			key, err := keyOf(c.site, c.user)
			if err != nil {
				t.Fatal(err)
			}
			users = appendNew(users, c.user+"@"+c.site)
			ref := [2]string{j.Namespace, name}
			s := byRef[ref]
			if s == nil {
				s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: j.Namespace, Name: name}, StringData: map[string]string{}}
				byRef[ref] = s
				secrets = append(secrets, s)
			}
			if old, ok := s.StringData[item]; ok && old != key {
				t.Fatalf("Secret %s/%s key %s would hold two CephX keys (one of %s@%s)", j.Namespace, name, item, c.user, c.site)
			}
			s.StringData[item] = key
		}
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil || (v.Secret != nil && !used[v.Secret.SecretName]) {
				t.Fatalf("Job %s/%s mounts volume %s, which is no key file of its command line: the suite does not know what Rook would put there; teach cephSecrets", j.Namespace, j.Name, v.Name)
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
