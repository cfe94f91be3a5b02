package render_test

import (
	"path/filepath"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// inlineSettings are the platform settings of the inline cases: sites a and
// b, namespace shop moving pool1.
const inlineSettings = `apiVersion: rbd-dr.io/v1alpha1
kind: Settings
images:
  hook: registry.test/argocd-rbd-dr:v0@sha256:1111111111111111111111111111111111111111111111111111111111111111
  ceph: registry.test/ceph:v16@sha256:2222222222222222222222222222222222222222222222222222222222222222
sites:
  - {name: a, cluster: "https://a.test:6443", clusterID: ceph-a, nodeStageSecret: {name: csi-node, namespace: ceph}, monitors: ["192.0.2.1:6789"]}
  - {name: b, cluster: "https://b.test:6443", clusterID: ceph-b, nodeStageSecret: {name: csi-node, namespace: ceph}, monitors: ["192.0.2.2:6789", "192.0.2.3:6789"]}
namespaces:
  - {namespace: shop, project: shop, pools: [pool1, replica-pool, replica], cephUser: shop, rpo: 5m, cephSecret: {name: ceph-shop}}
`

func testSettings(t testing.TB) *config.Settings {
	t.Helper()
	s, err := config.ParseSettings([]byte(inlineSettings), "settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exampleSettings are examples/rbd-dr-settings.yaml, the WordPress example's.
func exampleSettings(t testing.TB) *config.Settings {
	t.Helper()
	s, err := config.LoadSettings(filepath.Join(repoRoot(t), "examples", "rbd-dr-settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
