package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/plan"
)

// planCmd shows, before the commit, what each site's next sync will do.
func planCmd(sys system) *cobra.Command {
	var o plan.Options
	var output string
	var f appFlags
	cmd := &cobra.Command{
		Use:   "plan DIR [--to SITE] [--force]",
		Short: "Show what each site's next sync will do, in order, against the last commit: for the file as it is or for a failover to SITE",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: use table or json", output)
			}
			if o.Force && o.To == "" {
				return fmt.Errorf("--force plans a forced failover: give the site to fail over to with --to")
			}
			appDir, root, err := f.folder(args[0])
			if err != nil {
				return err
			}
			if o.Settings, err = f.settings(); err != nil {
				return err
			}
			p, err := config.Load(appDir, root)
			if err != nil {
				return err
			}
			o.AppDir, o.RepoRoot, o.Namespace = appDir, root, f.namespace
			o.Running, o.Base = lastCommit(appDir, root)
			pl, err := plan.Make(p, o)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(sys.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(pl)
			}
			return writePlan(sys.stdout, pl)
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", "plan making SITE the active site")
	cmd.Flags().BoolVar(&o.Force, "force", false, "plan a forced failover (forcePromote: true): the old active site is lost")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	f.add(cmd, sys)
	return cmd
}

func writePlan(w io.Writer, pl *plan.Plan) error {
	fmt.Fprintf(w, "app %s (%s): activeSite %s, forcePromote %t\n", pl.App, pl.File, pl.ActiveSite, pl.ForcePromote)
	fmt.Fprintf(w, "change: %s\n", pl.Change)
	if pl.Base != "" {
		fmt.Fprintf(w, "against: %s\n", pl.Base)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tROLE\tAPP WAVE\tHOOK WAVE\tSTEP\tNAMESPACE\tTARGETS")
	for _, s := range pl.Sites {
		for _, st := range s.Steps {
			step := st.Step
			if st.Force {
				step += " --force"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Role, s.AppWave, st.Wave, step, st.Namespace, strings.Join(st.Targets, " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t-\tthen\t\t%s\n", s.Name, s.Role, s.AppWave, s.Then)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(pl.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, warn := range pl.Warnings {
			fmt.Fprintln(w, "  - "+warn)
		}
	}
	return nil
}
