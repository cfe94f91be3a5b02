package render_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// policy is a small rbd-dr.yaml for the inline cases: one volume, PVC data.
const policy = `apiVersion: rbd-dr.io/v1alpha1
kind: FailoverPolicy
activeSite: a
sites:
  - name: a
    overlay: overlay
  - name: b
    overlay: overlay
volumes:
  - pvc: data
    pool: pool1
    image: img1
    size: 5Gi
`

// writer is a Deployment that mounts the claim data, as the app's
// workloads must mount every protected claim.
const writer = `apiVersion: apps/v1
kind: Deployment
metadata: {name: writer}
spec:
  template:
    spec:
      containers: [{name: w, image: busybox}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
`

// writeTree writes files (path -> content) below root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for path, content := range files {
		full := filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// renderInline writes an app into a temporary repository at app/ and renders
// site a in the given role.
func renderInline(t *testing.T, role render.Role, files map[string]string) (*render.Result, error) {
	t.Helper()
	return renderInlineWith(t, role, files, testSettings(t))
}

// renderInlineWith is renderInline under the given settings.
func renderInlineWith(t *testing.T, role render.Role, files map[string]string, settings *config.Settings) (*render.Result, error) {
	t.Helper()
	root := t.TempDir()
	if _, ok := files["app/rbd-dr.yaml"]; !ok {
		files["app/rbd-dr.yaml"] = policy
	}
	writeTree(t, root, files)
	app := filepath.Join(root, "app")
	p, err := config.Load(app, root)
	if err != nil {
		t.Fatal(err)
	}
	return render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: "a", Role: role, Namespace: "shop", Settings: settings})
}

// appObject returns one object of the app part as YAML.
func appObject(t *testing.T, res *render.Result, kind, name string) string {
	t.Helper()
	for _, r := range res.App.Resources() {
		if r.GetKind() == kind && r.GetName() == name {
			out, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
	}
	t.Fatalf("no %s %s in the app", kind, name)
	return ""
}

func TestPassiveStopsWorkloadsOnly(t *testing.T) {
	res, err := renderInline(t, render.Passive, map[string]string{
		"app/overlay/kustomization.yaml": "resources: [app.yaml, writer.yaml]\n",
		"app/overlay/writer.yaml":        writer,
		"app/overlay/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec: {serviceName: db}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec: {schedule: "@daily", suspend: false}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec: {replicas: 2}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce]}
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ kind, name, want string }{
		{"Deployment", "web", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 0
`},
		{"StatefulSet", "db", `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  replicas: 0
  serviceName: db
`},
		{"CronJob", "backup", `apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  schedule: '@daily'
  suspend: true
`},
		{"ReplicationController", "legacy", `apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 2
`},
		{"PersistentVolumeClaim", "data", `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 5Gi
  storageClassName: ""
  volumeName: rbd.pool1.img1
`},
	} {
		if got := appObject(t, res, c.kind, c.name); got != c.want {
			t.Errorf("%s %s:\n%s\nwant\n%s", c.kind, c.name, got, c.want)
		}
	}
}

func TestActiveKeepsReplicas(t *testing.T) {
	res, err := renderInline(t, render.Active, map[string]string{
		"app/overlay/kustomization.yaml": "resources: [app.yaml, writer.yaml]\n",
		"app/overlay/writer.yaml":        writer,
		"app/overlay/app.yaml":           "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := appObject(t, res, "Deployment", "web"); !strings.Contains(got, "replicas: 3") {
		t.Errorf("active site changed replicas:\n%s", got)
	}
}

func TestStaticVolumeAndAddedClaim(t *testing.T) {
	// The overlay has no PVC named data: it is added, in the app's namespace,
	// with the defaults (ReadWriteOnce, Filesystem), and bound to its PV.
	res, err := renderInline(t, render.Active, map[string]string{
		"app/overlay/kustomization.yaml": "resources: [cm.yaml, writer.yaml]\n",
		"app/overlay/writer.yaml":        writer,
		"app/overlay/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	want := `---
apiVersion: v1
kind: PersistentVolume
metadata:
  annotations:
    rbd-dr.io/image: pool1/img1
  labels:
    app.kubernetes.io/managed-by: argocd-rbd-dr
    rbd-dr.io/app: app
  name: rbd.pool1.img1
spec:
  accessModes:
  - ReadWriteOnce
  capacity:
    storage: 5Gi
  claimRef:
    apiVersion: v1
    kind: PersistentVolumeClaim
    name: data
    namespace: shop
  csi:
    driver: rook-ceph.rbd.csi.ceph.com
    fsType: ext4
    nodeStageSecretRef:
      name: csi-node
      namespace: ceph
    volumeAttributes:
      clusterID: ceph-a
      imageFeatures: layering
      pool: pool1
      staticVolume: "true"
    volumeHandle: img1
  persistentVolumeReclaimPolicy: Retain
  volumeMode: Filesystem
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  annotations:
    rbd-dr.io/image: pool1/img1
  labels:
    app.kubernetes.io/managed-by: argocd-rbd-dr
    rbd-dr.io/app: app
  name: data
  namespace: shop
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 5Gi
  storageClassName: ""
  volumeMode: Filesystem
  volumeName: rbd.pool1.img1
---
`
	if !strings.Contains(string(out), want) {
		t.Errorf("volumes:\n%s\nwant to contain\n%s", out, want)
	}
}

func TestBlockClaimGetsBlockVolume(t *testing.T) {
	res, err := renderInline(t, render.Active, map[string]string{
		"app/overlay/kustomization.yaml": "namespace: shop\nresources: [pvc.yaml, writer.yaml]\n",
		"app/overlay/writer.yaml":        writer,
		"app/overlay/pvc.yaml":           "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  volumeMode: Block\n  accessModes: [ReadWriteOnce, ReadOnlyMany]\n  resources: {requests: {storage: 1Gi}}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	pv := res.Volumes[0]
	spec := pv["spec"].(map[string]any)
	if spec["volumeMode"] != "Block" {
		t.Errorf("volumeMode = %v", spec["volumeMode"])
	}
	if _, ok := spec["csi"].(map[string]any)["fsType"]; ok {
		t.Error("a Block volume must have no fsType")
	}
	if modes := spec["accessModes"].([]any); len(modes) != 2 || modes[1] != "ReadOnlyMany" {
		t.Errorf("accessModes = %v, want the claim's", modes)
	}
	if got := appObject(t, res, "PersistentVolumeClaim", "data"); !strings.Contains(got, "storage: 1Gi") {
		t.Errorf("a smaller request must be kept:\n%s", got)
	}
}

// ceph-csi serves ReadWriteMany on a raw block RBD volume (the app then
// coordinates its writers): accepted, and the PV gets the claim's modes.
func TestBlockClaimMayBeReadWriteMany(t *testing.T) {
	res, err := renderInline(t, render.Active, map[string]string{
		"app/overlay/kustomization.yaml": "namespace: shop\nresources: [pvc.yaml, writer.yaml]\n",
		"app/overlay/writer.yaml":        writer,
		"app/overlay/pvc.yaml":           "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  volumeMode: Block\n  accessModes: [ReadWriteMany]\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if modes := res.Volumes[0]["spec"].(map[string]any)["accessModes"].([]any); len(modes) != 1 || modes[0] != "ReadWriteMany" {
		t.Errorf("accessModes = %v", modes)
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"claim larger than the image", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\n",
			"app/overlay/pvc.yaml":           "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {resources: {requests: {storage: 50Gi}}}\n",
		}, "PersistentVolumeClaim data (volumes[0]): requests 50Gi but the image is declared as 5Gi"},
		{"claim bound elsewhere", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\n",
			"app/overlay/pvc.yaml":           "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {volumeName: other}\n",
		}, `spec.volumeName is "other"; remove it`},
		{"two claims of the name", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\n",
			"app/overlay/pvc.yaml":           "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: shop}\n",
		}, "the overlay has 2 PersistentVolumeClaims named data"},
		{"object in another namespace", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [cm.yaml]\n",
			"app/overlay/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n",
		}, "ConfigMap c is in namespace kube-system, but this app's namespace is shop"},
		{"cluster-scoped object", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [ns.yaml]\n",
			"app/overlay/ns.yaml":            "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n",
		}, "Namespace other is cluster-scoped"},
		{"no overlay", map[string]string{"app/other/kustomization.yaml": "resources: []\n"},
			"site a overlay overlay: app/overlay: no kustomization.yaml in this folder"},
		{"kustomize error", map[string]string{"app/overlay/kustomization.yaml": "resources: [missing.yaml]\n"},
			"app/overlay/kustomization.yaml: resources entry \"missing.yaml\": no such file or folder in the repository"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderInline(t, render.Passive, c.files)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestUnknownSite(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"app/rbd-dr.yaml": policy, "app/overlay/kustomization.yaml": "resources: []\n"})
	p, err := config.Load(filepath.Join(root, "app"), root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = render.Render(p, render.Options{RepoRoot: root, AppDir: filepath.Join(root, "app"), Site: "c", Settings: testSettings(t)})
	if err == nil || !strings.Contains(err.Error(), `site "c" is not in app/rbd-dr.yaml (sites: a, b)`) {
		t.Errorf("got %v", err)
	}
}

// What protect accepts: a claim declared unprotected on purpose, a
// StatefulSet's per-replica claims declared as volumes, a CronJob writer,
// an autoscaler of a workload without protected claims, and two images whose
// old-style PV names collided.
func TestProtectAccepts(t *testing.T) {
	res, err := renderInline(t, render.Passive, map[string]string{
		"app/rbd-dr.yaml": policy + `  - {pvc: wal-db-0, pool: replica-pool, image: vol, size: 1Gi}
  - {pvc: wal-db-1, pool: replica, image: pool-vol, size: 1Gi}
unprotected:
  - {pvc: cache, reason: rebuilt from the database on start}
`,
		"app/overlay/kustomization.yaml": "resources: [app.yaml]\n",
		"app/overlay/app.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  template:
    spec:
      containers: [{name: db, image: postgres}]
      volumes: [{name: c, persistentVolumeClaim: {claimName: cache}}]
  volumeClaimTemplates:
    - metadata: {name: wal}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: b, image: busybox}]
          volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers: [{name: w, image: nginx}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	var pvs []string
	for _, v := range res.Volumes {
		if v["kind"] == "PersistentVolume" {
			pvs = append(pvs, v["metadata"].(map[string]any)["name"].(string))
		}
	}
	if len(pvs) != 3 || pvs[1] == pvs[2] {
		t.Errorf("PVs %v, want three distinct names", pvs)
	}
}

// An Argo Rollout and a kind the settings teach, each writing to the
// protected claim: accepted, and stopped on the passive site by their own
// fields. Without the settings the custom kind is refused.
func TestPassiveStopsRolloutsAndTaughtKinds(t *testing.T) {
	files := func() map[string]string {
		return map[string]string{
			"app/overlay/kustomization.yaml": "resources: [app.yaml]\n",
			"app/overlay/app.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  template:
    spec:
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: example.com/v1
kind: Database
metadata: {name: pg, namespace: shop}
spec:
  schedule: {paused: false}
  pods:
    spec:
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`,
		}
	}
	settings := testSettings(t)
	if _, err := renderInlineWith(t, render.Passive, files(), settings); err == nil || !strings.Contains(err.Error(), "does not know how to stop a Database") {
		t.Fatalf("an untaught kind: %v", err)
	}
	settings.WorkloadKinds = []config.WorkloadKind{{Group: "example.com", Version: "v1", Kind: "Database", Resource: "databases", PodSpec: "spec.pods.spec", Suspend: "spec.schedule.paused"}}
	for role, want := range map[render.Role][2]string{
		render.Active:  {"replicas: 3", "paused: false"},
		render.Passive: {"replicas: 0", "paused: true"},
	} {
		res, err := renderInlineWith(t, role, files(), settings)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if got := appObject(t, res, "Rollout", "web"); !strings.Contains(got, want[0]) {
			t.Errorf("%s: the Rollout:\n%s", role, got)
		}
		if got := appObject(t, res, "Database", "pg"); !strings.Contains(got, want[1]) {
			t.Errorf("%s: the Database:\n%s", role, got)
		}
	}
}

// The active site states the field that stops a workload where git leaves
// it out (replicas 1, suspend false), so that a stop made outside git (a
// person's, during an adoption) is undone by the sync; what git says stays.
func TestActiveStatesTheStartValues(t *testing.T) {
	res, err := renderInline(t, render.Active, map[string]string{
		"app/overlay/kustomization.yaml": "resources: [writer.yaml, jobs.yaml]\n",
		"app/overlay/writer.yaml":        writer,
		"app/overlay/jobs.yaml": `apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: c, image: busybox}], volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]}}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: paused}
spec:
  suspend: true
  schedule: "0 * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: c, image: busybox}], volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]}}}}
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ kind, name, want string }{
		{"Deployment", "writer", "replicas: 1"},
		{"CronJob", "backup", "suspend: false"},
		{"CronJob", "paused", "suspend: true"},
	} {
		if got := appObject(t, res, c.kind, c.name); !strings.Contains(got, c.want) {
			t.Errorf("%s %s on the active site has no %q:\n%s", c.kind, c.name, c.want, got)
		}
	}
}
