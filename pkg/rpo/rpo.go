// Package rpo judges how old the copy of each image on the other site is
// against the recovery point the platform promised (the settings' rpo,
// the interval of the mirror snapshot schedule), the way Ramen does for its
// DR policies: a warning once the data is more than 2x the interval old,
// critical past 3x, unprotected while no copy has ever completed. The
// status command and the rpo-check CronJob both read it from here.
package rpo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// The thresholds, as multiples of the promised interval (Ramen's
// VolumeSynchronizationDelay alert: warning above 2, critical at 3).
const (
	WarningFactor  = 2
	CriticalFactor = 3
)

// Level is how one image stands against its promise.
type Level string

// The levels, from good to bad. Fails says which fail the rpo-check.
const (
	OK Level = "ok"
	// Warning: the copy is more than WarningFactor intervals old.
	Warning Level = "warning"
	// Critical: the copy is more than CriticalFactor intervals old.
	Critical Level = "critical"
	// Unprotected: no copy has ever completed (or one is being recreated).
	Unprotected Level = "unprotected"
	// Unscheduled: a primary image that no schedule snapshots at least as
	// often as promised: its copy only moves when someone takes a snapshot.
	Unscheduled Level = "unscheduled"
	// Broken: mirroring is off, in error, split-brain, or both sites
	// claim primary.
	Broken Level = "broken"
)

// Fails says whether the level breaks the promise.
func (l Level) Fails() bool { return l != OK && l != Warning }

// Image is one image as one site sees it.
type Image struct {
	// App and Namespace name the app the image belongs to (set by callers).
	App       string `json:"app,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Site      string `json:"site"`
	Image     string `json:"image"`
	// Role is this site's: primary, non-primary, or not mirrored.
	Role string `json:"role"`
	// Mirror is the mirroring state that matters here: a primary's peer's,
	// a non-primary's own (state and description, as rbd-mirror writes them).
	Mirror string `json:"mirror"`
	// LastCopy is when the primary took the newest snapshot whose copy is
	// complete; nil when none is.
	LastCopy *time.Time `json:"lastCopy,omitempty"`
	// LastCopyFrom is the signal that told: status or snapshots.
	LastCopyFrom string `json:"lastCopyFrom,omitempty"`
	// Age is how old the copy is (the data a failover would give).
	Age Seconds `json:"ageSeconds"`
	// RPO is the promised interval.
	RPO Seconds `json:"rpoSeconds"`
	// Schedule is the interval of the schedule that covers the image here
	// (0: none) and ScheduleLevel where it is set.
	Schedule      Seconds `json:"scheduleSeconds"`
	ScheduleLevel string  `json:"scheduleLevel,omitempty"`
	// NextSnapshot is when the mgr takes the next scheduled snapshot, if it
	// has scanned the image (primary only).
	NextSnapshot *time.Time `json:"nextSnapshot,omitempty"`
	Level        Level      `json:"level"`
	Reason       string     `json:"reason"`
}

// Seconds is a duration written as seconds.
type Seconds float64

// Duration is s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

func seconds(d time.Duration) Seconds { return Seconds(d.Seconds()) }

// Observed is what one site's reads said of one image.
type Observed struct {
	Site   string
	Image  rbd.Image
	Info   rbd.Info
	Status rbd.MirrorStatus
	Snaps  []rbd.Snapshot
	// Schedules are the site's schedules (every level).
	Schedules []rbd.Schedule
	// Next is the mgr's schedule status of the image's pool.
	Next []rbd.ScheduledSnapshot
	// Err is why the image could not be read.
	Err error
}

// Assess judges one image against rpo at now.
func Assess(o Observed, rpo time.Duration, now time.Time) Image {
	img := Image{Site: o.Site, Image: o.Image.String(), RPO: seconds(rpo), Role: "unknown"}
	set := func(l Level, format string, args ...any) Image {
		img.Level, img.Reason = l, fmt.Sprintf(format, args...)
		return img
	}
	switch {
	case errors.Is(o.Err, rbd.ErrNotFound):
		return set(Unprotected, "the image is missing here (being recreated by a resync, or never made)")
	case o.Err != nil:
		return set(Broken, "reading it: %v", o.Err)
	}
	img.Role = "non-primary"
	primary := o.Info.Primary()
	if primary {
		img.Role = "primary"
	}
	if !o.Info.MirrorEnabled() {
		img.Role = "not mirrored"
		return set(Broken, "mirroring is not enabled on it (rbd mirror image enable %s snapshot)", o.Image)
	}
	cov, covered, err := rbd.Covering(o.Schedules, o.Image)
	if covered {
		img.Schedule, img.ScheduleLevel = seconds(cov.Interval), cov.Level
	}
	if next, ok := rbd.NextScheduled(o.Next, o.Image); ok {
		if t, ok := next.When(time.Local); ok {
			img.NextSnapshot = &t
		}
	}
	peer, hasPeer := firstPeer(o.Status)
	img.Mirror = mirrorState(o.Status.State, o.Status.Description)
	if primary && hasPeer {
		img.Mirror = "peer " + peer.SiteName + ": " + mirrorState(peer.State, peer.Description)
	}
	switch {
	case primary && !hasPeer:
		return set(Broken, "no peer site reports it: is the other site's rbd-mirror running, and the pool's peer bootstrapped?")
	case primary && peer.ClaimsPrimary():
		return set(Broken, "both sites claim primary: the other site's copy must be demoted and resynced (docs/operations.md#failback-after-a-disaster)")
	case primary && peer.Known() && !peer.Healthy():
		return set(Broken, "the peer's copy is in error: %s", peer.Description)
	case !primary && o.Status.SplitBrain():
		return set(Broken, "split-brain: this copy's history left the primary's; it needs a resync from the primary")
	case !primary && o.Status.Error():
		return set(Broken, "the copy is in error: %s", o.Status.Description)
	case err != nil:
		return set(Broken, "%v", err)
	case primary && !covered:
		return set(Unscheduled, "no mirror snapshot schedule covers it on this site: its copy moves only when someone takes a mirror snapshot (rbd mirror snapshot schedule add %s %s)", o.Image.ScheduleScope(), rbd.FormatInterval(rpo))
	case primary && cov.Interval > rpo:
		return set(Unscheduled, "its schedule (every %s, %s) is longer than the promised %s", rbd.FormatInterval(cov.Interval), cov.Level, rbd.FormatInterval(rpo))
	}
	last, ok := rbd.LastCopyOf(o.Status, o.Snaps, primary)
	if !ok {
		return set(Unprotected, "no complete copy yet: a failover now would have no data to give")
	}
	img.LastCopy, img.LastCopyFrom = &last.At, last.From
	age := max(now.Sub(last.At), 0)
	img.Age = seconds(age)
	switch {
	case age > CriticalFactor*rpo:
		return set(Critical, "the copy is %s old, more than %dx the promised %s", age.Round(time.Second), CriticalFactor, rbd.FormatInterval(rpo))
	case age > WarningFactor*rpo:
		return set(Warning, "the copy is %s old, more than %dx the promised %s", age.Round(time.Second), WarningFactor, rbd.FormatInterval(rpo))
	}
	return set(OK, "the copy is %s old", age.Round(time.Second))
}

// mirrorState is a status record on one line: the state and its
// description, with a replaying copy's details cut to its replay state.
func mirrorState(state, desc string) string {
	if head, js, ok := strings.Cut(desc, ", {"); ok {
		var r rbd.Replay
		if json.Unmarshal([]byte("{"+js), &r) == nil && r.ReplayState != "" {
			desc = head + ", " + r.ReplayState
		}
	}
	return fmt.Sprintf("%s %q", state, desc)
}

func firstPeer(st rbd.MirrorStatus) (rbd.PeerSite, bool) {
	if len(st.PeerSites) == 0 {
		return rbd.PeerSite{}, false
	}
	return st.PeerSites[0], true
}

// Reader is what Read needs of a site's cluster; *rbd.Client is one.
type Reader interface {
	Info(ctx context.Context, img rbd.Image) (rbd.Info, error)
	MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error)
	Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error)
	Schedules(ctx context.Context) ([]rbd.Schedule, error)
	ScheduleStatus(ctx context.Context, place string) ([]rbd.ScheduledSnapshot, error)
}

// Read observes the images on one site, up to parallelism at a time (one
// after another, a 20-image app is 60 rbd calls in a row; with a Batched
// reader the images' statuses share pool reads). It fails as a whole only when the
// schedules cannot be read (the user's caps: say which is missing); an
// image that cannot be read is observed with its error.
func Read(ctx context.Context, c Reader, site, user string, images []rbd.Image, parallelism int) ([]Observed, error) {
	scheds, err := c.Schedules(ctx)
	if errors.Is(err, rbd.ErrDenied) {
		return nil, fmt.Errorf("site %s: Ceph user %s may not read the mirror snapshot schedules: give it the cap mgr 'profile rbd pool=<pool>' for each of its pools (manifests/tenant's CephClient has it): %w", site, user, err)
	}
	if err != nil {
		return nil, fmt.Errorf("site %s: reading the mirror snapshot schedules: %w", site, err)
	}
	next := map[string][]rbd.ScheduledSnapshot{}
	for _, img := range images {
		if _, read := next[img.Place()]; !read {
			// Only a hint (when the next snapshot is due): a failed read
			// leaves it out.
			next[img.Place()], _ = c.ScheduleStatus(ctx, img.Place())
		}
	}
	out := make([]Observed, len(images))
	var g errgroup.Group
	g.SetLimit(max(parallelism, 1))
	for i, img := range images {
		g.Go(func() error {
			o := Observed{Site: site, Image: img, Schedules: scheds, Next: next[img.Place()]}
			if o.Info, o.Err = c.Info(ctx, img); o.Err == nil {
				if o.Status, o.Err = c.MirrorStatus(ctx, img); o.Err == nil {
					o.Snaps, o.Err = c.Snapshots(ctx, img)
				}
			}
			out[i] = o
			return nil
		})
	}
	_ = g.Wait() // every image's error is in its Observed
	return out, nil
}
