package failover

import (
	"context"
	"errors"
	"fmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// Prepare (active site) checks each image before promote: a non-primary
// copy in error while the peer is a healthy primary is resynced from it and
// waited for. An image whose status shows no error needs nothing, whatever
// its role, so the status alone settles the common case (one pool read for
// all the images, with rbd.Batched).
func Prepare(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, imageStep{c: c, o: o}, func(ctx context.Context, s *imageStep) error {
		return s.prepareImage(ctx)
	})
}

// prepareImage is Prepare's work on one image.
func (s *imageStep) prepareImage(ctx context.Context) error {
	c, img, o, res := s.c, s.img, s.o, s.res
	if st, err := c.MirrorStatus(ctx, img); err == nil && !st.Error() {
		res.Before, res.After = "not in error", "not in error"
		res.Note = fmt.Sprintf("%s %q", st.State, st.Description)
		return nil
	}
	info, err := c.Info(ctx, img)
	recreating := errors.Is(err, rbd.ErrNotFound) // by a resync an earlier run requested
	if !recreating {
		if err != nil {
			return err
		}
		if err := needMirrored(info, img); err != nil {
			return err
		}
		res.Before, res.After = role(info), role(info)
		if info.Primary() {
			return nil
		}
		st, err := c.MirrorStatus(ctx, img)
		if err != nil && !errors.Is(err, rbd.ErrNotFound) {
			return err
		}
		res.Note = fmt.Sprintf("%s %q", st.State, st.Description)
		if p, ok := firstPeer(st); !st.Error() || !ok || !p.ClaimsPrimary() || !p.Healthy() {
			return nil // healthy, unknown or nothing to copy from: promote decides
		}
		if err := c.Resync(ctx, img); err != nil {
			return err
		}
		res.Action = "resynced from the peer"
	} else {
		res.Before, res.Action = "being recreated", "waited for a resync"
	}
	err = waitUntil(ctx, o, s.deadline, func() (bool, pace, error) {
		st, err := c.MirrorStatus(ctx, img)
		if errors.Is(err, rbd.ErrNotFound) {
			return false, backOff, nil
		}
		return err == nil && st.Replaying(), backOff, err
	})
	if err != nil {
		return fmt.Errorf("resync from the peer requested but not replaying yet: %w", err)
	}
	res.Note = "replaying"
	return nil
}
