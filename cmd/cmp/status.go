package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rpo"
)

// statusFlags say how status reaches each site's Ceph: by default the
// settings' monitors, as the namespace's own Ceph user with its key given
// per site; or a site's ceph.conf (a Rook toolbox's, or the lab's).
type statusFlags struct {
	confs, ids, keyrings, keyfiles map[string]string
	callTimeout                    time.Duration
	// binary is the rbd executable.
	binary string
}

// conn is how status reaches site for a namespace whose Ceph user is user.
func (sf statusFlags) conn(site config.SiteSettings, user string) rbd.Conn {
	c := rbd.Conn{Binary: sf.binary, Conf: sf.confs[site.Name], ID: sf.ids[site.Name], Keyring: sf.keyrings[site.Name], KeyFile: sf.keyfiles[site.Name]}
	if c.Conf == "" {
		c.MonHost = strings.Join(site.Monitors, ",")
	}
	if c.ID == "" && c.Conf == "" {
		c.ID = user
	}
	return c
}

// statusCmd shows how old each image's copy on the other site is, per site,
// against the recovery point the settings promise the app's namespace.
func statusCmd(sys system) *cobra.Command {
	var f appFlags
	var sf statusFlags
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "status DIR [--all]",
		Short: "Show, per site and image, the role, the mirror state and how old the copy on the other site is against the promised recovery point",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "prometheus" {
				return fmt.Errorf("--output %q: use table, json or prometheus", output)
			}
			settings, err := f.settings()
			if err != nil {
				return err
			}
			dirs := []string{args[0]}
			if all {
				if dirs, err = appFolders(args[0]); err != nil {
					return err
				}
			}
			var images []rpo.Image
			for _, dir := range dirs {
				got, err := appStatus(cmd.Context(), f, sf, settings, dir)
				if err != nil {
					return err
				}
				images = append(images, got...)
			}
			// Written only once everything was read: a failed status
			// leaves nothing half-written for a script to take.
			var out bytes.Buffer
			switch output {
			case "json":
				err = rpo.WriteJSON(&out, images)
			case "prometheus":
				err = rpo.WritePrometheus(&out, images)
			default:
				err = rpo.WriteTable(&out, images, time.Now())
			}
			if err != nil {
				return err
			}
			_, err = sys.stdout.Write(out.Bytes())
			return err
		},
	}
	f.add(cmd, sys)
	flags := cmd.Flags()
	flags.StringVarP(&output, "output", "o", "table", "table, json or prometheus (text exposition)")
	flags.BoolVar(&all, "all", false, "DIR is a tree: every app folder under it (each holding rbd-dr.yaml)")
	flags.StringToStringVar(&sf.confs, "ceph-conf", nil, "SITE=PATH: reach SITE with this ceph.conf (default: the settings' monitors)")
	flags.StringToStringVar(&sf.ids, "ceph-id", nil, "SITE=USER: the Ceph user, without client. (default: the namespace's cephUser, or the conf's with --ceph-conf)")
	flags.StringToStringVar(&sf.keyrings, "ceph-keyring", nil, "SITE=PATH: that user's keyring")
	flags.StringToStringVar(&sf.keyfiles, "ceph-keyfile", nil, "SITE=PATH: a file holding only that user's key")
	flags.StringVar(&sf.binary, "rbd", "rbd", "the rbd executable")
	flags.DurationVar(&sf.callTimeout, "call-timeout", 10*time.Second, "how long one rbd call may take (a site that is down does not hold the rest up)")
	return cmd
}

// appStatus reads one app's images on each of its sites.
func appStatus(ctx context.Context, f appFlags, sf statusFlags, settings *config.Settings, dir string) ([]rpo.Image, error) {
	_, _, p, err := f.load(dir)
	if err != nil {
		return nil, err
	}
	namespace := f.namespace
	if namespace == "" {
		namespace = p.Apps.Namespace
	}
	tenant, err := settings.Grant(p, namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.File, err)
	}
	images := make([]rbd.Image, len(p.Volumes))
	for i, v := range p.Volumes {
		images[i] = v.Target() // in the RADOS namespace Grant gave it
	}
	var out []rpo.Image
	for _, s := range p.Sites {
		site, _ := settings.Site(s.Name) // Grant checked every site
		conn := sf.conn(site, tenant.CephUser)
		client := rbd.NewClient(conn, sf.callTimeout)
		user := conn.ID
		if user == "" {
			user = "admin"
		}
		observed, err := rpo.Read(ctx, rbd.NewBatched(client), s.Name, "client."+user, images, config.DefaultParallelism)
		if errors.Is(err, rbd.ErrDenied) {
			return nil, err
		}
		if err != nil {
			// The site is down or cut off: every image there says so, and
			// the other site's view still shows.
			observed = make([]rpo.Observed, len(images))
			for i, img := range images {
				observed[i] = rpo.Observed{Site: s.Name, Image: img, Err: err}
			}
		}
		now := time.Now()
		for _, o := range observed {
			img := rpo.Assess(o, tenant.Interval, now)
			img.App, img.Namespace = p.Name, namespace
			out = append(out, img)
		}
	}
	return out, nil
}

// appFolders finds every app folder (holding rbd-dr.yaml) under dir, in
// lexical order, skipping hidden folders such as .git.
func appFolders(dir string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == config.FileName {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking for app folders under %s: %w", dir, err)
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no app folder under %s: none holds %s", dir, config.FileName)
	}
	return dirs, nil
}
