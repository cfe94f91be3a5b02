package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// forceSafe says why a forced promote cannot split the brain now, or "" if
// it could. Never while the peer's own daemon says it is primary right now.
// A peer whose status is down+ is gone: its rbd-mirror's watch expired
// (osd_client_watch_timeout), so no daemon of that site has run for that
// long. A peer that is up and not primary may still be demoting: only after
// the non-forced period.
func forceSafe(st rbd.MirrorStatus, nonForcedOver bool) string {
	p, ok := firstPeer(st)
	switch {
	case !ok && nonForcedOver:
		return "no peer site reports this image"
	case !ok || p.ClaimsPrimary():
		return ""
	case p.Gone():
		return fmt.Sprintf("peer %s is gone: its status is %s %q, kept by no running rbd-mirror", p.SiteName, p.State, p.Description)
	case p.SiteGone:
		return fmt.Sprintf("peer %s is gone: this image's entry is %s %q, and every record of that site in the pool is down+, kept by no running rbd-mirror", p.SiteName, p.State, p.Description)
	case nonForcedOver:
		return fmt.Sprintf("peer %s is up and not primary (%s %q) and the demotion has not arrived in the non-forced period", p.SiteName, p.State, p.Description)
	}
	return ""
}

// forcePromote forces the promote, noting the age of the data from s.snaps
// (this site's snapshot list as last read, or s.snapsErr, why it could not
// be); why says what made force safe.
func (s *imageStep) forcePromote(ctx context.Context, why string) error {
	o, res := s.o, s.res
	newest, _ := rbd.LatestMirror(s.snaps)
	if synced, ok := rbd.LastSyncedCopy(s.snaps); s.snapsErr != nil {
		res.Note = fmt.Sprintf("forced: the age of the data could not be read (%v)", s.snapsErr)
	} else if newest.Own() && newest.Demoted() {
		// A forced promote here undoes this site's own demotion (git says
		// the site that took over is lost too): the data is this site's at
		// its demotion, and what the peer wrote as primary after it is lost.
		age := o.Clock.Now().UTC().Sub(newest.Timestamp.Time).Round(time.Second)
		since := "any writes the peer made as primary after that are lost"
		if s.primarySince(ctx) {
			since = "the peer's own snapshots show it was primary since: its writes after this site's demotion are lost"
		}
		res.Note = fmt.Sprintf("forced over this site's own demotion: data as of %s (%s old, when this site demoted it); %s", newest.Timestamp.Format(time.RFC3339), age, since)
	} else if ok {
		age := o.Clock.Now().UTC().Sub(synced.Timestamp.Time).Round(time.Second)
		res.Note = fmt.Sprintf("forced: data as of %s (%s old, the last synced mirror snapshot)", synced.Timestamp.Format(time.RFC3339), age)
	} else {
		res.Note = "forced: no completely synced mirror snapshot here; the image holds whatever was copied"
	}
	o.Log.WithField("image", s.img.String()).Warnf("forcing the promote: git says forcePromote: true and %s", why)
	timeout := min(o.ForceTimeout, s.deadline.Sub(o.Clock.Now()))
	if err := s.c.Promote(ctx, s.img, true, timeout); err != nil && !errors.Is(err, rbd.ErrAlreadyPrimary) {
		// The promote may have used up the step's budget: the reads that
		// say why get their own few seconds.
		if holder := s.mirrorHolder(context.WithoutCancel(ctx)); holder != "" && errors.Is(err, rbd.ErrTimeout) {
			return fmt.Errorf("forced promote did not finish: it waits for this site's rbd-mirror (%s) to close the image, %s: %w", holder, stuckMirror, err)
		}
		return fmt.Errorf("forced promote failed: %w", err)
	}
	res.Action = forcePromoted
	o.Log.WithField("image", s.img.String()).Warn(res.Note)
	return nil
}

// forcePromoted is the report's action of a forced promote.
const forcePromoted = "force-promoted"

// stuckMirror says why this site's rbd-mirror can keep an image open after
// its peer site died, and what to do.
const stuckMirror = "which it does not while it waits on the lost site " +
	"(a snapshot copy cut off midway: Ceph gives up on no operation on the peer unless the platform sets " +
	"rados_osd_op_timeout and rados_mon_op_timeout for client.rbd-mirror-peer on each site, docs/platform.md); " +
	"the platform team restarts this site's rbd-mirror (Rook: delete the rook-ceph-rbd-mirror pod) and the next sync goes on"

// mirrorHolder names this site's rbd-mirror if it still works the image
// (its status here is one of replaying, syncing, starting or stopping the
// replay, not stopped) and holds the image's lock: "client.4146", with the
// host where the status names the daemon. Only a user whose mon caps may
// query the services sees the daemon's instance (a team's user on 20.2 does
// not); then the lock's holder is taken for it, as nothing else holds a
// non-primary image, or one just promoted, while the daemon works it. ""
// says it is not it, or that it cannot be told (a read failed).
func (s *imageStep) mirrorHolder(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, DefaultHintTimeout)
	defer cancel()
	st, err := s.c.MirrorStatus(ctx, s.img)
	if err != nil || !st.Replayer() {
		return ""
	}
	lockers, err := s.c.Lockers(ctx, s.img)
	if err != nil {
		s.o.Log.WithField("image", s.img.String()).WithError(err).Warn("reading who holds the image's lock")
		return ""
	}
	daemon := st.Daemon.Client()
	for _, l := range lockers {
		switch {
		case daemon == "":
			return l.Locker
		case l.Locker == daemon:
			return daemon + " on " + st.Daemon.Hostname
		}
	}
	return ""
}

// mirrorLetGo waits, up to o.MirrorLetGo, until this site's rbd-mirror no
// longer holds the force-promoted image's exclusive lock: while it does,
// the app's writes fail. Ceph's forced promote waits for the daemon to
// close the image only when it must leave an orphan snapshot or roll back
// (librbd mirror/snapshot/PromoteRequest); otherwise it promotes at once.
func (s *imageStep) mirrorLetGo(ctx context.Context) error {
	until := s.o.Clock.Now().Add(s.o.MirrorLetGo)
	if s.deadline.Before(until) {
		until = s.deadline
	}
	holder := ""
	err := waitUntil(ctx, s.o, until, func() (bool, pace, error) {
		holder = s.mirrorHolder(ctx)
		return holder == "", backOff, nil
	})
	if err != nil {
		return fmt.Errorf("promoted, but this site's rbd-mirror (%s) still holds the image's exclusive lock after %s, so the app could not write it; the rbd-mirror must close the image, %s: %w", holder, s.o.MirrorLetGo, stuckMirror, err)
	}
	return nil
}
