package rbd

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Schedule is one level of `rbd mirror snapshot schedule ls --recursive`:
// the mirror snapshot schedules of an image, of a pool's namespace, of a
// pool ("-" namespace and image: every image of it) or of every pool ("-"
// pool). Ceph's mgr takes a mirror snapshot of each primary image at the
// intervals of the most specific level that names it.
type Schedule struct {
	Pool      string         `json:"pool"`
	Namespace string         `json:"namespace"`
	Image     string         `json:"image"`
	Items     []ScheduleItem `json:"items"`
}

// ScheduleItem is one schedule of a level: an interval such as "5m", "1h"
// or "1d", and an optional start time that its runs are aligned to.
type ScheduleItem struct {
	Interval  string `json:"interval"`
	StartTime string `json:"start_time"`
}

// wildcard is the schedules' wildcard: a level that is not narrower than this.
const wildcard = "-"

// Coverage is the schedule that snapshots one image.
type Coverage struct {
	// Interval is the shortest interval of the level that applies.
	Interval time.Duration
	// Level says which level applies, for people: "image replicapool/db",
	// "pool replicapool" or "every pool".
	Level string
}

// Covering finds the schedule Ceph runs for img: the most specific level
// that names it (image, then its RADOS namespace, then pool), then every
// pool. ok is false when none does, and then the image
// gets a mirror snapshot only when someone takes one.
func Covering(scheds []Schedule, img Image) (Coverage, bool, error) {
	levels := []struct {
		match func(Schedule) bool
		name  string
	}{
		{func(s Schedule) bool {
			return s.Pool == img.Pool && s.Namespace == img.Namespace && s.Image == img.Name
		}, "image " + img.String()},
		{func(s Schedule) bool {
			return img.Namespace != "" && s.Pool == img.Pool && s.Namespace == img.Namespace && s.Image == wildcard
		}, "namespace " + img.Place()},
		{func(s Schedule) bool { return s.Pool == img.Pool && s.Namespace == wildcard && s.Image == wildcard }, "pool " + img.Pool},
		{func(s Schedule) bool { return s.Pool == wildcard && s.Image == wildcard }, "every pool"},
	}
	for _, l := range levels {
		i := slices.IndexFunc(scheds, func(s Schedule) bool { return l.match(s) && len(s.Items) > 0 })
		if i < 0 {
			continue
		}
		c := Coverage{Level: l.name}
		for _, it := range scheds[i].Items {
			d, err := ParseInterval(it.Interval)
			if err != nil {
				return Coverage{}, false, fmt.Errorf("the schedule of %s: %w", l.name, err)
			}
			if c.Interval == 0 {
				c.Interval = d
			}
			c.Interval = min(c.Interval, d)
		}
		return c, true, nil
	}
	return Coverage{}, false, nil
}

// ParseInterval reads a schedule's interval as Ceph writes it: a whole
// number and m, h or d.
func ParseInterval(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	if len(s) < 2 {
		return 0, fmt.Errorf("interval %q is not a number of minutes, hours or days (5m, 1h, 1d)", s)
	}
	unit, ok := units[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil || n < 1 {
		return 0, fmt.Errorf("interval %q is not a number of minutes, hours or days (5m, 1h, 1d)", s)
	}
	return time.Duration(n) * unit, nil
}

// FormatInterval writes d as a schedule interval, in the largest unit that
// divides it (minutes at least).
func FormatInterval(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/time.Minute)) + "m"
}

// Schedules is `rbd mirror snapshot schedule ls --recursive`: every level
// the user may read. It goes through the mgr: the user needs
// mgr 'profile rbd pool=<pool>' (ErrDenied without).
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var s []Schedule
	return s, c.runJSON(ctx, &s, "mirror", "snapshot", "schedule", "ls", "--recursive")
}

// ScheduledSnapshot is an entry of `rbd mirror snapshot schedule status`:
// when the mgr takes the image's next scheduled snapshot. The mgr lists
// only primary images it has scanned: one promoted moments ago is missing
// until its next scan (about a minute).
type ScheduledSnapshot struct {
	// Time is the mgr's local time, "2006-01-02 15:04:05".
	Time  string `json:"schedule_time"`
	Image string `json:"image"`
}

// When is the time of the snapshot in loc (the mgr's zone), if readable.
func (s ScheduledSnapshot) When(loc *time.Location) (time.Time, bool) {
	t, err := time.ParseInLocation(time.DateTime, s.Time, loc)
	return t, err == nil
}

// ScheduleStatus is `rbd mirror snapshot schedule status` of a place (pool,
// or pool/namespace as Image.Place gives it).
func (c *Client) ScheduleStatus(ctx context.Context, place string) ([]ScheduledSnapshot, error) {
	pool, namespace, err := ParsePlace(place)
	if err != nil {
		return nil, err
	}
	args := []string{"mirror", "snapshot", "schedule", "status", "--pool", pool}
	if namespace != "" {
		args = append(args, "--namespace", namespace)
	}
	var s []ScheduledSnapshot
	return s, c.runJSON(ctx, &s, args...)
}

// NextScheduled finds img's entry in a schedule status.
func NextScheduled(status []ScheduledSnapshot, img Image) (ScheduledSnapshot, bool) {
	i := slices.IndexFunc(status, func(s ScheduledSnapshot) bool { return strings.TrimPrefix(s.Image, "/") == img.String() })
	if i < 0 {
		return ScheduledSnapshot{}, false
	}
	return status[i], true
}
