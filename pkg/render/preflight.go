package render

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/repofs"
)

// scpStyle matches user@host:path, the git form kustomize would clone.
var scpStyle = regexp.MustCompile(`^[^/]*@[^/]*:`)

// isRemote says whether kustomize would fetch ref over the network (http or
// a git clone) instead of reading it from the repository.
func isRemote(ref string) bool {
	ref = strings.TrimSpace(ref)
	return strings.Contains(ref, "://") ||
		strings.HasPrefix(ref, "git::") ||
		strings.HasPrefix(ref, "github.com") ||
		scpStyle.MatchString(ref)
}

// preflight reads the kustomizations below dir, as kustomize will, and
// refuses what kustomize would fetch or run: remote bases and files, and Helm.
// Reads go through the repository's read-only view, so a base outside the repository fails here too.
func preflight(fs *repofs.FS, dir string, seen map[string]bool) error {
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	file, data, err := readKustomization(fs, dir)
	if err != nil {
		return err
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return fmt.Errorf("%s: %w", fs.Rel(file), err)
	}
	k.FixKustomization()
	where := fs.Rel(file)
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		return fmt.Errorf("%s: helmCharts are not rendered by argocd-rbd-dr; render the chart into the repository (helm template) and list the files under resources", where)
	}
	for field, refs := range referencedFiles(&k) {
		for _, ref := range refs {
			if isRemote(ref) {
				return fmt.Errorf("%s: %s entry %q is remote; argocd-rbd-dr reads only the repository, so vendor it into the repository and refer to it by path", where, field, ref)
			}
		}
	}
	for _, ref := range append(append([]string{}, k.Resources...), k.Components...) {
		sub := filepath.Join(dir, ref)
		if fs.IsDir(sub) {
			if err := preflight(fs, sub, seen); err != nil {
				return err
			}
		} else if _, err := fs.Inside(sub); err != nil {
			return fmt.Errorf("%s: resources entry %q: %w; keep every base and file inside the repository", where, ref, err)
		} else if !fs.Exists(sub) {
			return fmt.Errorf("%s: resources entry %q: no such file or folder in the repository", where, ref)
		}
	}
	return nil
}

// readKustomization finds the one kustomization file of dir.
func readKustomization(fs *repofs.FS, dir string) (string, []byte, error) {
	if _, err := fs.Inside(dir); err != nil {
		return "", nil, err
	}
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file := filepath.Join(dir, name)
		if fs.Exists(file) {
			data, err := fs.ReadFile(file)
			if err != nil {
				return "", nil, fmt.Errorf("reading %s: %w", fs.Rel(file), err)
			}
			return file, data, nil
		}
	}
	return "", nil, fmt.Errorf("%s: no kustomization.yaml in this folder", fs.Rel(dir))
}

// referencedFiles lists, by field, every entry kustomize may load as a file,
// folder or URL.
func referencedFiles(k *types.Kustomization) map[string][]string {
	refs := map[string][]string{
		"resources":      k.Resources,
		"components":     k.Components,
		"crds":           k.Crds,
		"configurations": k.Configurations,
		"generators":     k.Generators,
		"transformers":   k.Transformers,
		"validators":     k.Validators,
	}
	for _, p := range k.PatchesStrategicMerge {
		if !strings.Contains(string(p), "\n") { // otherwise an inline patch
			refs["patchesStrategicMerge"] = append(refs["patchesStrategicMerge"], string(p))
		}
	}
	for _, p := range k.Patches {
		refs["patches"] = append(refs["patches"], p.Path)
	}
	for _, p := range k.PatchesJson6902 {
		refs["patchesJson6902"] = append(refs["patchesJson6902"], p.Path)
	}
	for _, r := range k.Replacements {
		refs["replacements"] = append(refs["replacements"], r.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		refs["configMapGenerator"] = append(refs["configMapGenerator"], generatorFiles(g.GeneratorArgs)...)
	}
	for _, g := range k.SecretGenerator {
		refs["secretGenerator"] = append(refs["secretGenerator"], generatorFiles(g.GeneratorArgs)...)
	}
	if p, ok := k.OpenAPI["path"]; ok {
		refs["openapi"] = []string{p}
	}
	return refs
}

func generatorFiles(g types.GeneratorArgs) []string {
	files := append([]string{}, g.FileSources...)
	files = append(files, g.EnvSources...)
	if g.EnvSource != "" {
		files = append(files, g.EnvSource)
	}
	return files
}
