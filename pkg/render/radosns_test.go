package render_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// A namespace the settings give a RADOS namespace: every target names it
// (hook arguments, the static PVs' names and annotations), --pools reaches
// that RADOS namespace only, and each site's PVs carry the clusterID that
// ceph-csi finds the namespace by on that site.
func TestRadosNamespaceReachesEveryTarget(t *testing.T) {
	settings := exampleSettings(t)
	for i := range settings.Namespaces {
		if n := &settings.Namespaces[i]; n.Namespace == "wordpress" {
			n.RadosNamespace = "wp"
			n.ClusterIDs = map[string]string{"site-a": "ns-a-wp", "site-b": "ns-b-wp"}
		}
	}
	for _, c := range []struct {
		site      string
		role      render.Role
		clusterID string
	}{{"site-a", render.Active, "ns-a-wp"}, {"site-b", render.Passive, "ns-b-wp"}} {
		res := renderExampleWith(t, c.site, c.role, func(p *config.Policy) { p.ForcePromote = true }, settings)
		pvs := 0
		for _, obj := range objects(t, toYAML(t, res)) {
			if obj.GetKind() != "PersistentVolume" {
				continue
			}
			pvs++
			attrs, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "csi", "volumeAttributes")
			target := obj.GetAnnotations()["rbd-dr.io/image"]
			if attrs["clusterID"] != c.clusterID || !strings.HasPrefix(target, "replicapool/wp/") || !strings.HasPrefix(obj.GetName(), "rbd.replicapool.wp.") {
				t.Errorf("%s: PV %s (image %s) has clusterID %q, want %s and a target in replicapool/wp", c.site, obj.GetName(), target, attrs["clusterID"], c.clusterID)
			}
		}
		if pvs == 0 {
			t.Fatalf("%s: no static PV rendered", c.site)
		}
		jobs := renderedJobs(t, res)
		if len(jobs) == 0 {
			t.Fatalf("%s: no hook Jobs", c.site)
		}
		for step, jr := range jobs {
			if step == hookcmd.Quiesce { // its targets are claims
				continue
			}
			if len(jr.req.Pools) != 1 || jr.req.Pools[0] != "replicapool/wp" {
				t.Errorf("%s: %s's --pools is %v, want [replicapool/wp]", c.site, step, jr.req.Pools)
			}
			for _, target := range jr.req.Targets {
				if !strings.HasPrefix(target, "replicapool/wp/") {
					t.Errorf("%s: %s's target %s is outside replicapool/wp", c.site, step, target)
				}
			}
		}
	}
}
