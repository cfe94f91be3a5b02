package fullloop

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild builds a folder of the project as `kustomize build` would.
func (l *loop) kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(l.root, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, y)
}

// cephClients are the caps of each CephClient in manifests/tenant, by name:
// what Rook turns into CephX users.
func (l *loop) cephClients(t *testing.T) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, o := range l.kustomizeBuild(t, "manifests/tenant") {
		if o.GetKind() != "CephClient" {
			continue
		}
		caps, _, err := unstructured.NestedStringMap(o.Object, "spec", "caps")
		if err != nil || len(caps) == 0 {
			t.Fatalf("%s has no spec.caps: %v", describe(o), err)
		}
		out[o.GetName()] = caps
	}
	return out
}

// appProjects are the AppProjects of manifests/tenant, made the platform
// team's own: its repository is the suite's, its destinations the suite's
// clusters (the settings' clusters, renamed).
func (l *loop) appProjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range l.kustomizeBuild(t, "manifests/tenant") {
		if o.GetKind() != "AppProject" {
			continue
		}
		if err := unstructured.SetNestedStringSlice(o.Object, []string{l.app.url()}, "spec", "sourceRepos"); err != nil {
			t.Fatal(err)
		}
		dests, _, _ := unstructured.NestedSlice(o.Object, "spec", "destinations")
		for _, d := range dests {
			m := d.(map[string]any)
			server, _ := m["server"].(string)
			url, ok := l.app.clusterURLs[server]
			if !ok {
				t.Fatalf("%s: destination %s is none of the settings' clusters", describe(o), server)
			}
			m["server"] = url
		}
		if err := unstructured.SetNestedSlice(o.Object, dests, "spec", "destinations"); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}
