// Package failover is the steps the PreSync hook Jobs run: quiesce, demote
// and resync on the passive site, prepare and promote on the active one. Each
// is idempotent (Argo CD runs hooks on every sync) and decides the way Ceph's
// own qa does, from the image's role, its mirror status and its snapshots.
package failover

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	log "github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// Rbd is what the steps need of the local cluster; *rbd.Client is one.
type Rbd interface {
	Info(ctx context.Context, img rbd.Image) (rbd.Info, error)
	MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error)
	Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error)
	Promote(ctx context.Context, img rbd.Image, force bool, timeout time.Duration) error
	Demote(ctx context.Context, img rbd.Image) error
	Resync(ctx context.Context, img rbd.Image) error
}

// Options tune a step.
type Options struct {
	// Timeout is the step's whole budget.
	Timeout time.Duration
	// Parallelism is how many images are worked on at once.
	Parallelism int
	// Force allows promote --force: only when rbd-dr.yaml says forcePromote.
	Force bool
	// ForcePromoted says git declared a forced failover; resync acts only then.
	ForcePromoted bool
	// Poll is the first wait between checks; it doubles up to 8x.
	Poll time.Duration
	// ForceTimeout bounds a forced promote, which can hang.
	ForceTimeout time.Duration
	// NonForcedFirst is how long promote tries without --force before it
	// forces, so a peer that is only slow is not split-brained.
	NonForcedFirst time.Duration
	// BothPrimaryGrace is how long a peer's claim to be primary may last
	// before it is believed: rbd-mirror refreshes a status about every 30 s,
	// so a younger claim can be a record from before the peer demoted.
	BothPrimaryGrace time.Duration
	// Now is the clock (tests replace it).
	Now func() time.Time
	Log log.FieldLogger
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Minute
	}
	if o.Parallelism < 1 {
		o.Parallelism = 1
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.ForceTimeout <= 0 {
		o.ForceTimeout = 2 * time.Minute
	}
	if o.NonForcedFirst <= 0 {
		o.NonForcedFirst = 30 * time.Second
	}
	if o.BothPrimaryGrace <= 0 {
		o.BothPrimaryGrace = 45 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = log.StandardLogger()
	}
}

// Result is what a step did to one target: an image, or a PVC for quiesce.
type Result struct {
	Target string
	Before string
	After  string
	// Action is what the step did: "none" when it found nothing to do.
	Action string
	// Note carries what a person must know (the age of force-promoted data).
	Note string
	Took time.Duration
	Err  error
}

// Report is a step's per-image summary.
type Report []Result

// Write prints the report as a table.
func (r Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tBEFORE\tAFTER\tACTION\tTOOK\tNOTE")
	for _, res := range r {
		note := res.Note
		if res.Err != nil {
			note = "FAILED: " + res.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", res.Target, res.Before, res.After, res.Action, res.Took.Round(100*time.Millisecond), note)
	}
	tw.Flush()
}

// Err is nil when every image succeeded, otherwise one error naming them.
func (r Report) Err() error {
	var failed []string
	for _, res := range r {
		if res.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", res.Target, res.Err))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d failed: %s", len(failed), len(r), strings.Join(failed, "; "))
}

// forEach runs fn over the images, at most parallelism at a time, and
// collects one result per image in the images' order.
func forEach(ctx context.Context, images []rbd.Image, o Options, fn func(context.Context, rbd.Image, *Result) error) Report {
	report := make(Report, len(images))
	sem := make(chan struct{}, o.Parallelism)
	var wg sync.WaitGroup
	for i, img := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := o.Now()
			res := &report[i]
			res.Target = img.String()
			res.Action = "none"
			res.Err = fn(ctx, img, res)
			res.Took = o.Now().Sub(start)
			entry := o.Log.WithFields(log.Fields{"target": res.Target, "before": res.Before, "after": res.After, "action": res.Action})
			if res.Err != nil {
				entry.WithError(res.Err).Error("failed")
			} else {
				entry.Info("done")
			}
		}()
	}
	wg.Wait()
	return report
}

// role names the image's role for the report.
func role(info rbd.Info) string {
	switch {
	case !info.MirrorEnabled():
		return "not mirrored"
	case info.Primary():
		return "primary"
	default:
		return "non-primary"
	}
}

// waitFor polls check until it says done, ctx ends, or it fails. The wait
// between polls starts at o.Poll and doubles up to 8x.
func waitFor(ctx context.Context, o Options, check func() (bool, error)) error {
	// Past its Cap a Backoff keeps returning the Cap (ExponentialBackoff
	// would stop there instead).
	delays := wait.Backoff{Duration: o.Poll, Factor: 2, Cap: 8 * o.Poll, Steps: math.MaxInt32}.DelayFunc()
	return delays.Until(ctx, true, false, func(context.Context) (bool, error) { return check() })
}

// needMirrored refuses an image that is not mirrored: nothing here can make
// it safe to move.
func needMirrored(info rbd.Info, img rbd.Image) error {
	if !info.MirrorEnabled() {
		return fmt.Errorf("mirroring is not enabled on %s; enable it (rbd mirror image enable %s snapshot) on the primary site", img, img)
	}
	return nil
}
