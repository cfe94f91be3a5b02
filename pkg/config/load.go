package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/repofs"
)

// Options place the file: where it is shown from and what it may reach.
type Options struct {
	// DisplayName is how messages name the file (e.g. its path in the repository).
	DisplayName string
	// AppDir is the absolute app folder; overlays are relative to it.
	AppDir string
	// RepoRoot is the absolute repository root; no overlay may leave it.
	RepoRoot string
}

// Load reads, decodes and validates appDir/rbd-dr.yaml, through the same
// read-only view of the repository that kustomize reads the overlays through:
// the file is the team's, so a link out of the repository (or to a device) is
// refused, and so is a file larger than a page of YAML could be.
func Load(appDir, repoRoot string) (*Policy, error) {
	path := filepath.Join(appDir, FileName)
	display := FileName
	if rel, err := filepath.Rel(repoRoot, path); err == nil && !strings.HasPrefix(rel, "..") {
		display = filepath.ToSlash(rel)
	}
	repo, err := repofs.New(repoRoot)
	if err != nil {
		return nil, err
	}
	data, err := repo.ReadFileLimited(path, MaxFileSize)
	if errors.Is(err, repofs.ErrOutside) {
		return nil, fmt.Errorf("%s: a link that leads outside the repository; argocd-rbd-dr reads only the repository, so make %s a plain file in the app folder", display, FileName)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: not found: this folder is not an argocd-rbd-dr app (add %s, see examples/wordpress)", display, FileName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", display, err)
	}
	return Parse(data, Options{DisplayName: display, AppDir: appDir, RepoRoot: repoRoot})
}

// Parse decodes and validates one policy document. Every problem found is
// returned at once, as Problems.
func Parse(data []byte, opts Options) (*Policy, error) {
	if opts.DisplayName == "" {
		opts.DisplayName = FileName
	}
	file := opts.DisplayName
	var p Policy
	idx, problems := decodeFile(data, file, "start from examples/wordpress/rbd-dr.yaml", movedField, &p)
	if len(problems) > 0 {
		return nil, problems
	}
	p.File, p.lines = file, idx
	v := validator{file: file, idx: idx, opts: opts}
	v.policy(&p)
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	return &p, nil
}
