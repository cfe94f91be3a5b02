package render_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// The render benchmarks measure what one generate does after start-up:
// config.Load, render.Render and Result.YAML. Start-up itself (package
// initialisation, the whole process) is measured by hack/bench-ratio.sh.
//
//	go test ./pkg/render -run '^$' -bench . -benchtime 3x

// benchRender is the work of one generate: load, render, encode. The app's
// namespace is the one its overlay sets, which the example settings grant.
func benchRender(b *testing.B, root, app, site string) ([]byte, *render.Result) {
	p, err := config.Load(app, root)
	if err != nil {
		b.Fatal(err)
	}
	settings := exampleSettings(b)
	bench := settings.Namespaces[0] // the WordPress namespace's grant, as namespace bench
	bench.Namespace = "bench"
	settings.Namespaces = append(settings.Namespaces, bench)
	res, err := render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: site, Namespace: p.Apps.Namespace, Settings: settings})
	if err != nil {
		b.Fatal(err)
	}
	out, err := res.YAML()
	if err != nil {
		b.Fatal(err)
	}
	return out, res
}

func BenchmarkRenderExample(b *testing.B) {
	root := repoRoot(b)
	app := filepath.Join(root, "examples", "wordpress")
	for _, site := range []string{"site-a", "site-b"} {
		b.Run(site, func(b *testing.B) {
			// One untimed render first: it checks the example renders and
			// keeps kustomize's one-time set-up out of the numbers.
			out, res := benchRender(b, root, app, site)
			if len(res.Hooks) == 0 || len(res.Volumes) == 0 {
				b.Fatalf("%s: %d hooks, %d volumes", site, len(res.Hooks), len(res.Volumes))
			}
			for b.Loop() {
				benchRender(b, root, app, site)
			}
			b.ReportMetric(float64(len(out)), "bytes/render")
		})
	}
}

// writeBenchApp writes, below root/app, an app with n volumes: rbd-dr.yaml
// (two sites, site-a active), a base with one Deployment mounting every PVC
// (render refuses a declared claim that no workload mounts), and an overlay
// per site. With pvcsInBase the base also holds the
// n PVCs (kustomize then does the most work); without, the plugin adds them.
func writeBenchApp(b *testing.B, root string, n int, pvcsInBase bool) string {
	b.Helper()
	var policy, pvcs strings.Builder
	policy.WriteString(`apiVersion: rbd-dr.io/v1alpha1
kind: FailoverPolicy
activeSite: site-a
apps:
  namespace: bench
sites:
  - name: site-a
    overlay: overlays/site-a
  - name: site-b
    overlay: overlays/site-b
volumes:
`)
	for i := range n {
		fmt.Fprintf(&policy, "  - pvc: data-%04d\n    pool: replicapool\n    image: csi-vol-data-%04d\n    size: 10Gi\n", i, i)
		if i > 0 {
			pvcs.WriteString("---\n")
		}
		fmt.Fprintf(&pvcs, `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data-%04d
  labels:
    app: bench
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 10Gi
`, i)
	}
	var mounts, volumes strings.Builder
	for i := range n {
		fmt.Fprintf(&mounts, "            - name: data-%04d\n              mountPath: /data/%d\n", i, i)
		fmt.Fprintf(&volumes, "        - name: data-%04d\n          persistentVolumeClaim:\n            claimName: data-%04d\n", i, i)
	}
	deployment := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bench
  labels:
    app: bench
spec:
  replicas: 2
  selector:
    matchLabels:
      app: bench
  template:
    metadata:
      labels:
        app: bench
    spec:
      containers:
        - name: app
          image: busybox:1.36
          volumeMounts:
` + mounts.String() + `      volumes:
` + volumes.String()

	base := "resources:\n  - deployment.yaml\n"
	if pvcsInBase {
		base = "resources:\n  - pvcs.yaml\n  - deployment.yaml\n"
	}
	files := map[string]string{
		"app/rbd-dr.yaml":                        policy.String(),
		"app/base/kustomization.yaml":            base,
		"app/base/pvcs.yaml":                     pvcs.String(),
		"app/base/deployment.yaml":               deployment,
		"app/overlays/site-a/kustomization.yaml": "namespace: bench\nresources:\n  - ../../base\nlabels:\n  - pairs:\n      rbd-dr.io/site: site-a\n",
		"app/overlays/site-b/kustomization.yaml": "namespace: bench\nresources:\n  - ../../base\nlabels:\n  - pairs:\n      rbd-dr.io/site: site-b\n",
	}
	for path, content := range files {
		full := filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return filepath.Join(root, "app")
}

// BenchmarkRenderVolumes renders the passive site (the most hooks and the
// stop transform) of an app with n volumes; ns/volume should stay flat as n
// grows. pvcs=plugin leaves the PVCs to the plugin and measures our own work;
// pvcs=overlay puts them in the kustomize base, where kustomize's own
// resource lookups (linear scans, so quadratic in n) dominate: the kustomize
// CLI takes as long on that overlay.
func BenchmarkRenderVolumes(b *testing.B) {
	for _, inBase := range []bool{false, true} {
		where := map[bool]string{false: "plugin", true: "overlay"}[inBase]
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("pvcs=%s/volumes=%d", where, n), func(b *testing.B) {
				root := b.TempDir()
				app := writeBenchApp(b, root, n, inBase)
				out, res := benchRender(b, root, app, "site-b")
				wantVolumes := n
				if !inBase {
					wantVolumes = 2 * n // PV and PVC per volume
				}
				if res.Role != render.Passive || len(res.Volumes) != wantVolumes || len(res.Hooks) == 0 {
					b.Fatalf("role %s, %d volumes, %d hooks", res.Role, len(res.Volumes), len(res.Hooks))
				}
				if !bytes.Contains(out, []byte("replicas: 0")) {
					b.Fatal("the passive site's Deployment is not stopped")
				}
				for b.Loop() {
					benchRender(b, root, app, "site-b")
				}
				b.ReportMetric(float64(len(out)), "bytes/render")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/volume")
			})
		}
	}
}
