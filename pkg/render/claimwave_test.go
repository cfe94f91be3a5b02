package render_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// wavePolicy protects three claims: two of StatefulSet db's template data
// (data-db-0, data-db-1) and one that Deployment web mounts (logs); the
// rest is policy's.
var wavePolicy = policy[:strings.Index(policy, "volumes:")] + `volumes:
  - {pvc: data-db-0, pool: pool1, image: db0, size: 1Gi}
  - {pvc: data-db-1, pool: pool1, image: db1, size: 1Gi}
  - {pvc: logs, pool: pool1, image: logs, size: 1Gi}
`

// waveApp is the overlay of wavePolicy; dbMeta and logsClaim vary.
func waveApp(dbMeta, logsClaim string) map[string]string {
	files := map[string]string{
		"app/rbd-dr.yaml":                wavePolicy,
		"app/overlay/kustomization.yaml": "resources: [db.yaml, web.yaml]\n",
		"app/overlay/db.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata: ` + dbMeta + `
spec:
  replicas: 2
  serviceName: db
  template:
    spec:
      containers: [{name: c, image: busybox, volumeMounts: [{name: data, mountPath: /d}]}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`,
		"app/overlay/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers: [{name: w, image: busybox}]
      volumes: [{name: logs, persistentVolumeClaim: {claimName: logs}}]
`,
	}
	if logsClaim != "" {
		files["app/overlay/kustomization.yaml"] = "resources: [db.yaml, web.yaml, logs.yaml]\n"
		files["app/overlay/logs.yaml"] = logsClaim
	}
	return files
}

// claimWaves are the sync waves of the rendered PVs (by claim) and PVCs,
// "" for none.
func claimWaves(t *testing.T, res *render.Result) (pvs, pvcs map[string]string) {
	t.Helper()
	pvs, pvcs = map[string]string{}, map[string]string{}
	for _, o := range objects(t, toYAML(t, res)) {
		w := o.GetAnnotations()[render.WaveAnnotation]
		switch o.GetKind() {
		case "PersistentVolume":
			claim, _, _ := unstructured.NestedString(o.Object, "spec", "claimRef", "name")
			pvs[claim] = w
		case "PersistentVolumeClaim":
			pvcs[o.GetName()] = w
		}
	}
	return pvs, pvcs
}

// Argo CD takes a claim named like a StatefulSet's template's for the
// StatefulSet's child and, when such a claim changes, refreshes the tree
// but not the app's health: a first sync whose claims bound after it ended
// stayed Progressing for minutes. Those claims, and their PVs, go one wave
// before their StatefulSet, so the sync itself waits for them; other claims
// keep no wave; a PV always goes in its claim's wave (a PV after its claim
// would never be applied: Argo CD waits for the claim to bind first).
func TestClaimsGoAWaveBeforeTheirStatefulSet(t *testing.T) {
	for _, c := range []struct {
		name      string
		dbMeta    string
		logsClaim string
		want      map[string]string // claim -> wave of its PVC and PV
	}{
		{name: "a StatefulSet in wave 0", dbMeta: "{name: db}",
			want: map[string]string{"data-db-0": "-1", "data-db-1": "-1", "logs": ""}},
		{name: "a StatefulSet in wave 3", dbMeta: "{name: db, annotations: {argocd.argoproj.io/sync-wave: \"3\"}}",
			want: map[string]string{"data-db-0": "2", "data-db-1": "2", "logs": ""}},
		{name: "a StatefulSet weighted by Helm, as Argo CD reads it", dbMeta: "{name: db, annotations: {helm.sh/hook-weight: \"-4\"}}",
			want: map[string]string{"data-db-0": "-5", "data-db-1": "-5", "logs": ""}},
		{name: "a wave that is no number counts as 0", dbMeta: "{name: db, annotations: {argocd.argoproj.io/sync-wave: \"first\"}}",
			want: map[string]string{"data-db-0": "-1", "data-db-1": "-1", "logs": ""}},
		{name: "a claim the overlay gives a wave keeps it, and its PV follows", dbMeta: "{name: db}",
			logsClaim: "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: logs, annotations: {argocd.argoproj.io/sync-wave: \"-7\"}}\nspec: {accessModes: [ReadWriteOnce]}\n",
			want:      map[string]string{"data-db-0": "-1", "data-db-1": "-1", "logs": "-7"}},
		{name: "a claim of the overlay without a wave, no StatefulSet's", dbMeta: "{name: db}",
			logsClaim: "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: logs}\nspec: {accessModes: [ReadWriteOnce]}\n",
			want:      map[string]string{"data-db-0": "-1", "data-db-1": "-1", "logs": ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, role := range []render.Role{render.Active, render.Passive} {
				res, err := renderInline(t, role, waveApp(c.dbMeta, c.logsClaim))
				if err != nil {
					t.Fatal(err)
				}
				pvs, pvcs := claimWaves(t, res)
				for claim, want := range c.want {
					if pvcs[claim] != want {
						t.Errorf("%s: the PVC %s has wave %q, want %q", role, claim, pvcs[claim], want)
					}
					if pvs[claim] != want {
						t.Errorf("%s: the PV of %s has wave %q, want %q", role, claim, pvs[claim], want)
					}
				}
			}
		})
	}
}

// waveAppWithClaim renders waveApp (site a, active) with one more claim in
// the overlay and returns the PVs' and PVCs' waves.
func waveAppWithClaim(t *testing.T, claim string) (pvs, pvcs map[string]string) {
	t.Helper()
	files := waveApp("{name: db}", "")
	files["app/overlay/kustomization.yaml"] = "resources: [db.yaml, web.yaml, claim.yaml]\n"
	files["app/overlay/claim.yaml"] = claim
	res, err := renderInline(t, render.Active, files)
	if err != nil {
		t.Fatal(err)
	}
	return claimWaves(t, res)
}

// A claim of the overlay that a StatefulSet's template names gets the wave
// too (bound in place, not added).
func TestOverlayClaimOfAStatefulSetGetsItsWave(t *testing.T) {
	pvs, pvcs := waveAppWithClaim(t, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-db-1}\nspec: {accessModes: [ReadWriteOnce]}\n")
	if pvcs["data-db-1"] != "-1" || pvs["data-db-1"] != "-1" {
		t.Errorf("the overlay's claim data-db-1 and its PV have waves %q and %q, want -1 and -1", pvcs["data-db-1"], pvs["data-db-1"])
	}
}

// A claim that no volume of rbd-dr.yaml names is left alone even when a
// StatefulSet's template names it: it may be provisioned dynamically and
// bind only once the StatefulSet's pod exists (WaitForFirstConsumer), which
// a wave before the StatefulSet would never let happen.
func TestUnprotectedClaimKeepsNoWave(t *testing.T) {
	_, pvcs := waveAppWithClaim(t, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-db-2}\nspec: {accessModes: [ReadWriteOnce], storageClassName: fast, resources: {requests: {storage: 1Gi}}}\n")
	if w, ok := pvcs["data-db-2"]; !ok || w != "" {
		t.Errorf("the claim data-db-2, which rbd-dr.yaml does not protect, has wave %q (present: %v), want none", w, ok)
	}
	if pvcs["data-db-0"] != "-1" {
		t.Errorf("the protected claim data-db-0 has wave %q, want -1", pvcs["data-db-0"])
	}
}
