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
// rbd-dr.yaml, every other byte kept.
func activateCmd(sys system) *cobra.Command {
	var force bool
	var f appFlags
	cmd := &cobra.Command{
		Use:   "activate SITE DIR [--force]",
		Short: "Make SITE the active site in DIR/rbd-dr.yaml (commit and push to fail over)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			appDir, root, err := f.folder(args[1])
			if err != nil {
				return err
			}
			path := filepath.Join(appDir, config.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("reading %s: %w", path, err)
			}
			display := config.FileName
			if rel, err := filepath.Rel(root, path); err == nil {
				display = filepath.ToSlash(rel)
			}
			out, err := config.SetActive(data, args[0], force, config.Options{DisplayName: display, AppDir: appDir, RepoRoot: root})
			if err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			if err := replaceFile(path, bytes.NewReader(out), st.Mode().Perm()); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			fmt.Fprintf(sys.stdout, "%s: activeSite %s, forcePromote %t; review with `argocd-rbd-dr plan %s`, then commit and push\n", display, args[0], force, args[1])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "the old active site is lost: set forcePromote: true (writes after the last mirror snapshot are lost)")
	f.addRepoRoot(cmd)
	return cmd
}
