package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// promoteImage is Promote's work on one image; Promote, below, says its rules.
func (s *imageStep) promoteImage(ctx context.Context) error {
	if err := s.prepareFirst(ctx); err != nil {
		return err
	}
	s.claimUntil = s.o.Clock.Now().Add(s.o.ClaimWatch)
	if last, replayed := s.untilPeerDemotes(ctx); replayed && s.promoteReplayed(ctx) {
		claimedBy := ""
		if p, ok := firstPeer(last); ok && p.ClaimsPrimary() {
			claimedBy = p.SiteName
		}
		return s.peerNotPrimary(ctx, claimedBy)
	}
	s.listAhead(ctx)
	primary, err := s.isPrimary(ctx)
	if err != nil {
		return err
	}
	if !primary {
		// A complete copy of the peer's demote snapshot, newest here,
		// is the history a non-forced promote continues: no split.
		if latest, _ := rbd.LatestMirror(s.snaps); s.snapsErr != nil || !arrived(latest) {
			if err := s.notSplitBrain(ctx); err != nil {
				return err
			}
		}
		if err := s.promote(ctx); err != nil {
			return err
		}
		s.res.After = "primary"
	}
	return s.primaryChecks(ctx)
}

// prepareFirst is Prepare's work on the image, first thing in promote: the
// rendered active site runs promote alone, since a Job of its own was a
// sync wave, a pod and the same first reads more on the way to the app's
// start. The common case costs nothing more: a status without error
// settles it, and that read (statusAhead's) is left for promote's own first
// read. A copy in error is resynced from a healthy primary peer and waited
// for as Prepare does; the report keeps promote's roles and notes what was
// done. promoteAhead has started s.early, always.
func (s *imageStep) prepareFirst(ctx context.Context) error {
	if st, err := s.early(); err == nil && !st.Error() {
		return nil
	}
	row := *s.res
	err := s.prepareImage(ctx)
	action := s.res.Action
	*s.res = row
	if err != nil {
		return fmt.Errorf("not promoted: this copy is in error and preparing it failed: %w", err)
	}
	if action != row.Action {
		s.addNote("prepared first: " + action)
	}
	s.dropEarly() // read before the resync
	return nil
}

// primaryChecks runs, side by side, what an image primary here still
// takes: the stamp of a forced promote made by this step, with --force the
// wait for this site's rbd-mirror to let go of the image (also when a sync
// finds it primary already: an earlier one may have promoted it while a
// stuck rbd-mirror held it), and the check that the peer is not primary
// too. Each reads or writes only its own, and one after the other they
// were a forced promote's three rbd calls in a row (their status reads now
// ask at once, so rbd.Batched can answer both with one read). Every failure
// is reported.
func (s *imageStep) primaryChecks(ctx context.Context) error {
	var stamped, letGo error
	var checks sync.WaitGroup
	if s.res.Action == forcePromoted {
		checks.Go(func() { stamped = s.stamp(ctx) })
	}
	if s.o.Force {
		checks.Go(func() { letGo = s.mirrorLetGo(ctx) })
	}
	notPrimary := s.peerNotPrimary(ctx, "")
	checks.Wait()
	return errors.Join(stamped, letGo, notPrimary)
}

// untilPeerDemotes waits, in a step larger than o.SnapWatch, while this
// copy replays from a peer whose record says its copy is primary, until
// the claim watch ends (o.ClaimWatch after the image's promote began;
// claimWatch below): nothing can be promoted before the peer demotes, and
// reading the status is one rbd process for the whole step (rbd.Batched)
// where listing every image's snapshots is one per image, on the monitors
// and OSDs the peer's demotion is about to be replayed into. Once the claim
// is gone it waits on, for at most o.Stall, while this copy still replays:
// the peer's demotion is being copied here (the 16.2 and 18.2 recordings
// s3_demote_replayed_early show the claim gone while this copy replays),
// and the full checks would meanwhile list and try every image every Poll.
// It only waits: the checks after it decide. A forced promote goes on at once (the peer's record is all it
// has), and so does a small step, whose claim watch lists the snapshots
// anyway.
//
// It returns the last status it read, and says whether it saw this copy
// replaying and then this site's rbd-mirror report the peer's demotion
// replayed: that report was written during the wait, so it is current
// (promoteReplayed).
func (s *imageStep) untilPeerDemotes(ctx context.Context) (last rbd.MirrorStatus, replayedHere bool) {
	o := s.o
	if !s.waitsOnDemotion() {
		return last, false
	}
	until := s.claimUntil
	if s.deadline.Before(until) {
		until = s.deadline
	}
	sawReplaying, claimed := false, false
	var claimGone time.Time // when the copy was first seen replaying from a peer that no longer claims primary
	_ = waitUntil(ctx, o, until, func() (bool, pace, error) {
		if claimed && !s.watchDue() {
			return false, fast, nil
		}
		st, err := s.readStatus(ctx)
		last = st
		if err != nil || !st.Replaying() {
			replayedHere = err == nil && sawReplaying && st.DemotionReplayed()
			return true, fast, nil
		}
		sawReplaying = true
		if claimed = claimsPrimary(st, nil); claimed {
			return false, fast, nil
		}
		now := o.Clock.Now()
		if claimGone.IsZero() {
			claimGone = now
		}
		return now.Sub(claimGone) >= o.Stall, fast, nil
	})
	return last, replayedHere
}

// promoteReplayed promotes without listing the snapshots first, when
// untilPeerDemotes saw this site's rbd-mirror report the peer's demotion
// replayed (rbd.MirrorStatus.DemotionReplayed): a list per image is what a
// step of twenty spends most of its time on after the peer demotes, and
// the report says what the list would be read for: the replayer, copying
// from the peer, found every snapshot copied up to the peer's demotion
// (Ceph refuses a non-forced promote whose newest snapshot here is not a
// demotion; this site's own demotion, which it would take, comes with
// "remote image is not primary" instead). It says whether the image was
// promoted; on any refusal or error the full checks run as without it.
func (s *imageStep) promoteReplayed(ctx context.Context) bool {
	if err := s.c.Promote(ctx, s.img, false, s.o.ForceTimeout); err != nil {
		s.o.Log.WithField("image", s.img.String()).WithError(err).Debug("promote on the replayed demotion refused; checking the snapshots")
		return false
	}
	s.res.Before, s.res.After, s.res.Action = "non-primary", "primary", "promoted"
	s.res.Note = "this site's rbd-mirror reported the peer's demotion replayed"
	return true
}

// Promote (active site) makes each image primary. It asks Ceph for a
// non-forced promote, which succeeds once the peer's demotion has replayed
// here, and retries while Ceph says "not yet": every Poll while this site's
// snapshot list shows the peer's demote snapshot arriving, backing off while
// the peer has not demoted (then reading only the peer's claim in between,
// claimWatch; no promote is tried while the peer's record says it is
// primary and its demotion has not arrived). Only with Force, and only once the peer is
// demonstrably gone (or, up, has not claimed primary for NonForcedFirst), does
// it force, reporting how old the promoted data is. Either way it then
// checks that the peer does not also claim primary. Before anything, with
// o.RPO, it refuses an image that no mirror snapshot schedule here covers
// that often (scheduled).
func Promote(ctx context.Context, c Rbd, peer Peer, images []rbd.Image, o Options) Report {
	return step(ctx, images, imageStep{c: c, peer: peer, o: o}, scheduledFirst((*imageStep).promoteImage, (*imageStep).promoteAhead))
}

// waitsOnDemotion: the step first waits, on the status alone, while the
// peer claims primary (untilPeerDemotes), before it lists the snapshots.
func (s *imageStep) waitsOnDemotion() bool { return !s.o.Force && s.count > s.o.SnapWatch }

// promoteAhead starts promoteImage's first reads beside the schedule read:
// the status, and this site's snapshot list unless a wait comes before the
// list (waitsOnDemotion), which must then be read after it. An image found
// primary already is then decided on reads that took one rbd process's
// time together.
func (s *imageStep) promoteAhead(ctx context.Context, reads *sync.WaitGroup) {
	s.statusAhead(ctx, reads)
	if !s.waitsOnDemotion() {
		s.listed = sync.OnceFunc(func() { s.hint(ctx) })
		reads.Go(s.listed)
	}
}

// listAhead reads this site's snapshot list into s.snaps, as hint does: the
// first time, the list promoteAhead started, if any.
func (s *imageStep) listAhead(ctx context.Context) {
	if listed := s.listed; listed != nil {
		s.listed = nil
		listed()
		return
	}
	s.hint(ctx)
}

// notSplitBrain refuses to promote a copy whose history split from the
// primary's, which Ceph may allow without --force: its data is not the
// primary's. The prepare step resyncs it while the peer is a healthy
// primary; only forcePromote takes it as it is.
func (s *imageStep) notSplitBrain(ctx context.Context) error {
	if s.o.Force {
		return nil
	}
	st, err := s.readStatus(ctx)
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

// hint reads this site's snapshot list within DefaultHintTimeout into s.snaps, or
// leaves it nil and says why in s.snapsErr.
func (s *imageStep) hint(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHintTimeout)
	defer cancel()
	s.snaps, s.snapsErr = s.c.Snapshots(ctx, s.img)
	if s.snapsErr != nil {
		s.snaps = nil
	}
}

// arrived says whether s is a complete copy of the peer's demote snapshot.
func arrived(s rbd.Snapshot) bool { return s.Copy() && s.Demoted() && s.Namespace.Complete }

// promote retries the promote, from s.snaps as just read; a forced promote,
// when it comes to that, is forcePromote's.
func (s *imageStep) promote(ctx context.Context) error {
	c, img, o, res := s.c, s.img, s.o, s.res
	var last error
	var watch copyWatch
	start := o.Clock.Now()
	forceWhy := ""
	first := true
	claim := claimWatch{until: s.claimUntil, listSnaps: s.count <= o.SnapWatch && !o.Force}
	err := waitUntil(ctx, o, s.deadline, func() (bool, pace, error) {
		if claim.stillClaimed(ctx, s) {
			return false, fast, nil
		}
		claim.on = false
		if !first && !claim.listed {
			s.hint(ctx)
		}
		first, claim.listed = false, false
		newest, _ := rbd.LatestMirror(s.snaps)
		// The status, read at most once a round (for every image at
		// once, rbd.Batched), says whether the peer claims primary and
		// paces the next round.
		status := sync.OnceValues(func() (rbd.MirrorStatus, error) { return s.readStatus(ctx) })
		switch {
		case s.snapsErr != nil:
			// Without the list, a promote could land on a partial copy.
			o.Log.WithField("image", img.String()).WithError(s.snapsErr).Debug("reading the snapshots here; no promote is tried without them")
			last = fmt.Errorf("this site's snapshots could not be read, so no promote was tried: %w", s.snapsErr)
		case newest.Own() && newest.Demoted() && s.primarySince(ctx):
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
			// killed; pkg/rbd/testdata/lab-16.2 s5x_*): the image would then miss
			// the peer's last writes. Wait for the whole copy.
			last = fmt.Errorf("the copy of the peer's demote snapshot here is not complete (object %d)", newest.Namespace.LastCopiedObjectNumber)
			if watch.arriving(s.snaps, o) {
				return false, fast, nil
			}
		case !arrived(newest) && claimsPrimary(status()):
			// Ceph refuses a promote while the peer's daemon says it is
			// primary and its demotion has not arrived here: an attempt
			// would only cost an rbd process per image, beside the
			// peer's demote.
			last = errors.New("its status record here says the peer's copy is primary")
		default:
			s.dropEarly()
			err := c.Promote(ctx, img, false, o.ForceTimeout)
			switch {
			case err == nil || errors.Is(err, rbd.ErrAlreadyPrimary):
				res.Action = "promoted"
				return true, fast, nil
			case !errors.Is(err, rbd.ErrNotYet) && !errors.Is(err, rbd.ErrTimeout):
				return false, backOff, err
			}
			last = err
			if watch.arriving(s.snaps, o) {
				return false, fast, nil
			}
		}
		// The peer stops claiming primary the moment it demotes (only the
		// replay details wait for rbd-mirror's 30 s timer): its demotion is
		// then due here within seconds, so look again soon, for a while.
		st, serr := status()
		next := backOff
		if serr == nil && peerDemoted(st) && o.Clock.Now().Sub(start) < o.Stall {
			next = fast
		}
		if claim.saw(st, serr, o) {
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
		return s.forcePromote(ctx, forceWhy)
	case !errors.Is(err, context.DeadlineExceeded):
		return err
	case o.Force:
		return fmt.Errorf("not force-promoted: the peer site is up and reports itself primary; demote it there first (a forced promote now would split the brain): %w", err)
	case watch.stalled:
		return fmt.Errorf("not promoted: the copy of the peer's demote snapshot %s (Ceph Pacific can hang when rbd-mirror restarts mid-copy; restart this site's rbd-mirror) (%v): %w", watch.why(), last, err)
	}
	return fmt.Errorf("not promoted: the peer site has not demoted it or its demotion has not replayed here (%v). If the peer site is lost, set forcePromote: true in rbd-dr.yaml; the writes after the last mirror snapshot are then lost: %w", last, err)
}

// claimWatch paces promote while the peer's status record says its copy is
// primary, which it stops saying within seconds of the peer's demotion (a
// state change is written at once, not on rbd-mirror's 30 s timer; the lab
// saw 2 to 5 s). The full checks (this site's snapshot list, a promote
// attempt) back off as long waits do, as before; between them, for
// ClaimWatch, only the status is read, every Poll. The status comes from one
// pool-wide read shared by every image (rbd.Batched), so a step of twenty
// images costs one rbd call a Poll, and the demotion is acted on within a
// Poll of the record showing it, not up to PollCap late.
//
// A step of at most o.SnapWatch images lists each image's snapshots in the
// watch instead: the copy of the peer's demote snapshot shows there as it
// arrives, before the record stops claiming primary, at an rbd process per
// image a Poll.
type claimWatch struct {
	on        bool          // the last status read says the peer claims primary
	until     time.Time     // the status-only reads end (imageStep.claimUntil)
	next      time.Time     // the next full check is due
	delay     time.Duration // the wait from the last full check to the next
	listSnaps bool          // the watch lists the snapshots, not the status
	listed    bool          // s.snaps was just listed by the watch
}

// stillClaimed reads the status (or lists the snapshots), unless a full
// check is due or the watch is off or over, and says whether the peer still
// claims primary (or its demotion has not started to arrive): then this
// round does nothing more.
func (w *claimWatch) stillClaimed(ctx context.Context, s *imageStep) bool {
	w.listed = false
	now := s.o.Clock.Now()
	if !w.on || !now.Before(w.next) || !now.Before(w.until) {
		return false
	}
	if !s.watchDue() {
		return true // as the last read said
	}
	if w.listSnaps {
		s.hint(ctx)
		w.listed = true
		latest, _ := rbd.LatestMirror(s.snaps)
		return s.snapsErr == nil && !(latest.Copy() && latest.Demoted())
	}
	return claimsPrimary(s.c.MirrorStatus(ctx, s.img))
}

// watchDue spaces the reads of promote's watch on the peer's claim to be
// primary (untilPeerDemotes, claimWatch): every Poll for the first Stall
// after the promote began (claimUntil less ClaimWatch), as a relocation's
// demotion lands within that when both sites sync together, then every
// WatchPoll. A promote that has waited that long waits for an app still
// stopping on the peer, or for a fleet's: ten apps' promotes of two images
// each, listing every Poll, are a hundred rbd processes a second. It says
// whether the watch reads now, and if so counts this read.
func (s *imageStep) watchDue() bool {
	now, o := s.o.Clock.Now(), s.o
	began := s.claimUntil.Add(-o.ClaimWatch)
	if !s.watchRead.IsZero() && now.Sub(began) >= o.Stall && now.Sub(s.watchRead) < o.WatchPoll {
		return false
	}
	s.watchRead = now
	return true
}

// claimsPrimary: the peer's daemon says its copy is primary.
func claimsPrimary(st rbd.MirrorStatus, err error) bool {
	p, ok := firstPeer(st)
	return err == nil && ok && p.ClaimsPrimary()
}

// saw takes a full check's status read: while the peer claims primary, the
// next full check is due after a doubled wait, and it says whether to read
// the status again after Poll meanwhile.
func (w *claimWatch) saw(st rbd.MirrorStatus, err error, o Options) bool {
	w.on = claimsPrimary(st, err)
	if !w.on {
		w.delay = 0
		return false
	}
	w.delay = min(max(2*w.delay, o.Poll), o.PollCap)
	now := o.Clock.Now()
	w.next = now.Add(w.delay)
	return now.Before(w.until)
}

// primarySince says whether the peer's own snapshots (s.peer, a read-only
// user there; nil or unreadable says no) show it took a snapshot as primary
// after the last one it copied from here: its newest mirror snapshot is its
// own.
func (s *imageStep) primarySince(ctx context.Context) bool {
	if s.peer == nil {
		return false
	}
	snaps, err := s.peer.Snapshots(ctx, s.img)
	newest, ok := rbd.LatestMirror(snaps)
	return err == nil && ok && newest.Own()
}

// peerDemoted: the peer's daemon reports it and no longer says primary.
func peerDemoted(st rbd.MirrorStatus) bool {
	p, ok := firstPeer(st)
	return ok && p.Known() && !p.ClaimsPrimary()
}

// peerNotPrimary fails when the peer keeps claiming primary past
// BothPrimaryGrace: two primaries must never both run the app. The claim is
// read from the peer's status record here, which lags: right after the
// peer demotes, it says primary for seconds more. With s.peer (a read-only
// user there; nil skips it) a claim is checked against the peer's own
// snapshots, which say its role the moment it changes (librbd's rule,
// rbd.PrimaryFromSnapshots): a peer whose newest mirror snapshot is not its
// own primary one is not primary, whatever the record says.
//
// claimedBy names the peer when the caller's last status read, from just
// before its promote, still had it claim primary (Ceph 20.2 ends the claim
// after this site's report of the replayed demotion, in scenario 8 up to
// more than a second later, docs/hooks.md): the peer's own snapshots and a
// new status read are then asked side by side, and the first to say the
// peer is not primary settles it (claimSettled).
func (s *imageStep) peerNotPrimary(ctx context.Context, claimedBy string) error {
	o := s.o
	var claim string
	until := o.Clock.Now().Add(o.BothPrimaryGrace)
	if s.deadline.Before(until) {
		until = s.deadline
	}
	start := o.Clock.Now()
	if claimedBy != "" && s.claimSettled(ctx, claimedBy) {
		return nil
	}
	err := waitUntil(ctx, o, until, func() (bool, pace, error) {
		st, err := s.readStatus(ctx)
		if err != nil {
			return false, backOff, err
		}
		p, ok := firstPeer(st)
		if !ok || !p.ClaimsPrimary() {
			return true, fast, nil
		}
		claim = p.SiteName
		if s.peerSaysNotPrimary(ctx, p.SiteName) {
			return true, fast, nil
		}
		// Right after a demotion the peer's record here takes a few
		// seconds to stop saying primary: look often at first.
		if o.Clock.Now().Sub(start) < o.Stall {
			return false, fast, nil
		}
		return false, backOff, nil
	})
	if err != nil && claim != "" {
		return fmt.Errorf("BOTH SITES CLAIM PRIMARY: peer %s still reports its copy primary; the app must not start here until that site is demoted (its own sync does that, or rbd mirror image demote %s there): %w", claim, s.img, err)
	}
	return err
}

// claimSettled asks the peer's own snapshots (with s.peer) and a status
// read started now side by side, and says whether either shows the peer
// not primary. A status read is shared by the step's images (rbd.Batched)
// and answers first when the claim has ended; the peer's list, one rbd
// process per image, answers when it has not. The other read is then
// cancelled; both have ended when it returns, so the list's note in the
// report is written before the caller goes on.
func (s *imageStep) claimSettled(ctx context.Context, site string) bool {
	if s.peer == nil {
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan bool, 2)
	go func() { answers <- s.peerSaysNotPrimary(ctx, site) }()
	go func() {
		st, err := s.c.MirrorStatus(ctx, s.img)
		answers <- err == nil && !claimsPrimary(st, nil)
	}()
	settled := false
	for range 2 {
		if <-answers {
			settled = true
			cancel()
		}
	}
	return settled
}

// peerSaysNotPrimary reads the peer's own snapshots (with s.peer; nil says
// no) and says whether they show it not primary, noting so in the report:
// then the claim to be primary that site's record still makes here is
// stale.
func (s *imageStep) peerSaysNotPrimary(ctx context.Context, site string) bool {
	if s.peer == nil {
		return false
	}
	snaps, err := s.peer.Snapshots(ctx, s.img)
	if primary, known := rbd.PrimaryFromSnapshots(snaps); err != nil || !known || primary {
		return false
	}
	s.addNote(fmt.Sprintf("peer %s's status record still said primary; its own snapshots say it is not", site))
	return true
}
