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
	var f appFlags
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Check rbd-dr.yaml and render every site in both roles, reporting all problems",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			appDir, root, err := f.folder(args[0])
			if err != nil {
				return err
			}
			settings, err := f.settings()
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
					res, err := render.Render(p, render.Options{RepoRoot: root, AppDir: appDir, Site: site.Name, Role: role, Namespace: f.namespace, Settings: settings, Version: version})
					if err == nil {
						_, err = res.YAML()
					}
					if err != nil {
						failed++
						fmt.Fprintf(sys.stderr, "%s as %s: %v\n", site.Name, role, err)
						continue
					}
					fmt.Fprintf(sys.stdout, "ok  %s as %s: %d objects, %d mirrored volumes (%d PV and claim objects), %d hooks\n", site.Name, role, res.App.Size(), len(p.Volumes), len(res.Volumes), len(res.Hooks))
				}
			}
			if failed > 0 {
				return fmt.Errorf("%s: %d of %d renderings failed", args[0], failed, 2*len(p.Sites))
			}
			return nil
		},
	}
	f.add(cmd, sys)
	return cmd
}
