package render

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// objectError is a refusal of objects of the overlay: Render names the
// files they come from, which kustomize's output no longer says.
type objectError struct {
	ids []resid.ResId
	err error
}

func (e *objectError) Error() string { return e.err.Error() }
func (e *objectError) Unwrap() error { return e.err }

// refuse is err about the overlay's objects res.
func refuse(err error, res ...*resource.Resource) error {
	e := &objectError{err: err}
	for _, r := range res {
		e.ids = append(e.ids, r.CurId())
	}
	return e
}

// problems are several refusals of one check, reported together.
type problems []error

func (p problems) Error() string {
	s := make([]string, len(p))
	for i, e := range p {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (p problems) Unwrap() []error { return p }

// orNil is the problems as an error, nil when there are none.
func (p problems) orNil() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// withSources prefixes each object refusal in err with the files its
// objects come from, relative to the app folder (overlayRel is the
// overlay's folder there). It builds the overlay once more with kustomize's
// origin annotations, on the error path only; what kustomize cannot place
// (a generated object) keeps its message as it is.
func withSources(err error, fs filesys.FileSystem, overlay, overlayRel string) error {
	var parts []error
	if joined, ok := err.(problems); ok {
		parts = joined
	} else {
		parts = []error{err}
	}
	var origins map[resid.ResId]string
	out := make(problems, len(parts))
	for i, part := range parts {
		out[i] = part
		var oe *objectError
		if !errors.As(part, &oe) || len(oe.ids) == 0 {
			continue
		}
		if origins == nil {
			origins = sourceFiles(fs, overlay, overlayRel)
		}
		var files []string
		for _, id := range oe.ids {
			if f := origins[id]; f != "" && !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
		if len(files) > 0 {
			out[i] = fmt.Errorf("%s: %w", strings.Join(files, ", "), part)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

// sourceFiles maps each object of the overlay to the file it comes from,
// relative to the app folder. Empty when kustomize cannot say.
func sourceFiles(fs filesys.FileSystem, overlay, overlayRel string) map[resid.ResId]string {
	out := map[resid.ResId]string{}
	tracked, err := withOriginAnnotations(fs, overlay)
	if err != nil {
		return out
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(tracked, overlay)
	if err != nil {
		return out
	}
	for _, r := range m.Resources() {
		o, err := r.GetOrigin()
		if err != nil || o == nil || o.Path == "" {
			continue
		}
		f := filepath.ToSlash(filepath.Join(overlayRel, filepath.FromSlash(o.Path)))
		if o.Repo != "" {
			f = o.Repo + "//" + o.Path
		}
		out[r.CurId()] = f
	}
	return out
}

// originFS is a file system whose one kustomization file asks kustomize to
// annotate each object with the file it comes from.
type originFS struct {
	filesys.FileSystem
	file string
	body []byte
}

func (o originFS) ReadFile(path string) ([]byte, error) {
	if filepath.Clean(path) == o.file {
		return o.body, nil
	}
	return o.FileSystem.ReadFile(path)
}

func withOriginAnnotations(fs filesys.FileSystem, overlay string) (filesys.FileSystem, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file := filepath.Join(overlay, name)
		if !fs.Exists(file) {
			continue
		}
		body, err := fs.ReadFile(file)
		if err != nil {
			return nil, err
		}
		node, err := kyaml.Parse(string(body))
		if err != nil {
			return nil, err
		}
		list, err := node.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "buildMetadata"))
		if err != nil {
			return nil, err
		}
		if err := list.PipeE(kyaml.Append(kyaml.NewScalarRNode(types.OriginAnnotations).YNode())); err != nil {
			return nil, err
		}
		out, err := node.String()
		if err != nil {
			return nil, err
		}
		return originFS{FileSystem: fs, file: filepath.Clean(file), body: []byte(out)}, nil
	}
	return nil, fmt.Errorf("no kustomization file in %s", overlay)
}
