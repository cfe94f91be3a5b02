package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// activateCmd is the failover edit: activeSite (and forcePromote) in
// rbd-dr.yaml, every other byte kept. With --all it edits every app folder
// under a tree, all or none, so a whole site moves in one commit.
func activateCmd(sys system) *cobra.Command {
	var force, all bool
	var f appFlags
	cmd := &cobra.Command{
		Use:   "activate SITE DIR [--force] [--all]",
		Short: "Make SITE the active site in DIR/rbd-dr.yaml, or in every app folder under DIR with --all (commit and push to fail over)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			site, dir := args[0], args[1]
			// Every edit is made in memory first: one app that may not
			// move stops the whole change before a file is written.
			edits, err := eachApp(dir, all, "may not move to "+site+"; nothing changed", func(d string) (activation, error) {
				return prepareActivation(f, d, site, force)
			})
			if err != nil {
				return err
			}
			if err := writeActivations(edits); err != nil {
				return err
			}
			for _, e := range edits {
				fmt.Fprintf(sys.stdout, "%s: %s\n", e.display, e.summary(site, force))
			}
			how := "argocd-rbd-dr plan " + dir
			if all {
				how = "argocd-rbd-dr plan --all " + dir
			}
			fmt.Fprintf(sys.stdout, "review with `%s`, then commit and push as one commit\n", how)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "the old active site is lost: set forcePromote: true (writes after the last mirror snapshot are lost)")
	cmd.Flags().BoolVar(&all, "all", false, "DIR is a tree: every app folder under it (each holding rbd-dr.yaml) moves, or none does")
	f.addRepoRoot(cmd)
	return cmd
}

// activation is one app's edit, made in memory.
type activation struct {
	path, display string
	mode          os.FileMode
	old, new      []byte
	wasActive     string
	wasForced     bool
}

func (e activation) summary(site string, force bool) string {
	if bytes.Equal(e.old, e.new) {
		return fmt.Sprintf("unchanged: activeSite %s, forcePromote %t already", site, force)
	}
	return fmt.Sprintf("activeSite %s (was %s), forcePromote %t (was %t)", site, e.wasActive, force, e.wasForced)
}

// prepareActivation reads one app folder's rbd-dr.yaml and makes the edit.
func prepareActivation(f appFlags, dir, site string, force bool) (activation, error) {
	appDir, root, err := f.folder(dir)
	if err != nil {
		return activation{}, err
	}
	path := filepath.Join(appDir, config.FileName)
	st, err := os.Stat(path)
	if err != nil {
		return activation{}, fmt.Errorf("reading %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return activation{}, fmt.Errorf("reading %s: %w", path, err)
	}
	display := config.FileName
	if rel, err := filepath.Rel(root, path); err == nil {
		display = filepath.ToSlash(rel)
	}
	opts := config.Options{DisplayName: display, AppDir: appDir, RepoRoot: root}
	out, err := config.SetActive(data, site, force, opts)
	if err != nil {
		return activation{}, err
	}
	e := activation{path: path, display: display, mode: st.Mode().Perm(), old: data, new: out}
	if p, err := config.Parse(data, opts); err == nil { // SetActive parsed it already
		e.wasActive, e.wasForced = p.ActiveSite, p.ForcePromote
	}
	return e, nil
}

// writeActivations writes every changed file. Should one write fail, the
// files already written are put back, so the tree is never half moved.
func writeActivations(edits []activation) error {
	for i, e := range edits {
		if bytes.Equal(e.old, e.new) {
			continue
		}
		if err := replaceFile(e.path, bytes.NewReader(e.new), e.mode); err != nil {
			failed := fmt.Errorf("writing %s: %w", e.path, err)
			for _, done := range edits[:i] {
				if bytes.Equal(done.old, done.new) {
					continue
				}
				if err := replaceFile(done.path, bytes.NewReader(done.old), done.mode); err != nil {
					return fmt.Errorf("%w; putting %s back failed too (%w): restore it with git checkout", failed, done.path, err)
				}
			}
			return fmt.Errorf("%w; nothing changed", failed)
		}
	}
	return nil
}
