// Package adopt reads a running app's claims and finds, for each, the RBD
// image ceph-csi provisioned for it: the volumes: of rbd-dr.yaml for an app
// that was deployed before argocd-rbd-dr. With Retain it also keeps those
// images when the claims are taken over (a claim deleted under the Delete
// reclaim policy that Rook's StorageClass sets deletes its image).
package adopt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

var (
	claimsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	volumesGVR = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}
)

// Claim is one claim of the app and the image behind it.
type Claim struct {
	// Volume is the entry for rbd-dr.yaml.
	Volume config.Volume
	// PV is the claim's PersistentVolume, and its reclaim policy as found.
	PV     string
	Policy corev1.PersistentVolumeReclaimPolicy
}

// Find reads every claim in the namespace (or only those named) and the RBD
// image of each. Every claim that cannot be adopted is reported, all at
// once, and then none is returned.
func Find(ctx context.Context, kube dynamic.Interface, namespace string, only []string) ([]Claim, error) {
	list, err := kube.Resource(claimsGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the claims in namespace %s: %w; check the context and that it may list persistentvolumeclaims there", namespace, err)
	}
	var claims []Claim
	var problems []error
	seen := map[string]bool{}
	for _, item := range list.Items {
		var pvc corev1.PersistentVolumeClaim
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &pvc); err != nil {
			return nil, fmt.Errorf("reading claim %s/%s: %w", namespace, item.GetName(), err)
		}
		if len(only) > 0 && !slices.Contains(only, pvc.Name) {
			continue
		}
		seen[pvc.Name] = true
		c, err := claimOf(ctx, kube, &pvc)
		if err != nil {
			problems = append(problems, fmt.Errorf("claim %s/%s: %w", namespace, pvc.Name, err))
			continue
		}
		claims = append(claims, c)
	}
	for _, name := range only {
		if !seen[name] {
			problems = append(problems, fmt.Errorf("claim %s/%s: not found", namespace, name))
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if len(claims) == 0 {
		return nil, fmt.Errorf("namespace %s has no claims to adopt", namespace)
	}
	return claims, nil
}

// claimOf reads the claim's PersistentVolume: a ceph-csi RBD volume names
// its pool and image in its volume attributes.
func claimOf(ctx context.Context, kube dynamic.Interface, pvc *corev1.PersistentVolumeClaim) (Claim, error) {
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return Claim{}, fmt.Errorf("is %s, not bound to a volume; adopt it once it is bound", phase(pvc.Status.Phase))
	}
	obj, err := kube.Resource(volumesGVR).Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return Claim{}, fmt.Errorf("reading its PersistentVolume %s: %w", pvc.Spec.VolumeName, err)
	}
	var pv corev1.PersistentVolume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pv); err != nil {
		return Claim{}, fmt.Errorf("reading its PersistentVolume %s: %w", pv.Name, err)
	}
	csi := pv.Spec.CSI
	if csi == nil || !strings.HasSuffix(csi.Driver, "rbd.csi.ceph.com") {
		driver := "not a CSI volume"
		if csi != nil {
			driver = "CSI driver " + csi.Driver
		}
		return Claim{}, fmt.Errorf("its PersistentVolume %s is not an RBD volume of ceph-csi (%s); argocd-rbd-dr moves only RBD images: leave it out with --claims, or list it under unprotected in rbd-dr.yaml", pv.Name, driver)
	}
	attrs := csi.VolumeAttributes
	pool, image := attrs["pool"], attrs["imageName"]
	if image == "" && attrs["staticVolume"] == "true" {
		image = csi.VolumeHandle // a static volume names its image in the handle
	}
	switch {
	case pool == "" || image == "":
		return Claim{}, fmt.Errorf("its PersistentVolume %s has no pool or imageName in its CSI volume attributes (pool %q, imageName %q), so its RBD image is not known; find it with `rbd ls` and declare it by hand", pv.Name, pool, image)
	case !config.ValidCephName(pool) || !config.ValidCephName(image):
		// They are written into rbd-dr.yaml as they are: checked as its loader would.
		return Claim{}, fmt.Errorf("its PersistentVolume %s names pool %q and image %q, which are not valid Ceph names", pv.Name, pool, image)
	case attrs["radosNamespace"] != "" && !config.ValidCephName(attrs["radosNamespace"]):
		return Claim{}, fmt.Errorf("its PersistentVolume %s names RADOS namespace %q, which is not a valid Ceph name", pv.Name, attrs["radosNamespace"])
	}
	size, ok := pv.Spec.Capacity[corev1.ResourceStorage]
	if !ok {
		return Claim{}, fmt.Errorf("its PersistentVolume %s states no storage capacity", pv.Name)
	}
	// ceph-csi names the image's RADOS namespace in the volume context; in
	// rbd-dr.yaml it is the platform's settings that give it (radosNamespace).
	vol := config.Volume{PVC: pvc.Name, Pool: pool, Namespace: attrs["radosNamespace"], Image: image, Size: size.String(), ImageFeatures: attrs["imageFeatures"], FSType: csi.FSType}
	return Claim{Volume: vol, PV: pv.Name, Policy: pv.Spec.PersistentVolumeReclaimPolicy}, nil
}

func phase(p corev1.PersistentVolumeClaimPhase) string {
	if p == "" {
		return "Pending"
	}
	return string(p)
}

// Retain sets the reclaim policy of every claim's volume to Retain, so that
// deleting a claim while it is taken over keeps its image. Those already
// Retain are left alone. It says what it changed, by volume.
func Retain(ctx context.Context, kube dynamic.Interface, claims []Claim) ([]string, error) {
	var changed []string
	for _, c := range claims {
		if c.Policy == corev1.PersistentVolumeReclaimRetain {
			continue
		}
		patch := []byte(`{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}`)
		if _, err := kube.Resource(volumesGVR).Patch(ctx, c.PV, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return changed, fmt.Errorf("setting PersistentVolume %s (claim %s) to Retain: %w", c.PV, c.Volume.PVC, err)
		}
		changed = append(changed, c.PV)
	}
	return changed, nil
}
