package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// scheduleRescan is how long the mgr may take to notice a newly promoted
// image: it rescans for primary images about once a minute (ceph PR #46743).
const scheduleRescan = time.Minute

// scheduleRead reads this site's schedules once for the whole step, however
// many images ask.
type scheduleRead struct {
	once   sync.Once
	scheds []rbd.Schedule
	err    error
}

func (r *scheduleRead) get(ctx context.Context, c Rbd) ([]rbd.Schedule, error) {
	r.once.Do(func() { r.scheds, r.err = c.Schedules(ctx) })
	return r.scheds, r.err
}

// scheduled refuses to go on with an image that no mirror snapshot schedule
// here covers at least every o.RPO: left primary, its copy on the other
// site would move only when someone took a mirror snapshot, and the
// promised recovery point could not be kept. It notes when the first
// scheduled snapshot is due. Without o.RPO it checks nothing (people
// running a step by hand); the rendered Jobs always give it.
func (s *imageStep) scheduled(ctx context.Context) error {
	if s.o.RPO <= 0 {
		return nil
	}
	scheds, err := s.schedules.get(ctx, s.c)
	if errors.Is(err, rbd.ErrDenied) {
		return fmt.Errorf("the Ceph user may not read the mirror snapshot schedules, so the promised recovery point cannot be checked: give it the cap mgr 'profile rbd %s' (manifests/tenant's CephClient has it): %w", s.img.CapScope(), err)
	}
	if err != nil {
		return fmt.Errorf("reading the mirror snapshot schedules: %w", err)
	}
	cov, ok, err := rbd.Covering(scheds, s.img)
	fix := fmt.Sprintf("the platform team sets one on both sites: rbd mirror snapshot schedule add %s %s (Rook: the CephBlockPool's or CephBlockPoolRadosNamespace's spec.mirroring.snapshotSchedules; docs/operations.md#snapshot-schedules)", s.img.ScheduleScope(), rbd.FormatInterval(s.o.RPO))
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("no mirror snapshot schedule covers %s on this site: left primary, its copy on the other site would only move when someone takes a mirror snapshot, and the promised recovery point (%s) could not be kept; nothing was changed; %s", s.img, rbd.FormatInterval(s.o.RPO), fix)
	case cov.Interval > s.o.RPO:
		return fmt.Errorf("the mirror snapshot schedule covering %s on this site (every %s, %s) is longer than the promised recovery point (%s); nothing was changed; %s", s.img, rbd.FormatInterval(cov.Interval), cov.Level, rbd.FormatInterval(s.o.RPO), fix)
	}
	due := s.o.Clock.Now().Add(scheduleRescan).Truncate(cov.Interval).Add(cov.Interval)
	s.scheduleNote = fmt.Sprintf("scheduled every %s (%s): first snapshot due by %s", rbd.FormatInterval(cov.Interval), cov.Level, due.UTC().Format(time.TimeOnly))
	return nil
}

// scheduledFirst runs work on an image only once s.scheduled passed, and
// adds the schedule's note to the image's report row. ahead starts the
// reads work begins with beside the schedule read: they only read, and
// work takes them only once the schedules passed. A sync that has nothing
// to move is those reads alone, so they then cost one rbd process's time,
// not one after the other.
func scheduledFirst(work func(*imageStep, context.Context) error, ahead func(*imageStep, context.Context, *sync.WaitGroup)) func(*imageStep, context.Context) error {
	return func(s *imageStep, ctx context.Context) error {
		var reads sync.WaitGroup
		defer reads.Wait()
		ahead(s, ctx, &reads)
		if err := s.scheduled(ctx); err != nil {
			return err
		}
		err := work(s, ctx)
		if s.scheduleNote != "" {
			s.addNote(s.scheduleNote)
		}
		return err
	}
}
