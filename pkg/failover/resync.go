package failover

import (
	"context"
	"errors"
	"fmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// Resync (passive site, only after a forced failover) asks for a resync of
// each image that is split-brain once demoted, then waits until it replays
// again. A planned demotion can look split-brain for a moment; resyncing
// then would destroy data, so without ForcePromoted it refuses outright.
func Resync(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, imageStep{c: c, o: o}, func(ctx context.Context, s *imageStep) error {
		return s.resyncImage(ctx)
	})
}

// resyncImage is Resync's work on one image.
func (s *imageStep) resyncImage(ctx context.Context) error {
	c, img, o, res := s.c, s.img, s.o, s.res
	if !o.ForcePromoted {
		return fmt.Errorf("refusing to resync: rbd-dr.yaml does not say forcePromote: true, and only a forced failover makes a resync safe")
	}
	info, err := c.Info(ctx, img)
	switch {
	case errors.Is(err, rbd.ErrNotFound):
		res.Before = "being recreated" // by a resync an earlier run requested
	case err != nil:
		return err
	case !info.MirrorEnabled():
		return needMirrored(info, img)
	case info.Primary():
		res.Before = role(info)
		return fmt.Errorf("still primary here: the demote step must succeed first")
	default:
		res.Before = role(info)
	}
	requested, seen := false, "no status yet"
	err = waitUntil(ctx, o, s.deadline, func() (bool, pace, error) {
		st, err := c.MirrorStatus(ctx, img)
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
			if err := c.Resync(ctx, img); err != nil {
				return false, backOff, err
			}
			requested = true
			res.Action = "resync requested"
			o.Log.WithField("image", img.String()).Warn("split-brain after the forced failover: resync from the new primary requested")
		}
		seen = fmt.Sprintf("%s %q", st.State, st.Description)
		return false, backOff, nil
	})
	if err != nil {
		return fmt.Errorf("not replaying from the new primary yet (last seen: %s): %w", seen, err)
	}
	res.After = "non-primary, replaying"
	return nil
}
