package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// step runs fn over the images within the step's budget. It fills in the
// defaults through o, so the caller's fn, which reads the same Options,
// sees them too.
func step(ctx context.Context, images []rbd.Image, o *Options, fn func(context.Context, rbd.Image, *Result) error) Report {
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return forEach(ctx, images, *o, fn)
}

// mirroredInfo reads the image's role, refuses an image that is not
// mirrored, and notes the role in the report.
func mirroredInfo(ctx context.Context, c Rbd, img rbd.Image, res *Result) (rbd.Info, error) {
	info, err := c.Info(ctx, img)
	if err != nil {
		return info, err
	}
	if err := needMirrored(info, img); err != nil {
		return info, err
	}
	res.Before, res.After = role(info), role(info)
	return info, nil
}

// Demote (passive site) demotes each primary image; a non-primary one is
// left alone. It never demotes a primary whose peer has not yet copied its
// newest snapshot: demoting then would let the peer promote an older copy
// (the flip-flop split-brain), unless the peer itself claims primary after a
// forced failover, which is what the demotion resolves.
func Demote(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, img rbd.Image, res *Result) error {
		info, err := mirroredInfo(ctx, c, img, res)
		if err != nil {
			return err
		}
		if !info.Primary() {
			return nil
		}
		why := ""
		err = waitFor(ctx, o, func() (bool, error) {
			st, err := c.MirrorStatus(ctx, img)
			if err != nil {
				return false, err
			}
			snaps, err := c.Snapshots(ctx, img)
			if err != nil {
				return false, err
			}
			if len(st.PeerSites) == 0 {
				why = "no peer site reports this image"
				return false, nil
			}
			peer := st.PeerSites[0]
			latest, _ := rbd.LatestMirror(snaps)
			if peer.ClaimsPrimary() || peer.HasCopied(latest.Timestamp.Unix()) {
				return true, nil
			}
			why = fmt.Sprintf("peer %s reports %s %q", peer.SiteName, peer.State, peer.Description)
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("not demoted: the peer has not confirmed a complete copy of this primary's newest snapshot (%s), so demoting could lose the writes since; check the peer's rbd-mirror, and if the peer site is lost keep this site active: %w", why, err)
		}
		if err := c.Demote(ctx, img); err != nil && !errors.Is(err, rbd.ErrNotPrimary) {
			return err
		}
		res.Action, res.After = "demoted", "non-primary"
		return nil
	})
}

// Resync (passive site, only after a forced failover) asks for a resync of
// each image that is split-brain once demoted, then waits until it replays
// again. A planned demotion can look split-brain for a moment; resyncing
// then would destroy data, so without ForcePromoted it refuses outright.
func Resync(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, img rbd.Image, res *Result) error {
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
		err = waitFor(ctx, o, func() (bool, error) {
			st, err := c.MirrorStatus(ctx, img)
			switch {
			case errors.Is(err, rbd.ErrNotFound):
				seen = "being recreated" // a resync in progress
				return false, nil
			case err != nil:
				return false, err
			case st.Replaying():
				return true, nil
			case st.SplitBrain() && !requested:
				if len(st.PeerSites) == 0 || !st.PeerSites[0].ClaimsPrimary() {
					seen = "split-brain, but no peer reports a primary to resync from"
					return false, nil
				}
				if err := c.Resync(ctx, img); err != nil {
					return false, err
				}
				requested = true
				res.Action = "resync requested"
				o.Log.WithField("image", img.String()).Warn("split-brain after the forced failover: resync from the new primary requested")
			}
			seen = fmt.Sprintf("%s %q", st.State, st.Description)
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("not replaying from the new primary yet (last seen: %s): %w", seen, err)
		}
		res.After = "non-primary, replaying"
		return nil
	})
}

// Prepare (active site) checks each image before promote: a non-primary
// copy in error while the peer is a healthy primary is resynced from it and
// waited for.
func Prepare(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, img rbd.Image, res *Result) error {
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
			if !st.Error() || len(st.PeerSites) == 0 || !st.PeerSites[0].ClaimsPrimary() || !st.PeerSites[0].Healthy() {
				return nil // healthy, unknown or nothing to copy from: promote decides
			}
			if err := c.Resync(ctx, img); err != nil {
				return err
			}
			res.Action = "resynced from the peer"
		} else {
			res.Before, res.Action = "being recreated", "waited for a resync"
		}
		err = waitFor(ctx, o, func() (bool, error) {
			st, err := c.MirrorStatus(ctx, img)
			if errors.Is(err, rbd.ErrNotFound) {
				return false, nil
			}
			return err == nil && st.Replaying(), err
		})
		if err != nil {
			return fmt.Errorf("resync from the peer requested but not replaying yet: %w", err)
		}
		res.Note = "replaying"
		return nil
	})
}

// Promote (active site) makes each image primary. Without Force it only
// ever asks Ceph for a non-forced promote, which succeeds once the peer's
// demotion has replayed, retrying until the budget runs out. With Force it
// tries that first, then forces, reporting how old the promoted data is.
// Either way it then checks that the peer does not also claim primary.
func Promote(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, img rbd.Image, res *Result) error {
		info, err := mirroredInfo(ctx, c, img, res)
		if err != nil {
			return err
		}
		if !info.Primary() {
			if err := notSplitBrain(ctx, c, img, o); err != nil {
				return err
			}
			if err := promote(ctx, c, img, o, res); err != nil {
				return err
			}
			res.After = "primary"
		}
		return peerNotPrimary(ctx, c, img, o)
	})
}

// notSplitBrain refuses to promote a copy whose history split from the
// primary's, which Ceph may allow without --force: its data is not the
// primary's. The prepare step resyncs it while the peer is a healthy
// primary; only forcePromote takes it as it is.
func notSplitBrain(ctx context.Context, c Rbd, img rbd.Image, o Options) error {
	if o.Force {
		return nil
	}
	st, err := c.MirrorStatus(ctx, img)
	if err != nil || !st.SplitBrain() {
		return nil // nothing known against it; Ceph's own checks decide
	}
	return fmt.Errorf("not promoted: this copy is split-brain (its history left the primary's), so its data is not the app's; let prepare resync it from the peer, or, if the peer site is lost, set forcePromote: true to promote it as it is")
}

func promote(ctx context.Context, c Rbd, img rbd.Image, o Options, res *Result) error {
	var last error
	try := func(ctx context.Context) error {
		return waitFor(ctx, o, func() (bool, error) {
			err := c.Promote(ctx, img, false, o.ForceTimeout)
			switch {
			case err == nil || errors.Is(err, rbd.ErrAlreadyPrimary):
				return true, nil
			case errors.Is(err, rbd.ErrNotYet) || errors.Is(err, rbd.ErrTimeout):
				last = err
				return false, nil
			}
			return false, err
		})
	}
	if !o.Force {
		if err := try(ctx); err != nil {
			return fmt.Errorf("not promoted: the peer site has not demoted it or its demotion has not replayed here (%v). If the peer site is lost, set forcePromote: true in rbd-dr.yaml; the writes after the last mirror snapshot are then lost: %w", last, err)
		}
		res.Action = "promoted"
		return nil
	}

	first, cancel := context.WithTimeout(ctx, o.NonForcedFirst)
	err := try(first)
	cancel()
	if err == nil {
		res.Action = "promoted"
		return nil
	}
	if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Never force while the peer's own daemon says it is primary right now:
	// that peer is alive, and forcing would split the brain.
	if err := waitFor(ctx, o, func() (bool, error) {
		st, err := c.MirrorStatus(ctx, img)
		return err == nil && (len(st.PeerSites) == 0 || !st.PeerSites[0].ClaimsPrimary()), err
	}); err != nil {
		return fmt.Errorf("not force-promoted: the peer site is up and reports itself primary; demote it there first (a forced promote now would split the brain): %w", err)
	}
	snaps, err := c.Snapshots(ctx, img)
	if err != nil {
		return err
	}
	if synced, ok := rbd.LastSyncedCopy(snaps); ok {
		age := o.Now().UTC().Sub(synced.Timestamp.Time).Round(time.Second)
		res.Note = fmt.Sprintf("forced: data as of %s (%s old, the last synced mirror snapshot)", synced.Timestamp.Format(time.RFC3339), age)
	} else {
		res.Note = "forced: no completely synced mirror snapshot here; the image holds whatever was copied"
	}
	timeout := o.ForceTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	if err := c.Promote(ctx, img, true, timeout); err != nil && !errors.Is(err, rbd.ErrAlreadyPrimary) {
		return fmt.Errorf("forced promote failed: %w", err)
	}
	res.Action = "force-promoted"
	o.Log.WithField("image", img.String()).Warn(res.Note)
	return nil
}

// peerNotPrimary fails when the peer keeps claiming primary beyond the
// status lag: two primaries must never both run the app.
func peerNotPrimary(ctx context.Context, c Rbd, img rbd.Image, o Options) error {
	grace, cancel := context.WithTimeout(ctx, o.BothPrimaryGrace)
	defer cancel()
	var claim string
	err := waitFor(grace, o, func() (bool, error) {
		st, err := c.MirrorStatus(grace, img)
		if err != nil {
			return false, err
		}
		if len(st.PeerSites) > 0 && st.PeerSites[0].ClaimsPrimary() {
			claim = st.PeerSites[0].SiteName
			return false, nil
		}
		return true, nil
	})
	if err != nil && claim != "" {
		return fmt.Errorf("BOTH SITES CLAIM PRIMARY: peer %s still reports its copy primary; the app must not start here until that site is demoted (its own sync does that, or rbd mirror image demote %s there)", claim, img)
	}
	return err
}
