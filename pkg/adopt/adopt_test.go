package adopt_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil/kubefake"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/adopt"
)

// claim is a bound claim of namespace shop and its volume, as ceph-csi
// provisions them: the pool and image in the volume attributes, Delete.
func claim(name, pv string, csi *corev1.CSIPersistentVolumeSource) []runtime.Object {
	pvc := &corev1.PersistentVolumeClaim{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: pv},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	vol := &corev1.PersistentVolume{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: pv},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: csi}}}
	return []runtime.Object{pvc, vol}
}

func rbdCSI(pool, image string) *corev1.CSIPersistentVolumeSource {
	return &corev1.CSIPersistentVolumeSource{Driver: "rook-ceph.rbd.csi.ceph.com", VolumeHandle: "0001-0009-rook-ceph-0000000000000002-" + image, FSType: "ext4",
		VolumeAttributes: map[string]string{"clusterID": "rook-ceph", "pool": pool, "imageName": image, "imageFeatures": "layering"}}
}

func TestFindAndRetain(t *testing.T) {
	objs := append(claim("data", "pvc-1", rbdCSI("replicapool", "csi-vol-1")), claim("logs", "pvc-2", rbdCSI("replicapool", "csi-vol-2"))...)
	kube := kubefake.Cluster(t, objs...)
	ctx := context.Background()
	found, err := adopt.Find(ctx, kube, "shop", nil)
	if err != nil || len(found) != 2 {
		t.Fatalf("%v %+v", err, found)
	}
	if v := found[0].Volume; v.PVC != "data" || v.Spec() != "replicapool/csi-vol-1" || v.Size != "20Gi" || v.FSType != "ext4" || found[0].PV != "pvc-1" {
		t.Errorf("%+v", found[0])
	}
	if only, err := adopt.Find(ctx, kube, "shop", []string{"logs"}); err != nil || len(only) != 1 || only[0].Volume.PVC != "logs" {
		t.Errorf("--claims logs: %v %+v", err, only)
	}
	changed, err := adopt.Retain(ctx, kube, found)
	if err != nil || len(changed) != 2 {
		t.Fatalf("%v %v", err, changed)
	}
	again, _ := adopt.Find(ctx, kube, "shop", nil)
	if changed, err := adopt.Retain(ctx, kube, again); err != nil || len(changed) != 0 {
		t.Errorf("a second Retain changed %v (%v)", changed, err)
	}
	for _, c := range again {
		if c.Policy != corev1.PersistentVolumeReclaimRetain {
			t.Errorf("%s is %s", c.PV, c.Policy)
		}
	}
}

// Every claim that cannot be adopted is named, at once, with why; nothing
// is returned to act on.
func TestFindRefuses(t *testing.T) {
	var objs []runtime.Object
	objs = append(objs, claim("data", "pvc-1", rbdCSI("replicapool", "csi-vol-1"))...)
	objs = append(objs, claim("nfs", "pvc-2", &corev1.CSIPersistentVolumeSource{Driver: "nfs.csi.k8s.io", VolumeHandle: "x"})...)
	objs = append(objs, claim("noimage", "pvc-3", &corev1.CSIPersistentVolumeSource{Driver: "rook-ceph.rbd.csi.ceph.com", VolumeHandle: "x", VolumeAttributes: map[string]string{"pool": "replicapool"}})...)
	ns := rbdCSI("replicapool", "csi-vol-4")
	ns.VolumeAttributes["radosNamespace"] = "-team-a"
	objs = append(objs, claim("inns", "pvc-4", ns)...)
	objs = append(objs, claim("odd", "pvc-5", rbdCSI("replicapool", "img: {x}\nsize"))...)
	pending := claim("pending", "", nil)[0].(*corev1.PersistentVolumeClaim)
	pending.Status.Phase = corev1.ClaimPending
	objs = append(objs, pending)
	kube := kubefake.Cluster(t, objs...)
	found, err := adopt.Find(context.Background(), kube, "shop", nil)
	if found != nil || err == nil {
		t.Fatalf("found %+v, err %v", found, err)
	}
	for _, want := range []string{
		"claim shop/nfs: its PersistentVolume pvc-2 is not an RBD volume of ceph-csi (CSI driver nfs.csi.k8s.io)",
		`claim shop/noimage: its PersistentVolume pvc-3 has no pool or imageName in its CSI volume attributes (pool "replicapool", imageName "")`,
		`claim shop/inns: its PersistentVolume pvc-4 names RADOS namespace "-team-a", which is not a valid Ceph name`,
		"claim shop/pending: is Pending, not bound",
		`claim shop/odd: its PersistentVolume pvc-5 names pool "replicapool" and image "img: {x}\nsize", which are not valid Ceph names`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "shop/data") {
		t.Errorf("an adoptable claim is named: %v", err)
	}
	if _, err := adopt.Find(context.Background(), kube, "shop", []string{"data", "gone"}); err == nil || !strings.Contains(err.Error(), "claim shop/gone: not found") {
		t.Errorf("a claim that is not there: %v", err)
	}
	if _, err := adopt.Find(context.Background(), kube, "empty", nil); err == nil || !strings.Contains(err.Error(), "namespace empty has no claims") {
		t.Errorf("an empty namespace: %v", err)
	}
	// A namespace it may not read says so; patches never happened.
	kube.PrependReactor("list", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errForbidden
	})
	if _, err := adopt.Find(context.Background(), kube, "shop", nil); err == nil || !strings.Contains(err.Error(), "listing the claims in namespace shop") {
		t.Errorf("forbidden: %v", err)
	}
	for _, a := range kube.Actions() {
		if a.GetVerb() == "patch" {
			t.Errorf("Find patched %v", a)
		}
	}
}

var errForbidden = apierrors.NewForbidden(schema.GroupResource{Resource: "persistentvolumeclaims"}, "", errors.New("no rights"))

// A volume ceph-csi provisioned in a RADOS namespace (it names it in the
// volume context) is found with it: the target is pool/namespace/image.
func TestFindInARadosNamespace(t *testing.T) {
	src := rbdCSI("replicapool", "csi-vol-4")
	src.VolumeAttributes["radosNamespace"] = "team-a"
	kube := kubefake.Cluster(t, claim("data", "pvc-4", src)...)
	found, err := adopt.Find(context.Background(), kube, "shop", nil)
	if err != nil || len(found) != 1 {
		t.Fatalf("%v %+v", err, found)
	}
	if v := found[0].Volume; v.Namespace != "team-a" || v.Spec() != "replicapool/team-a/csi-vol-4" || v.Pool != "replicapool" || v.Image != "csi-vol-4" {
		t.Errorf("%+v", v)
	}
}
