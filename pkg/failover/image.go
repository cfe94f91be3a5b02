package failover

import (
	"context"
	"fmt"
	"sync"
	"time"

	log "github.com/sirupsen/logrus"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// imageStep is one Ceph step's work on one image: what its rules read (the
// image, the clusters that answer for it, the step's options and budget)
// and what they write (the image's report row), carried as one value so
// that each rule takes only what it adds.
type imageStep struct {
	img rbd.Image
	// count is how many images the step works on.
	count int
	c     Rbd  // this site's cluster
	peer  Peer // the peer cluster, read-only; nil when not given
	o     Options
	// deadline is when the step's budget ends on o.Clock.
	deadline time.Time
	res      *Result
	// snaps is this site's snapshot list as last read, which demote and
	// promote decide on; promote's reads may fail (nil, and snapsErr says
	// why), and a forced promote then says it cannot tell the data's age.
	snaps    []rbd.Snapshot
	snapsErr error
	// schedules is the step's one read of this site's schedules.
	schedules *scheduleRead
	// scheduleNote says which schedule covers the image, for the report.
	scheduleNote string
	// claimUntil ends promote's waits on the peer's claim to be primary
	// (o.ClaimWatch after the image's promote began).
	claimUntil time.Time
	// watchRead is when that wait last read (watchDue).
	watchRead time.Time
	// early is the status read started beside the schedule read
	// (statusAhead), for the step's first status read (readStatus); nil
	// once taken. Every path reads the status before it changes anything,
	// but promote's attempts, which may read it after (dropEarly).
	early func() (rbd.MirrorStatus, error)
	// listed is the snapshot list started beside the schedule read
	// (promoteAhead), for the step's first list (listAhead); nil once taken.
	listed func()
}

// statusAhead starts the image's status read now, beside the step's other
// first reads; the step's first status read takes it (readStatus).
func (s *imageStep) statusAhead(ctx context.Context, reads *sync.WaitGroup) {
	s.early = s.askStatus(ctx, reads)
}

// statusAsker asks for an image's status before it is needed: the ask is
// counted at once, the answer waited for later (rbd.Batched).
type statusAsker interface {
	AskStatus(ctx context.Context, img rbd.Image) func() (rbd.MirrorStatus, error)
}

// askStatus starts the image's status read now and returns what reads it
// (once): through statusAsker when the cluster is one, so the ask joins
// the shared read before this image's next rbd process starts; otherwise
// on a goroutine of reads.
func (s *imageStep) askStatus(ctx context.Context, reads *sync.WaitGroup) func() (rbd.MirrorStatus, error) {
	if a, ok := s.c.(statusAsker); ok {
		return sync.OnceValues(a.AskStatus(ctx, s.img))
	}
	read := s.statusRead(ctx)
	reads.Go(func() { _, _ = read() })
	return read
}

// readStatus reads the image's status: the first time, the read
// statusAhead started, if any and not dropped (dropEarly).
func (s *imageStep) readStatus(ctx context.Context) (rbd.MirrorStatus, error) {
	if early := s.early; early != nil {
		s.early = nil
		return early()
	}
	return s.c.MirrorStatus(ctx, s.img)
}

// dropEarly comes before a promote attempt: a status read started before
// it must not decide what follows it (a promote that timed out may have
// landed, and a peer seen gone may be back, primary).
func (s *imageStep) dropEarly() { s.early = nil }

// step runs work, a step's work on one image (a method of imageStep), over
// the images within the step's budget, each on its own copy of each (which
// names the clusters and options) with its own report row. It fills in the
// defaults of each.o first, so work sees them too.
func step(ctx context.Context, images []rbd.Image, each imageStep, work func(*imageStep, context.Context) error) Report {
	each.o.defaults()
	each.schedules = &scheduleRead{}
	each.deadline = each.o.Clock.Now().Add(each.o.Timeout)
	each.count = len(images)
	ctx, cancel := context.WithTimeout(ctx, each.o.Timeout)
	defer cancel()
	return forEach(ctx, images, each.o, func(ctx context.Context, img rbd.Image, res *Result) error {
		s := each
		s.img, s.res = img, res
		return work(&s, ctx)
	})
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
			start := o.Clock.Now()
			res := &report[i]
			res.Target = img.String()
			res.Action = "none"
			res.Err = fn(ctx, img, res)
			res.Took = o.Clock.Now().Sub(start)
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

// mirroredInfo reads the image's role, refuses an image that is not
// mirrored, and notes the role in the report.
func (s *imageStep) mirroredInfo(ctx context.Context) (rbd.Info, error) {
	info, err := s.c.Info(ctx, s.img)
	if err != nil {
		return info, err
	}
	if err := needMirrored(info, s.img); err != nil {
		return info, err
	}
	s.res.Before, s.res.After = role(info), role(info)
	return info, nil
}

// isPrimary reads the image's role from s.snaps, the snapshots just listed,
// as librbd does, and notes it in the report; only an image without any
// mirror snapshot (or whose list could not be read: nil) costs an rbd info,
// which also says whether it is mirrored at all.
func (s *imageStep) isPrimary(ctx context.Context) (bool, error) {
	primary, ok := rbd.PrimaryFromSnapshots(s.snaps)
	if !ok {
		info, err := s.mirroredInfo(ctx)
		return info.Primary(), err
	}
	s.res.Before = "non-primary"
	if primary {
		s.res.Before = "primary"
	}
	s.res.After = s.res.Before
	return primary, nil
}

// addNote adds note to the image's report row after what is there.
func (s *imageStep) addNote(note string) {
	if s.res.Note != "" {
		s.res.Note += "; "
	}
	s.res.Note += note
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

// needMirrored refuses an image that is not mirrored: nothing here can make
// it safe to move.
func needMirrored(info rbd.Info, img rbd.Image) error {
	if !info.MirrorEnabled() {
		return fmt.Errorf("mirroring is not enabled on %s; enable it (rbd mirror image enable %s snapshot) on the primary site", img, img)
	}
	return nil
}

// firstPeer is the one peer site of a two-site set-up, if any reports.
func firstPeer(st rbd.MirrorStatus) (rbd.PeerSite, bool) {
	if len(st.PeerSites) == 0 {
		return rbd.PeerSite{}, false
	}
	return st.PeerSites[0], true
}
