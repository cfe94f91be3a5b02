package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	log "github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rpo"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// hookCmd is what the rendered hook Jobs run. Its command line is the
// contract in pkg/hookcmd.
func hookCmd(sys system) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hook STEP [flags] TARGET...",
		Short: "Run one failover step (inside a hook Job)",
	}
	for _, step := range hookcmd.Steps {
		req := hookcmd.Request{Step: step}
		sub := &cobra.Command{
			Use:   string(step) + " [flags] TARGET...",
			Short: "The " + string(step) + " step",
			RunE: func(_ *cobra.Command, args []string) error {
				if err := hookcmd.CheckRenderer(sys.getenv(hookcmd.RendererVersionEnv), version); err != nil {
					return err
				}
				req.Targets = args
				if err := req.Validate(); err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return runStep(ctx, sys, req)
			},
		}
		// The step's flags are the contract's own (pkg/hookcmd); cobra
		// parses them with the root's --log-level and --log-format.
		sub.Flags().AddFlagSet(hookcmd.FlagSet(step, &req))
		// A flag this binary does not know most likely comes from a renderer
		// of another release: say that, rather than only "unknown flag".
		sub.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
			if mismatch := hookcmd.CheckRenderer(sys.getenv(hookcmd.RendererVersionEnv), version); mismatch != nil {
				return fmt.Errorf("%w (%w)", mismatch, err)
			}
			return err
		})
		cmd.AddCommand(sub)
	}
	return cmd
}

// stepOptions maps the command line to the step's options: Force and
// ForcePromoted come from the command line and nowhere else.
func stepOptions(r hookcmd.Request) failover.Options {
	return failover.Options{Timeout: r.Timeout, Parallelism: r.Parallelism, Force: r.Force, ForcePromoted: r.ForcePromoted, RPO: r.RPO, Kinds: workload.Core.With(r.Kinds...), Log: log.StandardLogger()}
}

// runStep runs a validated request and prints its per-target report. Its
// last log line says how long the step took: the hook time a sync costs,
// apart from the Job's and pod's own start.
func runStep(ctx context.Context, sys system, r hookcmd.Request) (err error) {
	start := time.Now()
	defer func() {
		result := "ok"
		if err != nil {
			result = "failed" // the error itself is printed last
		}
		log.WithFields(log.Fields{"step": string(r.Step), "targets": len(r.Targets), "result": result, "took": time.Since(start).Round(time.Millisecond).String()}).Info("step finished")
	}()
	o := stepOptions(r)
	var report failover.Report
	if r.Step == hookcmd.Quiesce {
		kube, err := inCluster(r.Step)
		if err != nil {
			return err
		}
		report = failover.Quiesce(ctx, kube, r.Namespace, r.Targets, o)
	} else {
		images, err := r.Images()
		if err != nil {
			return err
		}
		local := rbd.NewClient(r.Ceph, failover.DefaultForceTimeout)
		local.Log = log.StandardLogger()
		if r.Step == hookcmd.RPOCheck {
			ctx, cancel := context.WithTimeout(ctx, r.Timeout)
			defer cancel()
			return rpoCheck(ctx, sys, rbd.NewBatched(local), r, images)
		}
		c := rbd.NewBatched(local)
		var peer failover.Peer // a nil *rbd.Client would not be a nil Peer
		if r.Peer != (rbd.Conn{}) {
			p := rbd.NewClient(r.Peer, failover.DefaultPeerCallTimeout)
			p.Log = log.StandardLogger().WithField("cluster", "peer")
			peer = p
		}
		switch r.Step {
		case hookcmd.Demote:
			if len(r.Claims) > 0 {
				kube, err := inCluster(r.Step)
				if err != nil {
					return err
				}
				claims := map[string]string{}
				for i, img := range images {
					claims[img.String()] = r.Claims[i]
				}
				o.InUse = failover.PodsMounting(kube, r.Namespace, claims)
			}
			report = failover.Demote(ctx, c, peer, images, o)
		case hookcmd.Resync:
			report = failover.Resync(ctx, c, images, o)
		case hookcmd.Prepare:
			report = failover.Prepare(ctx, c, images, o)
		case hookcmd.Promote:
			report = failover.Promote(ctx, c, peer, images, o)
		}
	}
	report.Write(sys.stdout)
	if err := report.Err(); err != nil {
		return fmt.Errorf("hook %s: %w", r.Step, err)
	}
	return nil
}

// rpoCheckParallelism caps how many images an rpo-check reads at once: it
// runs in the background, on every app's schedule, and a burst of twenty
// rbd processes would compete with a move on the same node; four at a time
// (statuses in shared pool reads) still reads a large app in fewer rounds
// than one at a time.
const rpoCheckParallelism = 4

// rpoCheck judges every image's copy against the promised recovery point,
// prints them, warns past 2x, and fails (the CronJob's Job with it, and the
// app turns Degraded) on any that breaks the promise.
func rpoCheck(ctx context.Context, sys system, c rpo.Reader, r hookcmd.Request, images []rbd.Image) error {
	user := r.Ceph.ID
	if user == "" {
		user = "admin"
	}
	observed, err := rpo.Read(ctx, c, "", "client."+user, images, min(r.Parallelism, rpoCheckParallelism))
	if err != nil {
		return fmt.Errorf("hook rpo-check: %w", err)
	}
	now := time.Now()
	judged := make([]rpo.Image, len(observed))
	var failed []string
	for i, o := range observed {
		img := rpo.Assess(o, r.RPO, now)
		judged[i] = img
		entry := log.WithFields(log.Fields{"image": img.Image, "role": img.Role, "rpo": img.Level, "ageSeconds": int(img.Age)})
		switch {
		case img.Level.Fails():
			entry.Error(img.Reason)
			failed = append(failed, img.Image+": "+img.Reason)
		case img.Level == rpo.Warning:
			entry.Warn(img.Reason)
		default:
			entry.Info(img.Reason)
		}
	}
	if err := rpo.WriteTable(sys.stdout, judged, now); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("hook rpo-check: %d of %d images break the promised recovery point (%s): %s", len(failed), len(judged), rbd.FormatInterval(r.RPO), strings.Join(failed, "; "))
	}
	return nil
}

// inCluster is the API client of the Job's ServiceAccount.
func inCluster(step hookcmd.Step) (dynamic.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("hook %s runs inside the cluster, with the ServiceAccount the renderer creates (demote needs it only with --claims): %w", step, err)
	}
	kube, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return kube, nil
}

// copySelfCmd delivers the binary into a Ceph Job's shared emptyDir, from an
// image that has no shell or cp.
func copySelfCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "copy-self DEST",
		Short:  "Copy this binary to DEST (used by the Ceph hook Jobs' initContainer)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(_ *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
			return copyFile(self, args[0])
		},
	}
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	defer in.Close()
	if err := replaceFile(dest, in, 0o755); err != nil {
		return fmt.Errorf("copying to %s: %w", dest, err)
	}
	return nil
}
