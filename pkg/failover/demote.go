package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// demoteImage is Demote's work on one image; Demote, below, says its rules.
func (s *imageStep) demoteImage(ctx context.Context) error {
	// A step that asks the status before the peer (statusFirst) reads it
	// beside this site's list: its first proof needs both, and reading
	// one after the other cost a relocation of 20 images a batched read's
	// time on the lab.
	status := s.statusRead(ctx)
	var ahead sync.WaitGroup
	if s.statusFirst() {
		status = s.askStatus(ctx, &ahead)
	}
	defer ahead.Wait()
	var err error
	if s.snaps, err = s.c.Snapshots(ctx, s.img); err != nil {
		return err
	}
	primary, err := s.isPrimary(ctx)
	if err != nil || !primary {
		return err
	}
	waited, err := s.unmounted(ctx)
	if err != nil {
		return err
	}
	if waited {
		status = s.statusRead(ctx) // the record read beside the list is as old as the wait
	}
	if err := s.awaitPeerCopy(ctx, status); err != nil {
		return err
	}
	if err := s.c.Demote(ctx, s.img); err != nil && !errors.Is(err, rbd.ErrNotPrimary) {
		if errors.Is(err, rbd.ErrLockHolderGone) {
			return fmt.Errorf("not demoted: a client that is gone still holds the image's exclusive lock (a pod on a node that died, or a volume not unmapped cleanly), and taking the lock over blocklists that client, which this step's Ceph user may not do (its mon caps lack 'profile rbd', as the team's user's do when the settings give a forceUser); find the holder with `rbd lock ls %s` and, once sure it is dead, the platform team breaks the lock with an admin key (`rbd lock rm`); the next sync then demotes: %w", s.img, err)
		}
		return err
	}
	s.res.Action, s.res.After = "demoted", "non-primary"
	return nil
}

// Demote (passive site) demotes each primary image; a non-primary one is
// left alone. It never demotes a primary that a pod still mounts (o.InUse:
// it waits for the pods to go), and never one whose peer does not hold a complete
// copy of its newest own snapshot: demoting then would let the peer promote
// an older copy (the flip-flop split-brain), unless the peer is primary
// after a forced failover, which the demotion resolves (forcedFailover says
// when its claim is believed).
//
// The proof: the peer's links on this primary's snapshots (awaitPeerCopy);
// the peer's own snapshot list (read with peer, a read-only user there; nil
// skips it) shows the complete copy; or the peer's status here says it has
// replayed that snapshot (rbd-mirror rewrites those details only every
// 30 s, so the record can say so late, never early). The list costs an rbd
// process per image, the status one read for the whole step: a step of
// more than o.SnapWatch images asks the status before the list.
func Demote(ctx context.Context, c Rbd, peer Peer, images []rbd.Image, o Options) Report {
	return step(ctx, images, imageStep{c: c, peer: peer, o: o}, (*imageStep).demoteImage)
}

// unmounted waits until no pod mounts the image's volume (o.InUse; nil
// checks nothing), and says whether it found any. Quiesce, the wave
// before, stops the app, but Argo CD can count a stale quiesce Job of an
// earlier sync as this sync's and start demote at once
// (argoproj/gitops-engine issue 446): demote must not rely on the order
// alone.
func (s *imageStep) unmounted(ctx context.Context) (waited bool, err error) {
	if s.o.InUse == nil {
		return false, nil
	}
	var pods []string
	err = waitUntil(ctx, s.o, s.deadline, func() (bool, pace, error) {
		var err error
		pods, err = s.o.InUse(ctx, s.img)
		if err != nil {
			return false, backOff, fmt.Errorf("not demoted: finding the pods that mount its volume failed, and an image is never demoted under a running pod: %w", err)
		}
		waited = waited || len(pods) > 0
		return len(pods) == 0, backOff, nil
	})
	if err != nil && len(pods) > 0 {
		return waited, fmt.Errorf("not demoted: pods still mount its volume (%s); the quiesce step stops the app's workloads first, and a pod it does not stop (a Job's, a bare pod) must be stopped by hand: %w", strings.Join(pods, ", "), err)
	}
	return waited, err
}

// statusRead reads the image's status once, when first asked.
func (s *imageStep) statusRead(ctx context.Context) func() (rbd.MirrorStatus, error) {
	return sync.OnceValues(func() (rbd.MirrorStatus, error) { return s.c.MirrorStatus(ctx, s.img) })
}

// statusFirst: the step asks the peer's status record here before the
// peer's own list. The record comes from one read for the whole step
// (rbd.Batched), the peer's list from an rbd process per image: a step
// larger than o.SnapWatch takes the record's word first; a smaller one
// reads the record only if the list did not prove it, and one without a
// peer reader has only the record.
func (s *imageStep) statusFirst() bool { return s.count > s.o.SnapWatch || s.peer == nil }

// awaitPeerCopy waits until the peer holds a complete copy of this
// primary's newest own snapshot, or is primary after a forced failover, and
// notes in the report which signal said so. firstStatus is the status read
// for its first round (read when first asked, or already).
func (s *imageStep) awaitPeerCopy(ctx context.Context, firstStatus func() (rbd.MirrorStatus, error)) error {
	o, res := s.o, s.res
	why := ""
	first, start := true, o.Clock.Now()
	err := waitUntil(ctx, o, s.deadline, func() (bool, pace, error) {
		// The round's status, read at most once (for every image at
		// once, rbd.Batched).
		status := firstStatus
		if !first {
			var err error
			if s.snaps, err = s.c.Snapshots(ctx, s.img); err != nil {
				return false, backOff, err
			}
			status = s.statusRead(ctx)
		}
		first = false
		newest, ok := rbd.LatestOwn(s.snaps)
		if !ok {
			why = "this primary has no mirror snapshot yet"
			return false, backOff, nil
		}
		// The peer's links here are the first sign: it unlinks itself
		// from the older snapshot as its copy of the newest completes.
		inFlight, caughtUp := rbd.PeerLinks(s.snaps)
		if caughtUp && linksProve(s.snaps, status) {
			res.Note = fmt.Sprintf("the peer unlinked itself from the older snapshots: its copy of snapshot %d is complete", newest.ID)
			return true, fast, nil
		}
		if s.count > o.SnapWatch && !inFlight {
			st, err := status()
			if p, ok := firstPeer(st); err == nil && ok && recordProves(p, s.snaps, newest) {
				res.Note = fmt.Sprintf("peer %s reports snapshot %d replayed", p.SiteName, newest.ID)
				return true, fast, nil
			}
		}
		var copies []rbd.Snapshot // the peer's, nil when not read
		if s.peer != nil {
			var err error
			copies, err = s.peer.Snapshots(ctx, s.img)
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
		st, err := status()
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
			newer, waitWhy, err := s.claimNewer(ctx, p.SiteName)
			if !newer {
				why = waitWhy
				return false, backOff, err
			}
			res.Note = fmt.Sprintf("peer %s is primary (%s): this copy is stale", p.SiteName, claim)
			return true, fast, nil
		case !inFlight && recordProves(p, s.snaps, newest):
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
	if errors.Is(err, errStaleClaim) {
		return err
	}
	if err != nil {
		return fmt.Errorf("not demoted: the peer has not confirmed a complete copy of this primary's newest snapshot (%s), so demoting could lose the writes since; check the peer's rbd-mirror, and if the peer site is lost keep this site active: %w", why, err)
	}
	return nil
}

// recordProves says whether the peer's status record shows a complete copy
// of newest, this primary's newest own snapshot. The record names the
// snapshot it copied by its time in whole seconds, so it proves nothing
// when another own snapshot was taken in the same second.
func recordProves(p rbd.PeerSite, snaps []rbd.Snapshot, newest rbd.Snapshot) bool {
	for _, o := range snaps {
		if o.Own() && o.ID != newest.ID && o.Timestamp.Unix() == newest.Timestamp.Unix() {
			return false
		}
	}
	return p.HasCopied(newest.Timestamp.Unix())
}

// linksProve says whether the links' "caught up" (no peer linked to an
// older own snapshot any more) is the peer having moved on: only if the
// peer had followed this image up to that older snapshot. An older
// snapshot taken before the peer was added (or re-bootstrapped) was never
// linked to it, and reads the same; then the peer's status record must
// show a complete copy of that snapshot or a later one (even a lagging
// record does: it was copied before the newest was taken). Otherwise the
// direct proofs decide.
func linksProve(snaps []rbd.Snapshot, status func() (rbd.MirrorStatus, error)) bool {
	older, ok := rbd.OlderOwn(snaps)
	if !ok {
		return false
	}
	st, err := status()
	p, ok := firstPeer(st)
	return err == nil && ok && p.CopiedSince(older.Timestamp.Unix())
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
