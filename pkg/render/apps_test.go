package render_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/sync/syncwaves"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

var appsSource = render.AppsOptions{RepoURL: "https://git.example.com/platform/apps.git", TargetRevision: "main", Path: "examples/wordpress", Namespace: "argocd"}

func renderApps(t *testing.T, edit func(*config.Policy)) []byte {
	t.Helper()
	root := repoRoot(t)
	p, err := config.Load(filepath.Join(root, "examples", "wordpress"), root)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(p)
	}
	o := appsSource
	o.Settings = exampleSettings(t)
	out, err := render.Apps(p, o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeApps decodes each document strictly into Argo CD's own type.
func decodeApps(t *testing.T, out []byte) []v1alpha1.Application {
	t.Helper()
	var apps []v1alpha1.Application
	for _, doc := range strings.Split(string(out), "\n---\n") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		var app v1alpha1.Application
		if err := dec.Decode(&app); err != nil {
			t.Fatalf("not an Argo CD Application: %v\n%s", err, doc)
		}
		apps = append(apps, app)
	}
	return apps
}

func TestAppsGolden(t *testing.T) {
	testutil.Golden(t, filepath.Join("testdata", "wordpress", "apps.golden.yaml"), renderApps(t, nil))
}

func TestAppsAreArgoApplications(t *testing.T) {
	apps := decodeApps(t, renderApps(t, nil))
	if len(apps) != 2 {
		t.Fatalf("%d Applications", len(apps))
	}
	for i, site := range []string{"site-a", "site-b"} {
		a := apps[i]
		src := a.Spec.GetSource()
		if a.Name != "wordpress-"+site || a.Namespace != "argocd" || a.Spec.Destination.Server != "https://"+site+".example.com:6443" ||
			a.Spec.Destination.Namespace != "wordpress" || src.RepoURL != appsSource.RepoURL || src.Path != appsSource.Path ||
			src.TargetRevision != "main" || src.Plugin == nil || src.Plugin.Name != "rbd-dr" {
			t.Errorf("Application %d: %+v", i, a)
		}
		if env := src.Plugin.Env; len(env) != 1 || env[0].Name != "SITE" || env[0].Value != site {
			t.Errorf("%s plugin env %v", a.Name, env)
		}
		sp := a.Spec.SyncPolicy
		if sp == nil || sp.Automated == nil || sp.Retry == nil || sp.Retry.Limit != 10 || sp.Retry.Backoff.Duration != "10s" {
			t.Errorf("%s sync policy %+v", a.Name, sp)
		}
	}
}

// waves reads each Application's wave the way Argo CD does.
func waves(t *testing.T, out []byte) map[string]int {
	t.Helper()
	w := map[string]int{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		w[u.GetLabels()["rbd-dr.io/site"]] = syncwaves.Wave(u)
	}
	return w
}

// Passive sites sync first, so the site being given up demotes before the
// active one promotes; the order flips with activeSite.
func TestAppsWavesFollowActiveSite(t *testing.T) {
	if w := waves(t, renderApps(t, nil)); w["site-b"] >= w["site-a"] {
		t.Errorf("activeSite site-a: waves %v, want site-b first", w)
	}
	if w := waves(t, renderApps(t, func(p *config.Policy) { p.ActiveSite = "site-b" })); w["site-a"] >= w["site-b"] {
		t.Errorf("activeSite site-b: waves %v, want site-a first", w)
	}
}

func TestAppsErrors(t *testing.T) {
	root := repoRoot(t)
	p, err := config.Load(filepath.Join(root, "examples", "wordpress"), root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := render.Apps(p, appsSource); err == nil || !strings.Contains(err.Error(), "no settings file") {
		t.Errorf("without settings: got %v", err)
	}
	if _, err := render.Apps(p, render.AppsOptions{}); err == nil || !strings.Contains(err.Error(), "ARGOCD_APP_SOURCE_REPO_URL") {
		t.Errorf("got %v", err)
	}
	o := appsSource
	o.Settings = exampleSettings(t)
	p.Apps.Namespace = "kube-system"
	if _, err := render.Apps(p, o); err == nil || !strings.Contains(err.Error(), `namespace "kube-system" may not use argocd-rbd-dr`) {
		t.Errorf("a namespace the settings do not grant: got %v", err)
	}
}
