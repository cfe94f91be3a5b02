package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// parametersCmd is the dynamic parameters announcement: Argo CD's UI shows
// the sites and which one rbd-dr.yaml makes active.
func parametersCmd(sys system) *cobra.Command {
	return &cobra.Command{
		Use:   "parameters",
		Short: "Announce the sites of this folder to Argo CD (the CMP dynamic parameters)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			appDir, err := sys.getwd()
			if err != nil {
				return fmt.Errorf("finding the app folder: %w", err)
			}
			repoRoot, err := cmpenv.Read(sys.getenv).RepoRoot(appDir)
			if err != nil {
				return err
			}
			p, err := config.Load(appDir, repoRoot)
			if err != nil {
				return err
			}
			out, err := json.Marshal(announce(p))
			if err != nil {
				return fmt.Errorf("encoding the announcement: %w", err)
			}
			_, err = fmt.Fprintln(sys.stdout, string(out))
			return err
		},
	}
}

func announce(p *config.Policy) []cmpenv.Announcement {
	roles := map[string]string{}
	for _, s := range p.Sites {
		switch {
		case !p.IsActive(s.Name):
			roles[s.Name] = "passive"
		case p.ForcePromote:
			roles[s.Name] = "active (forced promote)"
		default:
			roles[s.Name] = "active"
		}
	}
	return []cmpenv.Announcement{
		{
			Name:    "active-site",
			Title:   "Active site (from rbd-dr.yaml)",
			Tooltip: "Read only: to fail over, change activeSite in rbd-dr.yaml in git.",
			String:  p.ActiveSite,
		},
		{
			Name:           "site-roles",
			Title:          "Sites and their roles (from rbd-dr.yaml)",
			Tooltip:        "Read only: every site in rbd-dr.yaml and the role its next sync gives it.",
			CollectionType: "map",
			Map:            roles,
		},
	}
}
