package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// validateCmd renders every site in both roles, for a GitOps repository's
// CI, and reports every problem at once.
func validateCmd(sys system) *cobra.Command {
	var namespace, repoRoot string
	var settingsPath string
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Check rbd-dr.yaml and render every site in both roles, reporting all problems",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			appDir, root, err := appFolder(args[0], repoRoot)
			if err != nil {
				return err
			}
			settings, err := config.LoadSettings(settingsPath)
			if err != nil {
				return err
			}
			p, err := config.Load(appDir, root)
			var problems config.Problems
			if errors.As(err, &problems) {
				for _, pr := range problems {
					fmt.Fprintln(sys.stderr, pr.Error())
				}
				return fmt.Errorf("%s: %d problem(s)", args[0], len(problems))
			}
			if err != nil {
				return err
			}
			failed := 0
			for _, site := range p.Sites {
				for _, role := range []render.Role{render.Active, render.Passive} {
					res, err := render.Render(p, render.Options{RepoRoot: root, AppDir: appDir, Site: site.Name, Role: role, Namespace: namespace, Settings: settings})
					if err == nil {
						_, err = res.YAML()
					}
					if err != nil {
						failed++
						fmt.Fprintf(sys.stderr, "%s as %s: %v\n", site.Name, role, err)
						continue
					}
					fmt.Fprintf(sys.stdout, "ok  %s as %s: %d objects, %d volumes, %d hooks\n", site.Name, role, res.App.Size(), len(res.Volumes), len(res.Hooks))
				}
			}
			if failed > 0 {
				return fmt.Errorf("%s: %d of %d renderings failed", args[0], failed, 2*len(p.Sites))
			}
			return nil
		},
	}
	settingsFlag(cmd, sys, &settingsPath)
	cmd.Flags().StringVar(&namespace, "namespace", "", "the app's namespace, as the Application's destination gives it (default: apps.namespace of rbd-dr.yaml)")
	cmd.Flags().StringVar(&repoRoot, "repo-root", "", "the repository root (default: the folder above DIR holding .git)")
	return cmd
}
