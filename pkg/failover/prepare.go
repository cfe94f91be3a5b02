package failover

import (
	"context"
	"errors"
	"fmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// prepareImage is Prepare's work on one image; Prepare, below, says its rules.
func (s *imageStep) prepareImage(ctx context.Context) error {
	if st, err := s.readStatus(ctx); err == nil && !st.Error() {
		s.res.Before, s.res.After = "not in error", "not in error"
		s.res.Note = fmt.Sprintf("%s %q", st.State, st.Description)
		return nil
	}
	info, err := s.c.Info(ctx, s.img)
	recreating := errors.Is(err, rbd.ErrNotFound) // by a resync an earlier run requested
	if !recreating {
		if err != nil {
			return err
		}
		if err := needMirrored(info, s.img); err != nil {
			return err
		}
		s.res.Before, s.res.After = role(info), role(info)
		if info.Primary() {
			return nil
		}
		st, err := s.c.MirrorStatus(ctx, s.img)
		if err != nil && !errors.Is(err, rbd.ErrNotFound) {
			return err
		}
		s.res.Note = fmt.Sprintf("%s %q", st.State, st.Description)
		if p, ok := firstPeer(st); !st.Error() || !ok || !p.ClaimsPrimary() || !p.Healthy() {
			return nil // healthy, unknown or nothing to copy from: promote decides
		}
		if err := s.c.Resync(ctx, s.img); err != nil {
			return err
		}
		s.res.Action = "resynced from the peer"
	} else {
		s.res.Before, s.res.Action = "being recreated", "waited for a resync"
	}
	err = waitUntil(ctx, s.o, s.deadline, func() (bool, pace, error) {
		st, err := s.c.MirrorStatus(ctx, s.img)
		if errors.Is(err, rbd.ErrNotFound) {
			return false, backOff, nil
		}
		return err == nil && st.Replaying(), backOff, err
	})
	if err != nil {
		return fmt.Errorf("resync from the peer requested but not replaying yet: %w", err)
	}
	s.res.Note = "replaying"
	return nil
}

// Prepare (active site) checks each image before promote: a non-primary
// copy in error while the peer is a healthy primary is resynced from it and
// waited for. An image whose status shows no error needs nothing, whatever
// its role, so the status alone settles the common case (one pool read for
// all the images, with rbd.Batched). First, with o.RPO, it refuses any image
// that no mirror snapshot schedule here covers that often (scheduled): promote
// is about to leave them all primary, and nothing is changed yet.
func Prepare(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, imageStep{c: c, o: o}, scheduledFirst((*imageStep).prepareImage, (*imageStep).statusAhead))
}
