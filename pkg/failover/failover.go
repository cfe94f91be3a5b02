// Package failover is the steps the PreSync hook Jobs run: quiesce, demote
// and resync on the passive site, prepare and promote on the active one. Each
// is idempotent (Argo CD runs hooks on every sync) and decides the way Ceph's
// own qa does, from the image's role, its mirror status and its snapshots.
//
// Each step has its own file (the forced promote: forced.go). The Ceph steps
// work on one image at a time through an imageStep (image.go), and every
// wait is waitUntil's (wait.go).
package failover

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	log "github.com/sirupsen/logrus"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// Rbd is what the steps need of the local cluster; *rbd.Client is one.
type Rbd interface {
	Info(ctx context.Context, img rbd.Image) (rbd.Info, error)
	MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error)
	Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error)
	Promote(ctx context.Context, img rbd.Image, force bool, timeout time.Duration) error
	// Lockers lists the image's lock holders: a forced promote checks that
	// this site's rbd-mirror let go of it.
	Lockers(ctx context.Context, img rbd.Image) ([]rbd.Locker, error)
	Demote(ctx context.Context, img rbd.Image) error
	Resync(ctx context.Context, img rbd.Image) error
	Schedules(ctx context.Context) ([]rbd.Schedule, error)
	// Meta and SetMeta read and write image metadata (PromotedAt).
	Meta(ctx context.Context, img rbd.Image, key string) (string, bool, error)
	SetMeta(ctx context.Context, img rbd.Image, key, value string) error
}

// Peer is what demote and promote read of the peer cluster, with a
// read-only user made there (mon 'profile rbd' osd 'profile rbd-read-only
// pool=<pool>'): its snapshot list, the direct proof that it holds a copy,
// and of its role.
type Peer interface {
	Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error)
	// HeaderMeta reads image metadata as a read-only user can (PromotedAt).
	HeaderMeta(ctx context.Context, img rbd.Image, key string) (string, bool, error)
}

// The defaults of the step tunables that rbd-dr.yaml does not set; the
// timeout and parallelism default to config's.
const (
	// DefaultPoll is the wait between checks while a fast event is expected
	// (a copy completing, a promote refused for a moment with exit 30): the
	// lab sees those within 0.1 s of the demote.
	DefaultPoll = 200 * time.Millisecond
	// DefaultPollCap caps the doubling wait of long waits (a peer that has
	// not demoted yet).
	DefaultPollCap = 4 * time.Second
	// DefaultForceTimeout bounds a forced promote, which can hang; and every
	// other rbd call.
	DefaultForceTimeout = 2 * time.Minute
	// DefaultPeerCallTimeout bounds one read of the peer cluster: a dead
	// peer must not hold up each of demote's checks for long.
	DefaultPeerCallTimeout = 5 * time.Second
	// DefaultNonForcedFirst is how long a forced promote keeps trying without
	// --force while the peer is up but neither primary nor demoted.
	DefaultNonForcedFirst = 30 * time.Second
	// DefaultMirrorLetGo is how long, after a forced promote, this site's
	// rbd-mirror may keep the image's exclusive lock before the step fails:
	// one that is well lets go within seconds of the promote.
	DefaultMirrorLetGo = 30 * time.Second
	// DefaultBothPrimaryGrace is how long a peer's claim to be primary may
	// last after this site's promote before the step fails loudly.
	DefaultBothPrimaryGrace = 45 * time.Second
	// DefaultStall is how long a copy may make no progress before the fast
	// poll gives way to back-off (Pacific can hang on a demote snapshot that
	// rbd-mirror was copying when it restarted).
	DefaultStall = 10 * time.Second
	// DefaultClaimWatch is how long promote reads the peer's claim to be
	// primary every Poll (one batched status read for all images) between
	// its backed-off full checks: a relocation's demote runs beside it and,
	// in the lab and the full loop, lands well within this.
	DefaultClaimWatch = 2 * time.Minute
	// DefaultWatchPoll is how often promote's watch of the peer's claim
	// reads once it has watched for Stall: a peer that has not started
	// demoting by then (its app is still stopping) is not waited for at
	// Poll's pace, which for ten apps' promotes of two images waiting at
	// once is a hundred rbd processes a second.
	DefaultWatchPoll = time.Second
	// DefaultSnapWatch is the largest step that lists each image's
	// snapshots (a process per image) where a larger one first reads the
	// status shared by all: promote every Poll while the peer claims
	// primary (claimWatch), demote for its proof of the peer's copy.
	DefaultSnapWatch = 2
	// DefaultHintTimeout bounds a read that only paces a wait or adds to the
	// report: with the peer site dead, a snap ls here was seen to hang.
	DefaultHintTimeout = 10 * time.Second
)

// Options tune a step.
type Options struct {
	// Timeout is the step's whole budget.
	Timeout time.Duration
	// Parallelism is how many images are worked on at once.
	Parallelism int
	// Force allows promote --force: only when rbd-dr.yaml says forcePromote.
	Force bool
	// ForcePromoted says git declared a forced failover: resync acts only
	// then, and demote takes the peer's status claim to be primary as one
	// when the peer's own snapshots cannot say.
	ForcePromoted bool
	// Poll is the wait between checks while a fast event is expected; a
	// longer wait doubles from it up to PollCap.
	Poll, PollCap time.Duration
	// ForceTimeout bounds a forced promote, which can hang.
	ForceTimeout time.Duration
	// NonForcedFirst is how long a forced promote tries without --force
	// while the peer is up but neither primary nor gone, so a peer that is
	// only slow is not split-brained. A peer whose status is down+ (its
	// rbd-mirror's watch expired) is gone and does not wait for it.
	NonForcedFirst time.Duration
	// MirrorLetGo is how long, after a forced promote, this site's
	// rbd-mirror may keep the image's exclusive lock (then nothing else can
	// write it) before the step fails.
	MirrorLetGo time.Duration
	// BothPrimaryGrace is how long a peer's claim to be primary may last
	// after this site's promote before the step fails loudly.
	BothPrimaryGrace time.Duration
	// Stall is how long a copy may make no progress before polling backs off.
	Stall time.Duration
	// ClaimWatch is how long promote reads only the status, every Poll,
	// between its backed-off full checks while the peer claims primary.
	ClaimWatch time.Duration
	// WatchPoll is how often that watch reads once it has run for Stall.
	WatchPoll time.Duration
	// SnapWatch is the largest step that lists each image's snapshots
	// instead of reading the status first (DefaultSnapWatch); negative:
	// none.
	SnapWatch int
	// RPO is the recovery point promised to the app's namespace: prepare
	// and promote refuse an image that no mirror snapshot schedule covers at
	// least this often. Zero checks nothing.
	RPO time.Duration
	// Kinds are the kinds quiesce stops: pkg/workload's Core, and the
	// Rollouts or taught kinds the renderer passes (nil: Core).
	Kinds workload.Catalog
	// InUse says which pods still mount an image's volume (PodsMounting):
	// demote waits until none does before demoting it. Nil checks nothing.
	InUse func(ctx context.Context, img rbd.Image) ([]string, error)
	// Clock is the time source of every wait (tests replace it).
	Clock Clock
	Log   log.FieldLogger
}

// Clock is what the waits need of time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.Timeout, config.DefaultStepTimeout)
	set(&o.Poll, DefaultPoll)
	set(&o.PollCap, DefaultPollCap)
	set(&o.ForceTimeout, DefaultForceTimeout)
	set(&o.NonForcedFirst, DefaultNonForcedFirst)
	set(&o.MirrorLetGo, DefaultMirrorLetGo)
	set(&o.BothPrimaryGrace, DefaultBothPrimaryGrace)
	set(&o.Stall, DefaultStall)
	set(&o.ClaimWatch, DefaultClaimWatch)
	set(&o.WatchPoll, DefaultWatchPoll)
	if o.SnapWatch == 0 {
		o.SnapWatch = DefaultSnapWatch
	}
	if o.Parallelism < 1 {
		o.Parallelism = config.DefaultParallelism
	}
	if o.Clock == nil {
		o.Clock = realClock{}
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
