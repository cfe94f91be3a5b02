package main

import (
	"bytes"
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
// With --all it plans every app folder under a tree in one view, or, if any
// of them cannot be planned, says every one that cannot and prints nothing.
func planCmd(sys system) *cobra.Command {
	var o plan.Options
	var output string
	var all bool
	var f appFlags
	cmd := &cobra.Command{
		Use:   "plan DIR [--to SITE] [--force] [--all]",
		Short: "Show what each site's next sync will do, in order, against the last commit: for the file as it is or for a failover to SITE; --all plans every app under DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: use table or json", output)
			}
			if o.Force && o.To == "" {
				return fmt.Errorf("--force plans a forced failover: give the site to fail over to with --to")
			}
			if all && f.namespace != "" {
				return fmt.Errorf("--namespace names one app's namespace: with --all each app's apps.namespace is used")
			}
			settings, err := f.settings()
			if err != nil {
				return err
			}
			plans, err := eachApp(args[0], all, "cannot be planned", func(dir string) (*plan.Plan, error) {
				return planApp(f, o, settings, dir)
			})
			if err != nil {
				return err
			}
			var out bytes.Buffer
			switch {
			case output == "json" && all:
				err = writeJSON(&out, plans)
			case output == "json":
				err = writeJSON(&out, plans[0])
			case all:
				err = writePlans(&out, plans)
			default:
				err = writePlan(&out, plans[0])
			}
			if err != nil {
				return err
			}
			_, err = sys.stdout.Write(out.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", "plan making SITE the active site")
	cmd.Flags().BoolVar(&o.Force, "force", false, "plan a forced failover (forcePromote: true): the old active site is lost")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().BoolVar(&all, "all", false, "DIR is a tree: plan every app folder under it (each holding rbd-dr.yaml) in one view")
	f.add(cmd, sys)
	return cmd
}

// planApp plans one app folder against the last commit.
func planApp(f appFlags, o plan.Options, settings *config.Settings, dir string) (*plan.Plan, error) {
	appDir, root, p, err := f.load(dir)
	if err != nil {
		return nil, err
	}
	o.Settings = settings
	o.AppDir, o.RepoRoot, o.Namespace = appDir, root, f.namespace
	o.Running, o.Base = lastCommit(appDir, root)
	pl, err := plan.Make(p, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.File, err)
	}
	return pl, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writePlans is the fleet's view: each app's change, then every step of
// every app and site in one table, then every warning with its app.
func writePlans(w io.Writer, plans []*plan.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tFILE\tCHANGE\tAGAINST")
	moves := 0
	for _, pl := range plans {
		base := pl.Base
		if base == "" {
			base = "the file as it is"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pl.App, pl.File, pl.Change, base)
		if pl.Moves() {
			moves++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d apps, %d change\n\n", len(plans), moves)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tSITE\tROLE\tAPP WAVE\tHOOK WAVE\tSTEP\tNAMESPACE\tTARGETS")
	for _, pl := range plans {
		for _, s := range pl.Sites {
			for _, st := range s.Steps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", pl.App, s.Name, s.Role, s.AppWave, st.Wave, st.Label(), st.Namespace, strings.Join(st.Targets, " "))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t-\tthen\t\t%s\n", pl.App, s.Name, s.Role, s.AppWave, s.Then)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var warned bool
	for _, pl := range plans {
		for _, warn := range pl.Warnings {
			if !warned {
				fmt.Fprintln(w, "\nwarnings:")
				warned = true
			}
			fmt.Fprintf(w, "  - %s: %s\n", pl.App, warn)
		}
	}
	return nil
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
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Role, s.AppWave, st.Wave, st.Label(), st.Namespace, strings.Join(st.Targets, " "))
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
