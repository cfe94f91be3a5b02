package plugin_test

import (
	"testing"

	argoplugin "github.com/argoproj/argo-cd/v2/cmpserver/plugin"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
)

func TestPluginYAMLMatchesTheParameterTable(t *testing.T) {
	want, err := cmpenv.PluginConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "plugin.yaml", want)
}

// Argo CD's own loader must accept the file and see what we mean.
func TestArgoCDReadsPluginYAML(t *testing.T) {
	cfg, err := argoplugin.ReadPluginConfig(".")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metadata.Name != cmpenv.PluginName {
		t.Errorf("name = %q, want %q", cfg.Metadata.Name, cmpenv.PluginName)
	}
	if cfg.Spec.Version != "" {
		t.Errorf("spec.version = %q: a version changes the socket name and the name Applications must use", cfg.Spec.Version)
	}
	if cfg.Spec.Discover.FileName != "rbd-dr.yaml" {
		t.Errorf("discover.fileName = %q", cfg.Spec.Discover.FileName)
	}
	if got := cfg.Spec.Generate.Command; len(got) != 2 || got[0] != cmpenv.Binary || got[1] != "generate" {
		t.Errorf("generate = %v", got)
	}
	if got := cfg.Spec.Parameters.Dynamic.Command; len(got) != 2 || got[1] != "parameters" {
		t.Errorf("dynamic parameters = %v", got)
	}
	if len(cfg.Spec.Parameters.Static) != len(cmpenv.Parameters) {
		t.Fatalf("static parameters = %d, want %d", len(cfg.Spec.Parameters.Static), len(cmpenv.Parameters))
	}
	for i, p := range cmpenv.Parameters {
		if got := cfg.Spec.Parameters.Static[i]; got.Name != p.Name || got.Title != p.Title {
			t.Errorf("static[%d] = %s/%s, want %s/%s", i, got.Name, got.Title, p.Name, p.Title)
		}
	}
}
