package rbd

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Info is the part of `rbd info --format json` a failover reads. Fields
// Pacific does not print stay zero.
type Info struct {
	Mirroring *struct {
		Mode     string `json:"mode"`
		State    string `json:"state"`
		GlobalID string `json:"global_id"`
		Primary  bool   `json:"primary"`
	} `json:"mirroring"`
}

// MirrorEnabled says whether the image is mirrored at all.
func (i Info) MirrorEnabled() bool { return i.Mirroring != nil && i.Mirroring.State == "enabled" }

// Primary is the local truth of the image's role, free of status lag.
func (i Info) Primary() bool { return i.Mirroring != nil && i.Mirroring.Primary }

// MirrorStatus is `rbd mirror image status --format json`: the local
// rbd-mirror's view and, per peer site, the peer's.
type MirrorStatus struct {
	Name        string `json:"name"`
	GlobalID    string `json:"global_id"`
	State       string `json:"state"`
	Description string `json:"description"`
	// Daemon is this site's rbd-mirror that reports the image (and, while
	// it replays the image, holds it open).
	Daemon    MirrorDaemon `json:"daemon_service"`
	PeerSites []PeerSite   `json:"peer_sites"`
}

// MirrorDaemon is an rbd-mirror daemon as a status names it. InstanceID is
// the global id of its RADOS client: the "client.<id>" a lock or a watch of
// an image it has open names.
type MirrorDaemon struct {
	InstanceID string `json:"instance_id"`
	DaemonID   string `json:"daemon_id"`
	Hostname   string `json:"hostname"`
}

// Client is the RADOS client name of the daemon ("client.4146"), or "" if
// the status names none.
func (d MirrorDaemon) Client() string {
	if d.InstanceID == "" {
		return ""
	}
	return "client." + d.InstanceID
}

// PeerSite is one peer's status of the image.
type PeerSite struct {
	SiteName string `json:"site_name"`
	// MirrorUUID identifies the peer's rbd-mirror instance: Ceph prints it
	// as mirror_uuids up to Reef (18.2) and as mirror_uuid from Tentacle
	// (20.2); UnmarshalJSON reads either.
	MirrorUUID  string `json:"mirror_uuid"`
	State       string `json:"state"`
	Description string `json:"description"`
	// SiteGone is set by a pool-wide read (PoolMirrorStatus): every record
	// this site keeps in the pool is down+, so its rbd-mirror is gone for
	// this image too, whatever this image's own entry says.
	SiteGone bool `json:"-"`
}

// UnmarshalJSON reads a peer entry of any Ceph release: the key of the
// peer's mirror uuid changed from mirror_uuids to mirror_uuid in Tentacle.
func (p *PeerSite) UnmarshalJSON(b []byte) error {
	type plain PeerSite
	var v struct {
		plain
		OldMirrorUUID string `json:"mirror_uuids"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = PeerSite(v.plain)
	if p.MirrorUUID == "" {
		p.MirrorUUID = v.OldMirrorUUID
	}
	return nil
}

// peerKey tells peers apart: by mirror uuid, or by site name where Ceph
// printed none.
func (p PeerSite) peerKey() string {
	if p.MirrorUUID != "" {
		return p.MirrorUUID
	}
	return p.SiteName
}

// The descriptions rbd-mirror writes that decisions rest on (as Ceph's own
// qa/workunits/rbd/rbd_mirror_helpers.sh reads them).
const (
	descLocalPrimary = "local image is primary"
	descSplitBrain   = "split-brain"
	descNotFound     = "status not found"
	// descPeerDemoted: this site's replayer found nothing more to copy
	// and the peer's newest mirror snapshot a demotion (snapshot
	// Replayer's scan_remote_mirror_snapshots), so it stopped.
	descPeerDemoted = "remote image demoted"
)

// Known says whether a daemon is reporting this state now: `down+*` is a
// stale record of a stopped rbd-mirror, and nothing is decided on it.
func known(state, desc string) bool {
	return strings.HasPrefix(state, "up+") && desc != descNotFound
}

// Known says whether the local status can be trusted at all.
func (s MirrorStatus) Known() bool { return known(s.State, s.Description) }

// SplitBrain: the local copy and the peer's history have diverged (after a
// forced promote, once the stale primary is demoted).
func (s MirrorStatus) SplitBrain() bool {
	return s.Known() && strings.HasSuffix(s.State, "+error") && strings.Contains(s.Description, descSplitBrain)
}

// Error: the local copy's replay failed (split-brain included).
func (s MirrorStatus) Error() bool { return s.Known() && strings.HasSuffix(s.State, "+error") }

// Replayer says this site's rbd-mirror works the image as a copy: it
// replays, syncs, or is starting or stopping the replay (then it has the
// image open). "up+stopped" is a daemon that let go.
func (s MirrorStatus) Replayer() bool {
	switch s.State {
	case "up+replaying", "up+syncing", "up+starting_replay", "up+stopping_replay":
		return true
	}
	return false
}

// Replaying: a healthy non-primary copy following its primary.
func (s MirrorStatus) Replaying() bool { return s.Known() && s.State == "up+replaying" }

// DemotionReplayed: this site's rbd-mirror says it has nothing more to copy
// and the peer's newest mirror snapshot is a demotion: in a relocation, the
// copy of the demotion here is complete (the daemon marks it complete
// first). Ceph writes the same when the peer's demotion is not complete on
// the peer yet; then this copy's newest snapshot is not a demotion and
// Ceph refuses a non-forced promote. The daemon does not rewrite it when
// this site's role changes next (the 18.2 lab showed it still there after a
// promote): only a change to it seen while waiting says it is current.
func (s MirrorStatus) DemotionReplayed() bool {
	return s.Known() && s.Description == descPeerDemoted
}

// Known says whether the peer's status is reported by a running daemon.
func (p PeerSite) Known() bool { return known(p.State, p.Description) }

// Gone: the peer's rbd-mirror wrote this record once and has not kept it
// alive for longer than its watch timeout (osd_client_watch_timeout, 30 s by
// default), so no daemon of that site runs. "status not found" is not that:
// it is also what a peer reports for an image being recreated here.
func (p PeerSite) Gone() bool {
	return strings.HasPrefix(p.State, "down+") && p.Description != descNotFound
}

// ClaimsPrimary: the peer says its own copy is primary.
func (p PeerSite) ClaimsPrimary() bool { return p.Known() && p.Description == descLocalPrimary }

// Healthy: the peer is up and not in error.
func (p PeerSite) Healthy() bool { return p.Known() && !strings.HasSuffix(p.State, "+error") }

// Snapshot is one entry of `rbd snap ls --all --format json`.
type Snapshot struct {
	ID        uint64            `json:"id"`
	Name      string            `json:"name"`
	Timestamp SnapTime          `json:"timestamp"`
	Namespace SnapshotNamespace `json:"namespace"`
}

// SnapshotNamespace says what kind of snapshot it is; for mirror snapshots,
// its role and how far its copy got.
type SnapshotNamespace struct {
	Type  string `json:"type"`
	State string `json:"state"` // primary, non-primary or demoted
	// MirrorPeerUUIDs: on a site's own primary snapshot, the peers that have
	// not yet moved past it (a peer unlinks itself from the older snapshot
	// the moment its copy of a newer one completes).
	MirrorPeerUUIDs []string `json:"mirror_peer_uuids"`
	// Complete: a copied snapshot whose data has all been copied.
	Complete          bool   `json:"complete"`
	PrimaryMirrorUUID string `json:"primary_mirror_uuid"`
	// PrimarySnapID is the id of the peer's snapshot this one copies.
	PrimarySnapID uint64 `json:"primary_snap_id"`
	// LastCopiedObjectNumber is how far an incomplete copy got.
	LastCopiedObjectNumber uint64 `json:"last_copied_object_number"`
}

// Mirror says whether this is a mirror snapshot.
func (s Snapshot) Mirror() bool { return s.Namespace.Type == "mirror" }

// Copy says whether this is a snapshot copied from a peer (non-primary, or
// non-primary and since demoted).
func (s Snapshot) Copy() bool { return s.Mirror() && s.Namespace.PrimaryMirrorUUID != "" }

// Own says whether this is a mirror snapshot this site took as primary
// (its demote snapshot included). Not an orphan snapshot: non-primary with
// no peer's uuid, the mark a forced promote leaves first (librbd reads the
// image as non-primary, "orphan", until the promote's own snapshot).
func (s Snapshot) Own() bool {
	return s.Mirror() && s.Namespace.PrimaryMirrorUUID == "" && s.Namespace.State != "non-primary"
}

// Demoted says whether this mirror snapshot marks a demotion: the demoting
// site's own, or its copy on the peer.
func (s Snapshot) Demoted() bool { return s.Mirror() && s.Namespace.State == "demoted" }

// LatestMirror is the newest mirror snapshot, if any.
func LatestMirror(snaps []Snapshot) (Snapshot, bool) {
	return latest(snaps, Snapshot.Mirror)
}

// PrimaryFromSnapshots reads the image's role from its snapshots the way
// librbd itself does for snapshot mirroring (GetInfoRequest's
// calc_promotion_state, behind rbd info's "primary"): the newest mirror
// snapshot decides, and only this site's own one, not a demotion, makes it
// primary. A step that lists the snapshots anyway saves the rbd info call.
// ok is false without any mirror snapshot: then rbd info must say.
func PrimaryFromSnapshots(snaps []Snapshot) (primary, ok bool) {
	s, ok := LatestMirror(snaps)
	return ok && s.Own() && !s.Demoted(), ok
}

// LatestOwn is the newest mirror snapshot this site took as primary: what
// the peer must hold before this site demotes.
func LatestOwn(snaps []Snapshot) (Snapshot, bool) {
	return latest(snaps, Snapshot.Own)
}

// LastSyncedCopy is the newest copied snapshot whose data is complete: what
// a forced promote of this copy would give the app.
func LastSyncedCopy(snaps []Snapshot) (Snapshot, bool) {
	return latest(snaps, func(s Snapshot) bool { return s.Copy() && s.Namespace.Complete })
}

// CopyOf is this site's copy of the peer's snapshot id, complete or not.
func CopyOf(snaps []Snapshot, primarySnapID uint64) (Snapshot, bool) {
	return latest(snaps, func(s Snapshot) bool { return s.Copy() && s.Namespace.PrimarySnapID == primarySnapID })
}

// PeerLinks reads the local signs of how far the peers of a primary image
// got: each peer stays linked (mirror_peer_uuids) to the own snapshot it
// copies from and unlinks itself from it the moment its copy of the next
// one completes. Behind: some peer the newest own snapshot was made for is
// still linked to an older one, so its copy of the newest is not complete.
// CaughtUp: there is an older own snapshot and none of them is linked to
// those peers any more, so every one of them completed the newest. With a
// single own snapshot neither can be told (an image just enabled or just
// promoted), and a snapshot taken before a peer was added was never linked
// to it: the peer's own list or the status then decide.
func PeerLinks(snaps []Snapshot) (behind, caughtUp bool) {
	newest, ok := LatestOwn(snaps)
	if !ok || len(newest.Namespace.MirrorPeerUUIDs) == 0 {
		return false, false
	}
	older := 0
	for _, s := range snaps {
		if !s.Own() || s.ID == newest.ID {
			continue
		}
		older++
		for _, p := range s.Namespace.MirrorPeerUUIDs {
			if slices.Contains(newest.Namespace.MirrorPeerUUIDs, p) {
				return true, false
			}
		}
	}
	return false, older > 0
}

// OlderOwn is the newest own snapshot before the newest one: the one a
// caught-up peer unlinked itself from.
func OlderOwn(snaps []Snapshot) (Snapshot, bool) {
	newest, ok := LatestOwn(snaps)
	if !ok {
		return Snapshot{}, false
	}
	return latest(snaps, func(s Snapshot) bool { return s.Own() && s.ID != newest.ID })
}

func latest(snaps []Snapshot, match func(Snapshot) bool) (Snapshot, bool) {
	for i := len(snaps) - 1; i >= 0; i-- {
		if match(snaps[i]) {
			return snaps[i], true
		}
	}
	return Snapshot{}, false
}

// SnapTime is rbd snap ls's ctime-style time; unreadable is zero.
type SnapTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *SnapTime) UnmarshalJSON(b []byte) error {
	t.Time, _ = time.Parse(time.ANSIC, strings.Trim(string(b), `"`))
	return nil
}

// Replay is the progress rbd-mirror puts in a replaying copy's description:
// "replaying, {json}".
type Replay struct {
	ReplayState string `json:"replay_state"`
	// LocalSnapshotTimestamp is when the primary took the snapshot this copy
	// has completed; RemoteSnapshotTimestamp the newest one it knows of.
	LocalSnapshotTimestamp  int64 `json:"local_snapshot_timestamp"`
	RemoteSnapshotTimestamp int64 `json:"remote_snapshot_timestamp"`
}

// Replay reads the peer's replay progress, if it is replaying.
func (p PeerSite) Replay() (Replay, bool) {
	var r Replay
	if !p.Known() || p.State != "up+replaying" {
		return r, false
	}
	_, js, ok := strings.Cut(p.Description, ", ")
	if !ok || json.Unmarshal([]byte(js), &r) != nil {
		return r, false
	}
	return r, true
}

// CopiedSince says whether the peer's record, even one a stopped daemon
// left, shows a complete copy of a snapshot the primary took at unix time
// snapTime or later: the peer was following this image by then.
func (p PeerSite) CopiedSince(snapTime int64) bool {
	r, ok := details(p.Description)
	return ok && r.LocalSnapshotTimestamp >= snapTime
}

// HasCopied says whether the peer follows this primary and has completed
// its copy of the primary snapshot taken at unix time snapTime.
func (p PeerSite) HasCopied(snapTime int64) bool {
	r, ok := p.Replay()
	return ok && r.ReplayState == "idle" && r.LocalSnapshotTimestamp == r.RemoteSnapshotTimestamp && r.LocalSnapshotTimestamp >= snapTime
}
