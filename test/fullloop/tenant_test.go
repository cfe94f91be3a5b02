package fullloop

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// This file does what the platform team does per app namespace, from the
// settings the suite was given (any namespace, project, pools, users and
// Secret names), with manifests/tenant as the template: the AppProject on
// the hub, a CephClient per CephX user (made on every site), and the
// Secrets with their keys in the namespace.

// kustomizeBuild builds a folder as `kustomize build` would (relative to
// the project, or absolute).
func (l *loop) kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(l.root, dir)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, y)
}

// tenant is one app namespace of the settings with the apps under test
// that deploy to it.
type tenant struct {
	config.TenantSetting
	apps []*app
}

// tenants are the settings' entries of every namespace the apps under test
// (and the one the adoption scenario adopts) deploy to, in the apps' order.
// An app's namespaces are those of its own objects, as its first site's
// overlay builds them: an app not yet adopted renders nothing.
func (l *loop) tenants(t *testing.T) []*tenant {
	t.Helper()
	settings, err := config.LoadSettings(l.app.settings)
	if err != nil {
		t.Fatal(err)
	}
	var out []*tenant
	for _, a := range l.allApps() {
		for _, ns := range namespaces(l.kustomizeBuild(t, filepath.Join(a.dir(), a.policy.Sites[0].Overlay))) {
			i := slices.IndexFunc(out, func(x *tenant) bool { return x.Namespace == ns })
			if i < 0 {
				ts, err := settings.Tenant(ns)
				if err != nil {
					t.Fatalf("the app %s: %v", a.source, err)
				}
				out = append(out, &tenant{TenantSetting: ts})
				i = len(out) - 1
			}
			out[i].apps = append(out[i].apps, a)
		}
	}
	return out
}

// cephClients are the caps of every CephX user the settings name for the
// tenants, by user: the team's user may run every step on its pools (mgr
// for the mirror snapshot schedules), the peer reader may only read them.
// These are the caps docs/platform.md and manifests/tenant give; a
// CephClient of manifests/tenant for the same user must say the same.
func (l *loop) cephClients(t *testing.T, tenants []*tenant) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, ten := range tenants {
		out[ten.CephUser] = ten.UserCaps()
		if p := ten.PeerReader; p != nil {
			out[p.User] = ten.ReaderCaps()
		}
		if f := ten.ForceUser; f != nil {
			out[f.User] = ten.ForceCaps()
		}
	}
	for _, o := range l.kustomizeBuild(t, "manifests/tenant") {
		if o.GetKind() != "CephClient" {
			continue
		}
		caps, _, err := unstructured.NestedStringMap(o.Object, "spec", "caps")
		if err != nil || len(caps) == 0 {
			t.Fatalf("%s has no spec.caps: %v", describe(o), err)
		}
		if want, ok := out[o.GetName()]; ok && !maps.Equal(caps, want) {
			t.Fatalf("manifests/tenant's %s has caps %v; the settings' pools give %v: the template and the suite disagree", describe(o), caps, want)
		}
	}
	return out
}

// appProjects are the tenants' AppProjects: manifests/tenant's AppProject
// (the kinds the hooks need, the one cluster-scoped kind) made each
// tenant's: its project name, the repositories of its apps, its namespace
// on each site's cluster, and the kinds of its apps' own objects (their
// overlays, built as the team would).
func (l *loop) appProjects(t *testing.T, tenants []*tenant) []*unstructured.Unstructured {
	t.Helper()
	var template *unstructured.Unstructured
	for _, o := range l.kustomizeBuild(t, "manifests/tenant") {
		if o.GetKind() == "AppProject" {
			template = o
		}
	}
	if template == nil {
		t.Fatal("manifests/tenant has no AppProject")
	}
	settings, err := config.LoadSettings(l.app.settings)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, ten := range tenants {
		p := template.DeepCopy()
		p.SetName(ten.Project)
		p.SetNamespace(argoNS)
		var repos []string
		var dests []any
		kinds, _, _ := unstructured.NestedSlice(p.Object, "spec", "namespaceResourceWhitelist")
		seen := map[string]bool{}
		for _, k := range kinds {
			m, _ := k.(map[string]any)
			g, _ := m["group"].(string)
			kind, _ := m["kind"].(string)
			seen[g+"/"+kind] = true
		}
		for _, a := range ten.apps {
			if !slices.Contains(repos, a.url()) {
				repos = append(repos, a.url())
			}
			for _, s := range a.policy.Sites {
				for _, o := range l.kustomizeBuild(t, filepath.Join(a.dir(), s.Overlay)) {
					gk := o.GroupVersionKind().GroupKind()
					if o.GetNamespace() == "" || seen[gk.Group+"/"+gk.Kind] {
						continue
					}
					seen[gk.Group+"/"+gk.Kind] = true
					kinds = append(kinds, map[string]any{"group": gk.Group, "kind": gk.Kind})
				}
			}
		}
		for _, s := range l.app.sites() {
			site, _ := settings.Site(s)
			dests = append(dests, map[string]any{"server": site.Cluster, "namespace": ten.Namespace})
		}
		for path, v := range map[string]any{"sourceRepos": toAny(repos), "destinations": dests, "namespaceResourceWhitelist": kinds} {
			if err := unstructured.SetNestedSlice(p.Object, v.([]any), "spec", path); err != nil {
				t.Fatal(err)
			}
		}
		_ = unstructured.SetNestedField(p.Object, "namespace "+ten.Namespace+" (made by the full loop from the settings)", "spec", "description")
		out = append(out, p)
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// tenantSecrets are the Secrets of a tenant on site, as the settings name
// them: the team user's key (made on site) in cephSecret, the peer reader's
// key made on the other site in peerReader.secret, and forceUser's (made on
// site) in forceUser.secret.
func tenantSecrets(t *testing.T, ten *tenant, site, other string, keyOf func(site, user string) (string, error)) []*corev1.Secret {
	t.Helper()
	put := func(name, item, site, user string) *corev1.Secret {
		key, err := keyOf(site, user)
		if err != nil {
			t.Fatal(err)
		}
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ten.Namespace, Name: name}, StringData: map[string]string{item: key}}
	}
	out := []*corev1.Secret{put(ten.CephSecret.Name, ten.CephSecret.Key, site, ten.CephUser)}
	add := func(s *corev1.Secret) {
		for _, have := range out {
			if have.Name != s.Name {
				continue
			}
			for k, v := range s.StringData {
				if old, ok := have.StringData[k]; ok && old != v {
					t.Fatalf("the settings of %s put two keys under %s in Secret %s", ten.Namespace, k, s.Name)
				}
				have.StringData[k] = v
			}
			return
		}
		out = append(out, s)
	}
	if p := ten.PeerReader; p != nil {
		add(put(p.Secret.Name, p.Secret.Key, other, p.User))
	}
	if f := ten.ForceUser; f != nil {
		add(put(f.Secret.Name, f.Secret.Key, site, f.User))
	}
	return out
}
