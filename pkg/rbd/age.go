package rbd

import (
	"encoding/json"
	"strings"
	"time"
)

// LastCopy is how far the non-primary copy of an image got: when the
// primary took the newest snapshot whose copy is complete. The data a
// failover would give is that old.
type LastCopy struct {
	At time.Time
	// From says which signal told: "status" (rbd-mirror's replay details,
	// the primary's own snapshot time), or "snapshots" when the status had
	// none (a stopped rbd-mirror writes just "stopped").
	From string
}

// details reads the replay details rbd-mirror puts after "replaying, " in a
// copy's description. A killed rbd-mirror's last record keeps them (down+),
// and they still say how far its copy got, since nothing copies after.
func details(desc string) (Replay, bool) {
	var r Replay
	_, js, ok := strings.Cut(desc, ", ")
	if !ok || json.Unmarshal([]byte(js), &r) != nil || r.LocalSnapshotTimestamp <= 0 {
		return Replay{}, false
	}
	return r, true
}

// LastCopyOf reads an image's last complete copy from one site: a
// primary's from its peer's status record here, a non-primary's from its
// own. When the record has no replay details (a stopped rbd-mirror writes
// just "stopped"; a replayer that is starting, none yet), from the
// snapshots listed here:
//   - a primary: the own snapshot its peer is still linked to, the base of
//     its next copy; or, just promoted, the peer's snapshot it was promoted
//     from (its newest complete copy here): the peer holds that data, having
//     taken it;
//   - a non-primary: its newest complete copy, or its own demotion: the
//     primary was promoted from that data.
//
// A copy's time here trails the primary's snapshot by the moment the copy
// started. ok is false when nothing shows a complete copy: the image is not
// protected.
func LastCopyOf(st MirrorStatus, snaps []Snapshot, primary bool) (LastCopy, bool) {
	desc := st.Description
	if primary {
		p, ok := firstPeerSite(st)
		if !ok {
			return LastCopy{}, false
		}
		desc = p.Description
	}
	if r, ok := details(desc); ok {
		return LastCopy{At: time.Unix(r.LocalSnapshotTimestamp, 0).UTC(), From: "status"}, true
	}
	held := func(s Snapshot) bool { return s.Copy() && s.Namespace.Complete || !primary && s.Own() && s.Demoted() }
	s, ok := latest(snaps, held)
	if primary {
		if base, linked := copyBase(snaps); linked {
			s, ok = base, true
		}
	}
	if !ok || s.Timestamp.IsZero() {
		return LastCopy{}, false
	}
	return LastCopy{At: s.Timestamp.UTC(), From: "snapshots"}, true
}

// copyBase is the oldest own snapshot a peer is still linked to: the one
// it last completed (PeerLinks says why). A single linked snapshot with no
// older own one may still be copying: not told.
func copyBase(snaps []Snapshot) (Snapshot, bool) {
	own := 0
	for _, s := range snaps {
		if !s.Own() {
			continue
		}
		own++
		if len(s.Namespace.MirrorPeerUUIDs) == 0 {
			continue
		}
		newest, _ := LatestOwn(snaps)
		if s.ID == newest.ID && own == 1 {
			return Snapshot{}, false
		}
		return s, true
	}
	return Snapshot{}, false
}

func firstPeerSite(st MirrorStatus) (PeerSite, bool) {
	if len(st.PeerSites) == 0 {
		return PeerSite{}, false
	}
	return st.PeerSites[0], true
}
