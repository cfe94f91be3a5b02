package fullloop

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// The adoption scenario (docs/adopt.md, followed literally): a team's app
// already runs on one site with claims provisioned the dynamic way (reclaim
// policy Delete), outside argocd-rbd-dr. `argocd-rbd-dr adopt` finds the
// images and keeps them (Retain); the platform mirrors them; the team stops
// the app, lets go of the claims, and hands the folder to the plugin, which
// starts the app on the same data and then relocates it.

// adoptName is the adopted app's name, namespace, pool, CephX user and
// AppProject: a copy of the inventory example (a StatefulSet with claim
// templates and a CronJob) in a namespace of its own.
const adoptName = "shop"

// adopteeTenant is what the platform adds to the settings to onboard the
// team (without a peer reader: that path runs too).
const adopteeTenant = `namespace: shop
project: shop
pools: [shop]
cephUser: shop
cephSecret: {name: rbd-dr-ceph-shop}
rpo: ` + suiteRPO

// adoptRuns says whether the adoption scenario runs: with the default apps
// (RBD_DR_FULLLOOP_APP unset), whose sites it shares.
func adoptRuns() bool { return os.Getenv("RBD_DR_FULLLOOP_APP") == "" }

// newAdoptee copies the inventory example into its own repository as the
// team's app folder in namespace shop. Its volumes: are what adopt writes.
func newAdoptee(t *testing.T, bin, root, repo, settings string) *app {
	t.Helper()
	src := filepath.Join(root, "examples", "inventory")
	a := &app{source: src, bin: bin, repo: repo, path: "apps/" + adoptName, settings: settings}
	if err := os.CopyFS(a.dir(), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	// Every kustomization that sets the namespace (the base, and each
	// overlay) sets shop instead.
	changed := 0
	err := filepath.WalkDir(a.dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		k, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(k), "namespace: inventory\n") {
			return nil
		}
		changed++
		return os.WriteFile(path, []byte(strings.ReplaceAll(string(k), "namespace: inventory\n", "namespace: "+adoptName+"\n")), 0o644)
	})
	if err != nil || changed == 0 {
		t.Fatalf("setting namespace %s in the copy of %s: %v (%d kustomizations changed)", adoptName, src, err, changed)
	}
	if err = a.load(); err != nil {
		t.Fatal(err)
	}
	a.git(t, "init", "-q", "-b", "main")
	a.commit(t, "the team's app folder, before adoption")
	return a
}

// adopt runs the whole move on the adoptee, then a relocation.
func (l *loop) adopt(ctx context.Context, t *testing.T) {
	a := l.adoptee
	l.app = a
	site := a.policy.ActiveSite
	c := l.sites[site]
	var overlay string
	for _, s := range a.policy.Sites {
		if s.Name == site {
			overlay = s.Overlay
		}
	}
	objs := l.kustomizeBuild(t, filepath.Join(a.dir(), overlay))
	if got := namespaces(objs); len(got) != 1 || got[0] != adoptName {
		t.Fatalf("the adoptee's overlay builds into namespaces %v, not %s alone", got, adoptName)
	}

	// The app as it ran before: its objects applied as its old Application
	// would, each claim provisioned as ceph-csi does from a StorageClass.
	ap, err := newApplier(c.admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureNamespaces(ctx, c.client, namespaces(objs)); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := ap.apply(ctx, o, false); err != nil {
			t.Fatal(err)
		}
	}
	l.schedule(ctx, t, a.sites(), []string{adoptName})
	var last string
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := l.provision(ctx, site, adoptName); err != nil {
			return false, err
		}
		last = ""
		for _, w := range workloads(t, objs) {
			want, ready, err := l.replicasOf(ctx, site, w)
			if err != nil || ready != want || want == 0 {
				last = fmt.Sprintf("%s: %d/%d ready (%v)", describe(w), ready, want, err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the app never ran the old way on %s: %v; %s\n%s", site, err, last, l.podReport(ctx, site))
	}
	l.runCronJobsOf(ctx, t, site, objs)
	pvs := l.claimVolumes(ctx, t, site)
	t.Logf("the app runs on %s the old way, on %d volumes ceph-csi would have provisioned (Delete): %v", site, len(pvs), pvs)

	// 1 and 2: adopt writes volumes: and keeps the images (Retain).
	kubeconfig, err := c.kubeconfig("adopter", "adopter", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	out := a.run(t, "adopt", "--kubeconfig", kubeconfig, "-n", adoptName, "--write", filepath.Join(a.dir(), config.FileName), "--apply")
	t.Logf("argocd-rbd-dr adopt:\n%s", out)
	if err = a.load(); err != nil {
		t.Fatalf("rbd-dr.yaml as adopt wrote it: %v", err)
	}
	if len(a.policy.Volumes) != len(pvs) {
		t.Fatalf("adopt declared %d volumes for %d claims", len(a.policy.Volumes), len(pvs))
	}
	for claim, pv := range l.claimVolumes(ctx, t, site) {
		if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
			t.Fatalf("claim %s's volume %s is %s after adopt --apply, not Retain", claim, pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
		}
	}
	before := l.markers(t, site)

	// 3: the platform mirrors the images; the other site replays them.
	l.mirror(ctx, t, a)

	// 4: stop the app; 5: let go of the claims and their volumes.
	for _, o := range objs {
		var patch string
		switch o.GetKind() {
		case "Deployment", "StatefulSet":
			patch = `{"spec":{"replicas":0}}`
		case "CronJob":
			patch = `{"spec":{"suspend":true}}`
		default:
			continue
		}
		r, _, err := ap.resource(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Patch(ctx, o.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A finished pod (a CronJob's run) keeps its claim in use until it is
	// deleted: the runbook deletes the finished Jobs with their pods.
	background := metav1.DeletePropagationBackground
	if err := c.client.BatchV1().Jobs(adoptName).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	for claim := range pvs {
		if err := c.client.CoreV1().PersistentVolumeClaims(adoptName).Delete(ctx, claim, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		last = ""
		for claim, pv := range pvs {
			now, err := c.client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if now.Status.Phase != corev1.VolumeReleased {
				last = fmt.Sprintf("claim %s's volume %s is %s", claim, pv.Name, now.Status.Phase)
				return false, nil
			}
		}
		// The provisioner's part: a released volume under Delete loses its image.
		return true, l.reclaim(ctx, site)
	})
	if err != nil {
		t.Fatalf("the claims were not let go: %v; %s\n%s", err, last, l.podReport(ctx, site))
	}
	for _, pv := range pvs {
		if err := c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}

	// 6: hand over to the plugin: the app starts on the same data.
	rev := a.commit(t, "adopted: volumes from argocd-rbd-dr adopt")
	t.Logf("rbd-dr.yaml with the adopted volumes committed at %s", rev[:8])
	l.bootstrap(ctx, t, before)
	to := a.sites()[0]
	if to == site {
		to = a.sites()[1]
	}
	l.relocate(ctx, t, to)
	fmt.Printf("fullloop: adopted %s: %d claims provisioned with reclaim policy Delete, taken over and moved to %s; every marker found\n", adoptName, len(pvs), to)
}

// claimVolumes are the namespace's claims' volumes on site, by claim.
func (l *loop) claimVolumes(ctx context.Context, t *testing.T, site string) map[string]*corev1.PersistentVolume {
	t.Helper()
	c := l.sites[site].client
	pvcs, err := c.CoreV1().PersistentVolumeClaims(adoptName).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*corev1.PersistentVolume{}
	for _, pvc := range pvcs.Items {
		pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("claim %s: %v", pvc.Name, err)
		}
		out[pvc.Name] = pv
	}
	return out
}

// provisionedBy marks the volumes the suite provisions as ceph-csi would.
const provisionedBy = "pv.kubernetes.io/provisioned-by"

// provision does what ceph-csi's provisioner does for each claim of
// namespace on site that waits for a volume: an image csi-vol-<uid> in pool
// (named after the namespace) and a PersistentVolume bound to the claim,
// with the volume attributes ceph-csi sets and reclaim policy Delete, as
// Rook's StorageClass gives.
func (l *loop) provision(ctx context.Context, site, namespace string) error {
	c := l.sites[site].client
	settings, err := config.LoadSettings(l.app.settings)
	if err != nil {
		return err
	}
	s, _ := settings.Site(site)
	pvcs, err := c.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, pvc := range pvcs.Items {
		if pvc.Spec.VolumeName != "" {
			continue
		}
		uid := string(pvc.UID)
		image := "csi-vol-" + uid
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if _, err := l.lab.rbd(ctx, site, "create", "--size", fmt.Sprintf("%dM", max(size.Value()>>20, 1)), "--image-feature", "layering,exclusive-lock", namespace+"/"+image); err != nil && !strings.Contains(err.Error(), "exists") {
			return err
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + uid, Annotations: map[string]string{provisionedBy: s.CSIDriver}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()},
				AccessModes:                   pvc.Spec.AccessModes,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				VolumeMode:                    pvc.Spec.VolumeMode,
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: pvc.Name, UID: pvc.UID},
				PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
					Driver: s.CSIDriver, FSType: "ext4",
					VolumeHandle: "0001-0009-" + s.ClusterID + "-0000000000000002-" + uid,
					VolumeAttributes: map[string]string{
						"clusterID": s.ClusterID, "pool": namespace, "imageName": image, "imageFeatures": "layering", "journalPool": namespace,
					},
					NodeStageSecretRef: &corev1.SecretReference{Name: s.NodeStageSecret.Name, Namespace: s.NodeStageSecret.Namespace},
				}},
			},
		}
		if pvc.Spec.StorageClassName != nil {
			pv.Spec.StorageClassName = *pvc.Spec.StorageClassName
		}
		if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// reclaim is the provisioner's half of reclaim policy Delete: a released
// volume it provisioned loses its image, then the volume goes.
func (l *loop) reclaim(ctx context.Context, site string) error {
	c := l.sites[site].client
	pvs, err := c.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, pv := range pvs.Items {
		if pv.Annotations[provisionedBy] == "" || pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			continue
		}
		attrs := pv.Spec.CSI.VolumeAttributes
		if _, err := l.lab.rbd(ctx, site, "rm", attrs["pool"]+"/"+attrs["imageName"]); err != nil {
			return err
		}
		if err := c.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// runCronJobsOf runs the CronJobs among objs once on site (see runCronJobs).
func (l *loop) runCronJobsOf(ctx context.Context, t *testing.T, site string, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "CronJob" && o.GetLabels()[stepLabel] == "" {
			l.runCronJob(ctx, t, site, o.GetNamespace(), o.GetName())
		}
	}
}
