package render_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

const pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n"

// renderInRepo renders site a of repo/app, where repo sits inside a folder
// that also holds a secret file outside the repository.
func renderInRepo(t *testing.T, files map[string]string, links map[string]string) error {
	t.Helper()
	outer := t.TempDir()
	writeTree(t, outer, map[string]string{"secret/kustomization.yaml": "resources: [s.yaml]\n", "secret/s.yaml": pvc, "secret.yaml": pvc})
	root := filepath.Join(outer, "repo")
	files["app/rbd-dr.yaml"] = policy
	writeTree(t, root, files)
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	app := filepath.Join(root, "app")
	p, err := config.Load(app, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: "a", Namespace: "shop", Settings: testSettings(t)})
	return err
}

func TestJail(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		links map[string]string
		want  string // "" = renders
	}{
		{"base inside the repository", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [../../shared]\n",
			"shared/kustomization.yaml":      "resources: [pvc.yaml, writer.yaml]\n", "shared/pvc.yaml": pvc, "shared/writer.yaml": writer,
		}, nil, ""},
		{"folder symlinked inside the repository", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [base]\n",
			"shared/kustomization.yaml":      "resources: [pvc.yaml, writer.yaml]\n", "shared/pvc.yaml": pvc, "shared/writer.yaml": writer,
		}, map[string]string{"app/overlay/base": "../../shared"}, ""},
		{"base outside the repository", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [../../../secret]\n",
		}, nil, "outside the repository"},
		{"file symlinked outside", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\n",
		}, map[string]string{"app/overlay/pvc.yaml": "../../../secret.yaml"}, "outside the repository"},
		{"folder symlinked outside", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [base]\n",
		}, map[string]string{"app/overlay/base": "../../../secret"}, "outside the repository"},
		{"overlay symlinked outside", map[string]string{}, map[string]string{"app/overlay": "../../secret"}, "outside the repository"},
		{"remote git base", map[string]string{
			"app/overlay/kustomization.yaml": "resources:\n  - github.com/kubernetes-sigs/kustomize/examples/helloWorld?ref=v5.4.2\n",
		}, nil, `resources entry "github.com/kubernetes-sigs/kustomize/examples/helloWorld?ref=v5.4.2" is remote`},
		{"remote https file", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [https://example.com/app.yaml]\n",
		}, nil, "is remote"},
		{"remote patch", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\npatches:\n  - path: https://example.com/p.yaml\n", "app/overlay/pvc.yaml": pvc,
		}, nil, `patches entry "https://example.com/p.yaml" is remote`},
		{"remote base in a nested base", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [../base]\n",
			"app/base/kustomization.yaml":    "resources: [git@github.com:org/repo.git//deploy]\n",
		}, nil, "app/base/kustomization.yaml: resources entry"},
		{"helm chart", map[string]string{
			"app/overlay/kustomization.yaml": "helmCharts:\n  - name: wordpress\n    repo: https://charts.example.com\n",
		}, nil, "helmCharts are not rendered by argocd-rbd-dr"},
		// generators and transformers are read by kustomize alone (preflight
		// does not look at them): the jail is what keeps them in.
		{"generator outside the repository", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\ngenerators: [../../../secret]\n", "app/overlay/pvc.yaml": pvc,
		}, nil, "outside the repository"},
		{"transformer file outside the repository", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\ntransformers: [../../../secret.yaml]\n", "app/overlay/pvc.yaml": pvc,
		}, nil, "outside the repository"},
		{"transformer linked outside", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\ntransformers: [t.yaml]\n", "app/overlay/pvc.yaml": pvc,
		}, map[string]string{"app/overlay/t.yaml": "../../../secret.yaml"}, "outside the repository"},
		{"generated file outside the repository", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\nconfigMapGenerator: [{name: c, files: [../../../secret.yaml]}]\n", "app/overlay/pvc.yaml": pvc,
		}, nil, "outside the repository"},
		{"exec plugin", map[string]string{
			"app/overlay/kustomization.yaml": "resources: [pvc.yaml]\ntransformers: [fn.yaml]\n", "app/overlay/pvc.yaml": pvc,
			"app/overlay/fn.yaml": "apiVersion: example.com/v1\nkind: Sed\nmetadata:\n  name: x\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
		}, nil, "kustomize: external plugins disabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := renderInRepo(t, c.files, c.links)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want it to render: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}
