package failover_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// everyPool is the lab's pool-level schedule at interval.
func poolSchedule(interval string) []rbd.Schedule {
	return []rbd.Schedule{{Pool: "replicapool", Namespace: "-", Image: "-", Items: []rbd.ScheduleItem{{Interval: interval}}}}
}

// The schedule rule: prepare and promote refuse, before changing anything,
// an image that no schedule covers at least as often as promised.
func TestScheduleRequiredBeforePromote(t *testing.T) {
	denied := &rbd.CmdError{Args: []string{"mirror", "snapshot", "schedule", "ls"}, ExitCode: 13, Stderr: "rbd: rbd mirror snapshot schedule list failed: (13) Permission denied: access denied: does your client key have mgr caps?"}
	refusals := []struct {
		name  string
		setup func(*fake)
		want  string
	}{
		{"no schedule", func(f *fake) {}, "no mirror snapshot schedule covers replicapool/img1 on this site"},
		{"only another pool's", func(f *fake) {
			f.schedules = []rbd.Schedule{{Pool: "other", Namespace: "-", Image: "-", Items: []rbd.ScheduleItem{{Interval: "1m"}}}}
		}, "no mirror snapshot schedule covers"},
		{"longer than promised", func(f *fake) { f.schedules = poolSchedule("10m") }, "(every 10m, pool replicapool) is longer than the promised recovery point (5m)"},
		{"an image's own schedule overrides the pool's", func(f *fake) {
			f.schedules = append(poolSchedule("1m"), rbd.Schedule{Pool: "replicapool", Image: "img1", Items: []rbd.ScheduleItem{{Interval: "1h"}}})
		}, "(every 1h, image replicapool/img1)"},
		{"no mgr cap", func(f *fake) { f.schedulesErr = denied }, "give it the cap mgr 'profile rbd pool=replicapool'"},
	}
	for _, c := range refusals {
		t.Run("promote: "+c.name, func(t *testing.T) {
			f := &fake{statuses: []rbd.MirrorStatus{status(t, "s4_b_sees_demoted", "b")}}
			c.setup(f)
			o, _ := opts()
			o.RPO = 5 * time.Minute
			res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o))
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) || len(f.changes()) != 0 || f.primary {
				t.Errorf("got %v (want %q), calls %v", res.Err, c.want, f.calls)
			}
			if c.name == "no schedule" && !strings.Contains(res.Err.Error(), "rbd mirror snapshot schedule add --pool replicapool 5m") {
				t.Errorf("the error does not say the fix: %v", res.Err)
			}
		})
		t.Run("prepare: "+c.name, func(t *testing.T) {
			f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s5_split_brain", "b")}}
			c.setup(f)
			o, _ := opts()
			o.RPO = 5 * time.Minute
			res := only(t, failover.Prepare(context.Background(), f, []rbd.Image{img}, o))
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) || len(f.changes()) != 0 {
				t.Errorf("got %v (want %q), calls %v", res.Err, c.want, f.calls)
			}
		})
	}
}

func TestScheduleCoveredSaysWhenTheFirstSnapshotIsDue(t *testing.T) {
	f := &fake{primary: true, schedules: poolSchedule("5m"), statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	o, _ := opts()
	o.RPO = 5 * time.Minute
	// The fake clock starts at 09:02:30: the mgr's rescan (a minute) then
	// the next 5m boundary.
	images := []rbd.Image{img, {Pool: "replicapool", Name: "img2"}, {Pool: "replicapool", Name: "img3"}}
	report := failover.Promote(context.Background(), f, nil, images, o)
	if err := report.Err(); err != nil {
		t.Fatal(err)
	}
	for _, res := range report {
		// already primary, the peer replaying: the schedule is all there is to say
		if res.Note != "scheduled every 5m (pool replicapool): first snapshot due by 09:05:00" {
			t.Errorf("%s: note %q", res.Target, res.Note)
		}
	}
	if n := f.count("schedules"); n != 1 {
		t.Errorf("the schedules were read %d times for 3 images, want once per step", n)
	}
}

func TestScheduleNotCheckedWithoutRPO(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	o, _ := opts()
	if res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)); res.Err != nil || f.count("schedules") != 0 {
		t.Errorf("%+v, calls %v", res, f.calls)
	}
}

// inFlight is a fake whose reads each wait, for at most three seconds, until
// want reads are in flight at once, and counts the most that were: reads
// made one after the other show as one at a time.
type inFlight struct {
	*fake
	want      int
	mu        sync.Mutex
	now, most int
	all       chan struct{}
	reached   sync.Once
}

func newInFlight(f *fake, want int) *inFlight {
	return &inFlight{fake: f, want: want, all: make(chan struct{})}
}

func (f *inFlight) read() (done func()) {
	f.mu.Lock()
	f.now++
	f.most = max(f.most, f.now)
	if f.now >= f.want {
		f.reached.Do(func() { close(f.all) })
	}
	f.mu.Unlock()
	select {
	case <-f.all:
	case <-time.After(3 * time.Second):
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.now--
	}
}

func (f *inFlight) MirrorStatus(ctx context.Context, img rbd.Image) (rbd.MirrorStatus, error) {
	defer f.read()()
	return f.fake.MirrorStatus(ctx, img)
}

func (f *inFlight) Snapshots(ctx context.Context, img rbd.Image) ([]rbd.Snapshot, error) {
	defer f.read()()
	return f.fake.Snapshots(ctx, img)
}

func (f *inFlight) Schedules(ctx context.Context) ([]rbd.Schedule, error) {
	defer f.read()()
	return f.fake.Schedules(ctx)
}

// A step's first reads run beside the schedule read: a sync with nothing to
// move (the image primary here, the peer replaying) is then one rbd
// process's time, and each read is made once. A promote that waits on the
// peer's demotion first starts only the status beside it: the list must
// come after the wait.
func TestFirstReadsBesideTheSchedules(t *testing.T) {
	steady := func() *fake {
		return &fake{primary: true, schedules: poolSchedule("5m"), statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")},
			snaps: [][]rbd.Snapshot{list(own(4, 1795511100, "primary", peerUUID))}}
	}
	for _, c := range []struct {
		name   string
		images int
		run    func(failover.Rbd, []rbd.Image, failover.Options) failover.Report
		reads  map[string]int // the calls each step makes, each once per image (schedules once)
	}{
		{"promote, already primary", 1, func(c failover.Rbd, images []rbd.Image, o failover.Options) failover.Report {
			return failover.Promote(context.Background(), c, nil, images, o)
		}, map[string]int{"schedules": 1, "status": 1, "snaps": 1}},
		{"prepare, nothing in error", 1, func(c failover.Rbd, images []rbd.Image, o failover.Options) failover.Report {
			return failover.Prepare(context.Background(), c, images, o)
		}, map[string]int{"schedules": 1, "status": 1}},
		{"prepare, two images", 2, func(c failover.Rbd, images []rbd.Image, o failover.Options) failover.Report {
			return failover.Prepare(context.Background(), c, images, o)
		}, map[string]int{"schedules": 1, "status": 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := 0
			for _, n := range c.reads {
				want += n
			}
			f := newInFlight(steady(), want)
			o, _ := opts()
			o.RPO = 5 * time.Minute
			images := []rbd.Image{img, {Pool: "replicapool", Name: "img2"}}[:c.images]
			if err := c.run(f, images, o).Err(); err != nil {
				t.Fatal(err)
			}
			if f.most != want {
				t.Errorf("at most %d of the %d first reads were in flight at once, want all; calls %v", f.most, want, f.calls)
			}
			for call, n := range c.reads {
				if got := f.count(call); got != n {
					t.Errorf("%s made %d times, want %d; calls %v", call, got, n, f.calls)
				}
			}
			if len(f.calls) != want {
				t.Errorf("calls %v, want only the first reads", f.calls)
			}
		})
	}
	t.Run("promote waiting on the demotion: the status beside the schedules, the list after", func(t *testing.T) {
		f := newInFlight(&fake{schedules: poolSchedule("5m"), statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}}, 2)
		o, _ := opts()
		o.RPO, o.SnapWatch, o.Timeout = 5*time.Minute, -1, time.Second
		failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)
		if f.most < 2 || len(f.calls) < 3 || slices.Contains(f.calls[:2], "snaps") {
			t.Errorf("at most %d reads at once, calls %v; want the schedules and the status at once, then the list", f.most, f.calls)
		}
	})
}
