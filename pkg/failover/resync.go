package failover

import (
	"context"
	"errors"
	"fmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// resyncImage is Resync's work on one image; Resync, below, says its rules.
func (s *imageStep) resyncImage(ctx context.Context) error {
	if !s.o.ForcePromoted {
		return fmt.Errorf("refusing to resync: rbd-dr.yaml does not say forcePromote: true, and only a forced failover makes a resync safe")
	}
	info, err := s.c.Info(ctx, s.img)
	switch {
	case errors.Is(err, rbd.ErrNotFound):
		s.res.Before = "being recreated" // by a resync an earlier run requested
	case err != nil:
		return err
	case !info.MirrorEnabled():
		return needMirrored(info, s.img)
	case info.Primary():
		s.res.Before = role(info)
		return fmt.Errorf("still primary here: the demote step must succeed first")
	default:
		s.res.Before = role(info)
	}
	requested, seen := false, "no status yet"
	err = waitUntil(ctx, s.o, s.deadline, func() (bool, pace, error) {
		st, err := s.c.MirrorStatus(ctx, s.img)
		switch {
		case errors.Is(err, rbd.ErrNotFound):
			seen = "being recreated" // a resync in progress
			return false, backOff, nil
		case err != nil:
			return false, backOff, err
		case st.Replaying():
			return true, fast, nil
		case st.SplitBrain() && !requested:
			if p, ok := firstPeer(st); !ok || !p.ClaimsPrimary() {
				seen = "split-brain, but no peer reports a primary to resync from"
				return false, backOff, nil
			}
			if err := s.c.Resync(ctx, s.img); err != nil {
				return false, backOff, err
			}
			requested = true
			s.res.Action = "resync requested"
			s.o.Log.WithField("image", s.img.String()).Warn("split-brain after the forced failover: resync from the new primary requested")
		}
		seen = fmt.Sprintf("%s %q", st.State, st.Description)
		return false, backOff, nil
	})
	if err != nil {
		return fmt.Errorf("not replaying from the new primary yet (last seen: %s): %w", seen, err)
	}
	s.res.After = "non-primary, replaying"
	return nil
}

// Resync (passive site, only after a forced failover) asks for a resync of
// each image that is split-brain once demoted, then waits until it replays
// again. A planned demotion can look split-brain for a moment; resyncing
// then would destroy data, so without ForcePromoted it refuses outright.
func Resync(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, imageStep{c: c, o: o}, (*imageStep).resyncImage)
}
