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
// sees them too; deadline is when the budget ends on o.Clock.
func step(ctx context.Context, images []rbd.Image, o *Options, fn func(ctx context.Context, deadline time.Time, img rbd.Image, res *Result) error) Report {
	o.defaults()
	deadline := o.Clock.Now().Add(o.Timeout)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return forEach(ctx, images, *o, func(ctx context.Context, img rbd.Image, res *Result) error {
		return fn(ctx, deadline, img, res)
	})
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

// isPrimary reads the image's role from the snapshots just listed, as
// librbd does, and notes it in the report; only an image without any mirror
// snapshot (or whose list could not be read: nil) costs an rbd info, which
// also says whether it is mirrored at all.
func isPrimary(ctx context.Context, c Rbd, img rbd.Image, snaps []rbd.Snapshot, res *Result) (bool, error) {
	primary, ok := rbd.PrimaryFromSnapshots(snaps)
	if !ok {
		info, err := mirroredInfo(ctx, c, img, res)
		return info.Primary(), err
	}
	res.Before = "non-primary"
	if primary {
		res.Before = "primary"
	}
	res.After = res.Before
	return primary, nil
}

// firstPeer is the one peer site of a two-site set-up, if any reports.
func firstPeer(st rbd.MirrorStatus) (rbd.PeerSite, bool) {
	if len(st.PeerSites) == 0 {
		return rbd.PeerSite{}, false
	}
	return st.PeerSites[0], true
}

// Demote (passive site) demotes each primary image; a non-primary one is
// left alone. It never demotes a primary whose peer does not hold a complete
// copy of its newest own snapshot: demoting then would let the peer promote
// an older copy (the flip-flop split-brain), unless the peer is primary
// after a forced failover, which the demotion resolves (forcedFailover says
// when its claim is believed).
//
// The proof, most direct first: the peer's own snapshot list (read with
// peer, a read-only user there; nil skips it) shows the complete copy; or
// the peer's status here says it has replayed that snapshot (rbd-mirror
// rewrites those details only every 30 s, so this one lags).
func Demote(ctx context.Context, c Rbd, peer Peer, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, deadline time.Time, img rbd.Image, res *Result) error {
		snaps, err := c.Snapshots(ctx, img)
		if err != nil {
			return err
		}
		primary, err := isPrimary(ctx, c, img, snaps, res)
		if err != nil || !primary {
			return err
		}
		why := ""
		first, start := true, o.Clock.Now()
		err = waitUntil(ctx, o, deadline, func() (bool, pace, error) {
			if !first {
				if snaps, err = c.Snapshots(ctx, img); err != nil {
					return false, backOff, err
				}
			}
			first = false
			newest, ok := rbd.LatestOwn(snaps)
			if !ok {
				why = "this primary has no mirror snapshot yet"
				return false, backOff, nil
			}
			// The peer's links here are the first sign: it unlinks itself
			// from the older snapshot as its copy of the newest completes.
			inFlight, caughtUp := rbd.PeerLinks(snaps)
			if caughtUp {
				res.Note = fmt.Sprintf("the peer unlinked itself from the older snapshots: its copy of snapshot %d is complete", newest.ID)
				return true, fast, nil
			}
			var copies []rbd.Snapshot // the peer's, nil when not read
			if peer != nil {
				var err error
				copies, err = peer.Snapshots(ctx, img)
				switch cp, ok := rbd.CopyOf(copies, newest.ID); {
				case err != nil:
					copies = nil
					why = fmt.Sprintf("reading the peer's snapshots: %v", err)
				case ok && cp.Namespace.Complete:
					res.Note = fmt.Sprintf("the peer holds a complete copy of snapshot %d", newest.ID)
					return true, fast, nil
				case ok:
					inFlight = true
				}
			}
			st, err := c.MirrorStatus(ctx, img)
			if err != nil {
				return false, backOff, err
			}
			p, ok := firstPeer(st)
			forced, claim := false, ""
			if ok && p.ClaimsPrimary() {
				forced, claim = forcedFailover(copies, o.ForcePromoted)
			}
			switch {
			case !ok:
				why = "no peer site reports this image"
				return false, backOff, nil
			case forced:
				res.Note = fmt.Sprintf("peer %s is primary (%s): this copy is stale", p.SiteName, claim)
				return true, fast, nil
			case !inFlight && p.HasCopied(newest.Timestamp.Unix()):
				res.Note = fmt.Sprintf("peer %s reports snapshot %d replayed", p.SiteName, newest.ID)
				return true, fast, nil
			case inFlight && p.Known():
				why = fmt.Sprintf("peer %s is still copying snapshot %d", p.SiteName, newest.ID)
				if claim != "" {
					why = fmt.Sprintf("peer %s holds no complete copy of snapshot %d; its status record says %q, but %s", p.SiteName, newest.ID, p.Description, claim)
				}
				return false, fast, nil
			}
			why = fmt.Sprintf("peer %s reports %s %q", p.SiteName, p.State, p.Description)
			if claim != "" {
				why += ", but " + claim
			}
			// A peer whose daemon is up starts copying a new snapshot within
			// seconds (right after a relocation, once its replayer has
			// started): look often for a while, then back off.
			if p.Known() && o.Clock.Now().Sub(start) < o.Stall {
				return false, fast, nil
			}
			return false, backOff, nil
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

// forcedFailover says whether the peer's claim to be primary, read from its
// status record here, is believed, and why. The record lags a demotion
// (lab recording s9_demoted_stale_primary), and demoting on that stale claim
// let the old site promote without this site's writes. The peer's own
// snapshots (nil when they could not be read) settle it; without them only
// git's word that a forced failover happened (forcePromote: true) does.
func forcedFailover(peerSnaps []rbd.Snapshot, gitSaysForced bool) (bool, string) {
	if primary, known := rbd.PrimaryFromSnapshots(peerSnaps); known {
		if primary {
			return true, "a forced failover: its own snapshots say so"
		}
		return false, "its own snapshots say it is not primary: the record is stale"
	}
	if gitSaysForced {
		return true, "a forced failover: rbd-dr.yaml says forcePromote: true"
	}
	return false, "nothing confirms it: that record lags a demotion, and rbd-dr.yaml does not say forcePromote: true (a peer reader would settle it from the peer's own snapshots)"
}

// Resync (passive site, only after a forced failover) asks for a resync of
// each image that is split-brain once demoted, then waits until it replays
// again. A planned demotion can look split-brain for a moment; resyncing
// then would destroy data, so without ForcePromoted it refuses outright.
func Resync(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, deadline time.Time, img rbd.Image, res *Result) error {
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
		err = waitUntil(ctx, o, deadline, func() (bool, pace, error) {
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
	})
}

// Prepare (active site) checks each image before promote: a non-primary
// copy in error while the peer is a healthy primary is resynced from it and
// waited for. An image whose status shows no error needs nothing, whatever
// its role, so the status alone settles the common case (one pool read for
// all the images, with rbd.Batched).
func Prepare(ctx context.Context, c Rbd, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, deadline time.Time, img rbd.Image, res *Result) error {
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
		err = waitUntil(ctx, o, deadline, func() (bool, pace, error) {
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
	})
}

// Promote (active site) makes each image primary. It asks Ceph for a
// non-forced promote, which succeeds once the peer's demotion has replayed
// here, and retries while Ceph says "not yet": every Poll while this site's
// snapshot list shows the peer's demote snapshot arriving, backing off while
// the peer has not demoted. Only with Force, and only once the peer is
// demonstrably gone (or, up, has not claimed primary for NonForcedFirst), does
// it force, reporting how old the promoted data is. Either way it then
// checks that the peer does not also claim primary.
func Promote(ctx context.Context, c Rbd, peer Peer, images []rbd.Image, o Options) Report {
	return step(ctx, images, &o, func(ctx context.Context, deadline time.Time, img rbd.Image, res *Result) error {
		snaps, herr := hint(ctx, c, img)
		primary, err := isPrimary(ctx, c, img, snaps, res)
		if err != nil {
			return err
		}
		if !primary {
			// A complete copy of the peer's demote snapshot, newest here,
			// is the history a non-forced promote continues: no split.
			if latest, _ := rbd.LatestMirror(snaps); herr != nil || !arrived(latest) {
				if err := notSplitBrain(ctx, c, img, o); err != nil {
					return err
				}
			}
			if err := promote(ctx, c, peer, img, o, deadline, res, snaps, herr); err != nil {
				return err
			}
			res.After = "primary"
		}
		return peerNotPrimary(ctx, c, peer, img, o, deadline, res)
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

// copyWatch follows the copy of the peer's demote snapshot in this site's
// snapshot list, to pace the promote's retries.
type copyWatch struct {
	last    rbd.SnapshotNamespace
	id      uint64
	since   time.Time
	seen    bool
	stalled bool
}

// arriving says whether the peer's demotion is arriving here (a copy of its
// demote snapshot, complete or still moving), so a promote can succeed any
// moment. A copy that has not changed for o.Stall is not arriving any more:
// Pacific can hang on one that rbd-mirror was copying when it restarted.
func (w *copyWatch) arriving(snaps []rbd.Snapshot, o Options) bool {
	s, ok := rbd.LatestMirror(snaps)
	if !ok || !s.Copy() || !s.Demoted() {
		return false
	}
	now := o.Clock.Now()
	if !w.seen || s.ID != w.id || s.Namespace.Complete != w.last.Complete || s.Namespace.LastCopiedObjectNumber != w.last.LastCopiedObjectNumber {
		w.seen, w.id, w.last, w.since = true, s.ID, s.Namespace, now
	}
	w.stalled = now.Sub(w.since) >= o.Stall
	return !w.stalled
}

// why says how the stalled copy looks.
func (w *copyWatch) why() string {
	if w.last.Complete {
		return "is complete here, yet Ceph still refuses the promote"
	}
	return fmt.Sprintf("stopped at object %d", w.last.LastCopiedObjectNumber)
}

// hintTimeout bounds a read that only paces a wait or adds to the report:
// with the peer site dead, a snap ls here was seen to hang.
const hintTimeout = 10 * time.Second

// hint reads this site's snapshot list within hintTimeout; no list with an
// error.
func hint(ctx context.Context, c Rbd, img rbd.Image) ([]rbd.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, hintTimeout)
	defer cancel()
	snaps, err := c.Snapshots(ctx, img)
	if err != nil {
		return nil, err
	}
	return snaps, nil
}

// arrived says whether s is a complete copy of the peer's demote snapshot.
func arrived(s rbd.Snapshot) bool { return s.Copy() && s.Demoted() && s.Namespace.Complete }

// promote retries the promote; snaps and herr are this site's snapshot
// list as just read, for the first try.
func promote(ctx context.Context, c Rbd, peer Peer, img rbd.Image, o Options, deadline time.Time, res *Result, snaps []rbd.Snapshot, herr error) error {
	var last error
	var watch copyWatch
	start := o.Clock.Now()
	forceWhy := ""
	first := true
	err := waitUntil(ctx, o, deadline, func() (bool, pace, error) {
		if !first {
			snaps, herr = hint(ctx, c, img)
		}
		first = false
		newest, _ := rbd.LatestMirror(snaps)
		switch {
		case herr != nil:
			// Without the list, a promote could land on a partial copy.
			o.Log.WithField("image", img.String()).WithError(herr).Debug("reading the snapshots here; no promote is tried without them")
			last = fmt.Errorf("this site's snapshots could not be read, so no promote was tried: %w", herr)
		case newest.Own() && newest.Demoted() && primarySince(ctx, peer, img):
			// Ceph would let a promote undo the demotion, and the peer's
			// writes since would be lost (a demote that did not wait for
			// this site's copy): only the peer's demotion arriving here
			// carries them.
			last = errors.New("this site demoted the image and the peer has been primary since (its newest mirror snapshot is its own): undoing the demotion here would lose the peer's writes, so its demotion must arrive first")
		case newest.Own() && newest.Demoted() && o.Clock.Now().Sub(start) < o.NonForcedFirst:
			// This site demoted it and nothing newer came from the peer:
			// Ceph would let a promote undo the demotion now, while the
			// peer may be promoting the copy it got (the flip-flop: two
			// primaries). The peer's promotion shows here within seconds.
			last = errors.New("this site demoted the image and the peer has sent nothing newer yet")
		case newest.Copy() && newest.Demoted() && !newest.Namespace.Complete:
			// Ceph promotes a partial copy of the demote snapshot without
			// --force (the lab: exit 0 at object 23 of 256, rbd-mirror
			// killed; pkg/rbd/testdata/lab s5x_*): the image would then miss
			// the peer's last writes. Wait for the whole copy.
			last = fmt.Errorf("the copy of the peer's demote snapshot here is not complete (object %d)", newest.Namespace.LastCopiedObjectNumber)
			if watch.arriving(snaps, o) {
				return false, fast, nil
			}
		default:
			err := c.Promote(ctx, img, false, o.ForceTimeout)
			switch {
			case err == nil || errors.Is(err, rbd.ErrAlreadyPrimary):
				res.Action = "promoted"
				return true, fast, nil
			case !errors.Is(err, rbd.ErrNotYet) && !errors.Is(err, rbd.ErrTimeout):
				return false, backOff, err
			}
			last = err
			if watch.arriving(snaps, o) {
				return false, fast, nil
			}
		}
		// The peer stops claiming primary the moment it demotes (only the
		// replay details wait for rbd-mirror's 30 s timer): its demotion is
		// then due here within seconds, so look again soon, for a while.
		st, serr := c.MirrorStatus(ctx, img)
		next := backOff
		if serr == nil && peerDemoted(st) && o.Clock.Now().Sub(start) < o.Stall {
			next = fast
		}
		if !o.Force {
			return false, next, nil
		}
		if serr != nil {
			return false, backOff, serr
		}
		forceWhy = forceSafe(st, o.Clock.Now().Sub(start) >= o.NonForcedFirst)
		return forceWhy != "", next, nil
	})
	switch {
	case err == nil && res.Action == "promoted":
		return nil
	case err == nil:
		return forcePromote(ctx, c, img, o, deadline, forceWhy, res, snaps, herr)
	case !errors.Is(err, context.DeadlineExceeded):
		return err
	case o.Force:
		return fmt.Errorf("not force-promoted: the peer site is up and reports itself primary; demote it there first (a forced promote now would split the brain): %w", err)
	case watch.stalled:
		return fmt.Errorf("not promoted: the copy of the peer's demote snapshot %s (Ceph Pacific can hang when rbd-mirror restarts mid-copy; restart this site's rbd-mirror) (%v): %w", watch.why(), last, err)
	}
	return fmt.Errorf("not promoted: the peer site has not demoted it or its demotion has not replayed here (%v). If the peer site is lost, set forcePromote: true in rbd-dr.yaml; the writes after the last mirror snapshot are then lost: %w", last, err)
}

// primarySince says whether the peer's own snapshots (peer, a read-only user
// there; nil or unreadable says no) show it took a snapshot as primary after
// the last one it copied from here: its newest mirror snapshot is its own.
func primarySince(ctx context.Context, peer Peer, img rbd.Image) bool {
	if peer == nil {
		return false
	}
	snaps, err := peer.Snapshots(ctx, img)
	newest, ok := rbd.LatestMirror(snaps)
	return err == nil && ok && newest.Own()
}

// peerDemoted: the peer's daemon reports it and no longer says primary.
func peerDemoted(st rbd.MirrorStatus) bool {
	p, ok := firstPeer(st)
	return ok && p.Known() && !p.ClaimsPrimary()
}

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

// forcePromote forces the promote, noting the age of the data from snaps
// (this site's snapshot list as last read, or why it could not be).
func forcePromote(ctx context.Context, c Rbd, img rbd.Image, o Options, deadline time.Time, why string, res *Result, snaps []rbd.Snapshot, err error) error {
	if synced, ok := rbd.LastSyncedCopy(snaps); err != nil {
		res.Note = fmt.Sprintf("forced: the age of the data could not be read (%v)", err)
	} else if ok {
		age := o.Clock.Now().UTC().Sub(synced.Timestamp.Time).Round(time.Second)
		res.Note = fmt.Sprintf("forced: data as of %s (%s old, the last synced mirror snapshot)", synced.Timestamp.Format(time.RFC3339), age)
	} else {
		res.Note = "forced: no completely synced mirror snapshot here; the image holds whatever was copied"
	}
	o.Log.WithField("image", img.String()).Warnf("forcing the promote: git says forcePromote: true and %s", why)
	timeout := min(o.ForceTimeout, deadline.Sub(o.Clock.Now()))
	if err := c.Promote(ctx, img, true, timeout); err != nil && !errors.Is(err, rbd.ErrAlreadyPrimary) {
		return fmt.Errorf("forced promote failed: %w", err)
	}
	res.Action = "force-promoted"
	o.Log.WithField("image", img.String()).Warn(res.Note)
	return nil
}

// peerNotPrimary fails when the peer keeps claiming primary past
// BothPrimaryGrace: two primaries must never both run the app. The claim is
// read from the peer's status record here, which lags: right after the
// peer demotes, it says primary for seconds more. With peer (a read-only
// user there; nil skips it) a claim is checked against the peer's own
// snapshots, which say its role the moment it changes (librbd's rule,
// rbd.PrimaryFromSnapshots): a peer whose newest mirror snapshot is not its
// own primary one is not primary, whatever the record says.
func peerNotPrimary(ctx context.Context, c Rbd, peer Peer, img rbd.Image, o Options, deadline time.Time, res *Result) error {
	var claim string
	until := o.Clock.Now().Add(o.BothPrimaryGrace)
	if deadline.Before(until) {
		until = deadline
	}
	start := o.Clock.Now()
	err := waitUntil(ctx, o, until, func() (bool, pace, error) {
		st, err := c.MirrorStatus(ctx, img)
		if err != nil {
			return false, backOff, err
		}
		p, ok := firstPeer(st)
		if !ok || !p.ClaimsPrimary() {
			return true, fast, nil
		}
		claim = p.SiteName
		if peer != nil {
			snaps, err := peer.Snapshots(ctx, img)
			if primary, known := rbd.PrimaryFromSnapshots(snaps); err == nil && known && !primary {
				res.Note = fmt.Sprintf("peer %s's status record still said primary; its own snapshots say it is not", p.SiteName)
				return true, fast, nil
			}
		}
		// Right after a demotion the peer's record here takes a few
		// seconds to stop saying primary: look often at first.
		if o.Clock.Now().Sub(start) < o.Stall {
			return false, fast, nil
		}
		return false, backOff, nil
	})
	if err != nil && claim != "" {
		return fmt.Errorf("BOTH SITES CLAIM PRIMARY: peer %s still reports its copy primary; the app must not start here until that site is demoted (its own sync does that, or rbd mirror image demote %s there): %w", claim, img, err)
	}
	return err
}
