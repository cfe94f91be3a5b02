// Package examples_test checks the example Argo CD objects with Argo CD's
// own types and template code: what a person applies is what Argo CD reads.
package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v2/applicationset/utils"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

func decodeStrict(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The fleet's ApplicationSet, rendered by Argo CD's template code with the
// parameters its generators give for each example app folder and site: an
// Application per app and site, through the plugin with that SITE, to the
// cluster and namespace the settings and rbd-dr.yaml say, labelled with the
// role the site has, so that RollingSync syncs the passive sites first.
func TestFleetApplicationSet(t *testing.T) {
	var set v1alpha1.ApplicationSet
	decodeStrict(t, filepath.Join("fleet", "applicationset.yaml"), &set)
	settings, err := config.LoadSettings("rbd-dr-settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gens := set.Spec.Generators[0].Matrix.Generators
	sites := gens[1].List.Elements
	if len(sites) != len(settings.Sites) {
		t.Fatalf("the list generator has %d sites, the settings %d", len(sites), len(settings.Sites))
	}
	for _, app := range []string{"wordpress", "inventory"} {
		policy, err := config.Load(app, ".")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(app, config.FileName))
		if err != nil {
			t.Fatal(err)
		}
		for _, element := range sites {
			// The git files generator's parameters: the file's content and
			// its path; the list generator's element.
			var params map[string]any
			if err := yaml.Unmarshal(raw, &params); err != nil {
				t.Fatal(err)
			}
			dir := "apps/" + app
			params["path"] = map[string]any{"path": dir, "basename": app, "filename": config.FileName, "segments": []string{"apps", app}}
			var el map[string]any
			if err := yaml.Unmarshal(element.Raw, &el); err != nil {
				t.Fatal(err)
			}
			for k, v := range el {
				params[k] = v
			}
			tmpl := &v1alpha1.Application{
				ObjectMeta: metav1.ObjectMeta{Name: set.Spec.Template.Name, Labels: set.Spec.Template.Labels},
				Spec:       set.Spec.Template.Spec,
			}
			got, err := (&utils.Render{}).RenderTemplateParams(tmpl, set.Spec.SyncPolicy, params, set.Spec.GoTemplate, set.Spec.GoTemplateOptions)
			if err != nil {
				t.Fatalf("%s on %v: %v", app, el, err)
			}
			site := el["site"].(string)
			cluster, _ := settings.Site(site)
			role := "passive"
			if policy.ActiveSite == site {
				role = "active"
			}
			src := got.Spec.Source
			if got.Name != app+"-"+site || got.Labels["rbd-dr.io/role"] != role || src.Path != dir ||
				src.Plugin == nil || src.Plugin.Name != "rbd-dr" || len(src.Plugin.Env) != 1 || src.Plugin.Env[0].Name != "SITE" || src.Plugin.Env[0].Value != site ||
				got.Spec.Destination.Server != cluster.Cluster || got.Spec.Destination.Namespace != policy.Apps.Namespace || got.Spec.Project != policy.Apps.Namespace {
				t.Errorf("%s on %s: %+v", app, site, got)
			}
		}
	}
	// RollingSync: the passive sites' step first.
	steps := set.Spec.Strategy.RollingSync.Steps
	if len(steps) != 2 || !strings.Contains(steps[0].MatchExpressions[0].Values[0], "passive") {
		t.Errorf("steps %+v", steps)
	}
}

// The per-site Applications of the WordPress example decode as Argo CD's.
func TestSiteApplications(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("*", "applications", "*.yaml"))
	if len(paths) < 2 {
		t.Fatalf("found %v", paths)
	}
	for _, p := range paths {
		var app v1alpha1.Application
		decodeStrict(t, p, &app)
		if app.Spec.Source.Plugin == nil || app.Spec.Source.Plugin.Name != "rbd-dr" {
			t.Errorf("%s: not through the plugin", p)
		}
	}
}
