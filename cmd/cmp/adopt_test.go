package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// runAdopt runs adopt against the fake API kube.
func runAdopt(t *testing.T, kube dynamic.Interface, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"adopt"}, args...), system{
		getenv: func(string) string { return "" },
		getwd:  os.Getwd,
		stdout: &stdout, stderr: &stderr,
		kube: kube,
	})
	return code, stdout.String(), stderr.String()
}

// The WordPress example's claims as a dynamically provisioned install has
// them: ceph-csi volumes under the Delete reclaim policy.
func dynamicWordPress(t *testing.T) dynamic.Interface {
	var objs []runtime.Object
	for i, name := range []string{"mysql-pv-claim", "wp-pv-claim"} {
		pv := "pvc-" + string(rune('a'+i))
		objs = append(objs,
			&corev1.PersistentVolumeClaim{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "wordpress"},
				Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: pv},
				Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}},
			&corev1.PersistentVolume{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
				ObjectMeta: metav1.ObjectMeta{Name: pv},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")},
					PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
					PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
						Driver: "rook-ceph.rbd.csi.ceph.com", VolumeHandle: "0001-" + pv, FSType: "ext4",
						VolumeAttributes: map[string]string{"clusterID": "rook-ceph", "pool": "replicapool", "imageName": "csi-vol-" + pv}}}}})
	}
	return kubefake.Cluster(t, objs...)
}

func reclaimPolicies(t *testing.T, kube dynamic.Interface) string {
	t.Helper()
	list, err := kube.Resource(schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, pv := range list.Items {
		p, _, _ := unstructured.NestedString(pv.Object, "spec", "persistentVolumeReclaimPolicy")
		out = append(out, pv.GetName()+"="+p)
	}
	return strings.Join(out, " ")
}

// Printed, the volumes: block is all of stdout (ready to paste), the steps
// on stderr; nothing changes without --apply.
func TestAdoptPrints(t *testing.T) {
	kube := dynamicWordPress(t)
	code, out, stderr := runAdopt(t, kube, "--namespace", "wordpress")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := config.VolumesBlock([]config.Volume{
		{PVC: "mysql-pv-claim", Pool: "replicapool", Image: "csi-vol-pvc-a", Size: "20Gi"},
		{PVC: "wp-pv-claim", Pool: "replicapool", Image: "csi-vol-pvc-b", Size: "20Gi"},
	})
	if out != want {
		t.Errorf("stdout:\n%s\nwant\n%s", out, want)
	}
	for _, s := range []string{"run again with --apply", "rbd mirror image enable replicapool/csi-vol-pvc-a snapshot", "kubectl -n wordpress delete pvc mysql-pv-claim wp-pv-claim", "kubectl delete pv pvc-a pvc-b"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("the steps do not say %q:\n%s", s, stderr)
		}
	}
	if got := reclaimPolicies(t, kube); got != "pvc-a=Delete pvc-b=Delete" {
		t.Errorf("without --apply the volumes changed: %s", got)
	}
}

// --write sets the volumes of an existing rbd-dr.yaml, --apply the volumes
// to Retain; a file the volumes would make invalid stops both.
func TestAdoptWritesAndApplies(t *testing.T) {
	kube := dynamicWordPress(t)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(example)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "rbd-dr.yaml")
	code, out, stderr := runAdopt(t, kube, "-n", "wordpress", "--write", file, "--apply")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "volumes set from 2 claim(s) of namespace wordpress") || !strings.Contains(out, "changed now: 2") {
		t.Errorf("stdout:\n%s", out)
	}
	p, err := config.Load(dir, dir)
	if err != nil || len(p.Volumes) != 2 || p.Volumes[1].Image != "csi-vol-pvc-b" || p.ActiveSite != "site-a" {
		t.Errorf("%v %+v", err, p)
	}
	if got := reclaimPolicies(t, kube); got != "pvc-a=Retain pvc-b=Retain" {
		t.Errorf("after --apply: %s", got)
	}

	// A file that is not valid with the volumes either (its activeSite is
	// no site) stops the write, and the volumes stay as they were.
	kube = dynamicWordPress(t)
	broken := filepath.Join(t.TempDir(), "rbd-dr.yaml")
	if err := os.WriteFile(broken, []byte("apiVersion: rbd-dr.io/v1alpha1\nkind: FailoverPolicy\nactiveSite: nowhere\nsites: [{name: a}, {name: b}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runAdopt(t, kube, "-n", "wordpress", "--write", broken, "--apply")
	if code != 1 || !strings.Contains(stderr, "would not be valid; nothing changed") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if got := reclaimPolicies(t, kube); got != "pvc-a=Delete pvc-b=Delete" {
		t.Errorf("a refused write still changed the volumes: %s", got)
	}
	if code, _, stderr := runAdopt(t, kube, "--apply"); code != 1 || !strings.Contains(stderr, "give --namespace") {
		t.Errorf("no namespace: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runAdopt(t, kube, "-n", "nowhere", "--apply"); code != 1 || !strings.Contains(stderr, "nothing changed: namespace nowhere has no claims to adopt") {
		t.Errorf("an empty namespace: exit %d: %s", code, stderr)
	}
}
