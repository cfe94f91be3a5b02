package rbd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// gated answers `mirror pool status` with the statuses of images, each
// described by the number of the read that produced it, and holds every
// read until released. It answers `mirror image status` for any image.
type gated struct {
	images  []string
	release chan struct{}
	failing error

	mu        sync.Mutex
	poolReads int
	single    []string
	cancelled int
	entered   chan struct{}
}

func (g *gated) Run(ctx context.Context, argv []string) (Output, error) {
	line := strings.Join(argv, " ")
	if strings.Contains(line, "mirror image status") {
		g.mu.Lock()
		g.single = append(g.single, argv[len(argv)-3])
		g.mu.Unlock()
		return Output{ExitCode: 2, Stderr: []byte("rbd: error opening image: (2) No such file or directory")}, nil
	}
	g.mu.Lock()
	g.poolReads++
	n := g.poolReads
	g.mu.Unlock()
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		g.mu.Lock()
		g.cancelled++
		g.mu.Unlock()
		return Output{}, ctx.Err()
	}
	if g.failing != nil {
		return Output{}, g.failing
	}
	var entries []string
	for _, name := range g.images {
		entries = append(entries, fmt.Sprintf(`{"name":%q,"state":"up+replaying","description":"read %d"}`, name, n))
	}
	return Output{Stdout: []byte(`{"images":[` + strings.Join(entries, ",") + `]}`)}, nil
}

func newGated(images ...string) *gated {
	return &gated{images: images, release: make(chan struct{}), entered: make(chan struct{}, 10)}
}

// queued is how many callers wait for pool's next read.
func queued(b *Batched, pool string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.pools[pool]; p != nil && p.next != nil {
		return p.next.waiters
	}
	return 0
}

// recv and send give up on a channel after 10 s, so a broken batch fails
// the test instead of hanging it.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived in 10 s")
	}
	var zero T
	return zero
}

func send(t *testing.T, ch chan<- struct{}) {
	t.Helper()
	select {
	case ch <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("nobody took it in 10 s")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// imageNames is n image names.
func imageNames(n int) []string {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("img%02d", i))
	}
	return names
}

// askEach asks b for each name's status, each in its own goroutine, gap
// apart (0: at once); the func it returns waits for every answer, in the
// names' order.
func askEach(t *testing.T, b *Batched, names []string, gap time.Duration) func() []MirrorStatus {
	got := make([]MirrorStatus, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := b.MirrorStatus(context.Background(), Image{Pool: "p", Name: name})
			if err != nil {
				t.Error(err)
			}
			got[i] = st
		}()
		time.Sleep(gap)
	}
	return func() []MirrorStatus { wg.Wait(); return got }
}

// oneRead: the callers of names all got their own entry of the first and
// only pool read.
func oneRead(t *testing.T, g *gated, names []string, got []MirrorStatus) {
	t.Helper()
	for i, st := range got {
		if st.Name != names[i] || st.Description != "read 1" {
			t.Errorf("caller %d got %+v, want %s from read 1", i, st, names[i])
		}
	}
	if g.poolReads != 1 {
		t.Errorf("%d pool reads, want 1", g.poolReads)
	}
}

// Twenty images ask while a read runs: they share the next read, which
// starts after they asked, and each gets its own entry of it.
func TestBatchedSharesOneReadAndNeverAnswersFromAnOlderOne(t *testing.T) {
	names := imageNames(20)
	g := newGated(names...)
	b := NewBatched(&Client{Runner: g})
	ctx := context.Background()

	first := make(chan MirrorStatus)
	go func() {
		st, err := b.MirrorStatus(ctx, Image{Pool: "p", Name: "img00"})
		if err != nil {
			t.Error(err)
		}
		first <- st
	}()
	recv(t, g.entered) // read 1 runs; everyone below asked after it started
	results := askEach(t, b, names, 0)
	waitFor(t, "20 callers queued", func() bool { return queued(b, "p") == len(names) })
	send(t, g.release)
	if st := recv(t, first); st.Name != "img00" || st.Description != "read 1" {
		t.Errorf("the first caller got %+v", st)
	}
	recv(t, g.entered)
	send(t, g.release)
	for i, st := range results() {
		if st.Name != names[i] || st.Description != "read 2" {
			t.Errorf("caller %d got %+v, want %s from read 2", i, st, names[i])
		}
	}
	if g.poolReads != 2 || len(g.single) != 0 {
		t.Errorf("%d pool reads and %d image reads, want 2 and 0", g.poolReads, len(g.single))
	}
}

// Twenty images that ask together, as a step's images do when one read
// releases them all, share one read: the first caller's read waits Gather
// for the others before its rbd process starts.
func TestBatchedGathersCallersThatAskTogether(t *testing.T) {
	names := imageNames(20)
	g := newGated(names...)
	close(g.release)
	b := NewBatched(&Client{Runner: g})
	b.Gather = 300 * time.Millisecond // room for a loaded test machine to start 20 goroutines
	oneRead(t, g, names, askEach(t, b, names, 0)())
}

// Callers that come one after another, each within Gather of the last,
// share one read even when together they span more than Gather: a step's
// images ask beside starting an rbd process each.
func TestBatchedGathersCallersThatArriveSpreadOut(t *testing.T) {
	names := imageNames(12)
	g := newGated(names...)
	close(g.release)
	b := NewBatched(&Client{Runner: g})
	b.Gather, b.MaxGather = 150*time.Millisecond, time.Minute
	oneRead(t, g, names, askEach(t, b, names, 30*time.Millisecond)()) // 330 ms in all
}

// Callers that keep coming do not hold the read back past MaxGather.
func TestBatchedMaxGatherBoundsTheWait(t *testing.T) {
	g := newGated("img")
	b := NewBatched(&Client{Runner: g})
	b.Gather, b.MaxGather = 100*time.Millisecond, 300*time.Millisecond
	stop, stopped := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	go func() { // a caller every 20 ms until the first read has started
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.MirrorStatus(context.Background(), Image{Pool: "p", Name: "img"}); err != nil {
					t.Error(err)
				}
			}()
		}
	}()
	recv(t, g.entered) // the read started while callers still came
	close(stop)
	<-stopped
	close(g.release)
	wg.Wait()
}

// An image the pool does not list is asked on its own, so the caller gets
// rbd's own answer for it.
func TestBatchedAsksForAnUnlistedImageOnItsOwn(t *testing.T) {
	g := newGated("other")
	close(g.release)
	b := NewBatched(&Client{Runner: g})
	_, err := b.MirrorStatus(context.Background(), Image{Pool: "p", Name: "gone"})
	if !errors.Is(err, ErrNotFound) || len(g.single) != 1 || g.single[0] != "p/gone" {
		t.Errorf("err %v, image reads %v", err, g.single)
	}
}

func TestBatchedSaysWhichPoolFailed(t *testing.T) {
	g := newGated("img")
	g.failing = errors.New("running rbd: exec: not found")
	close(g.release)
	b := NewBatched(&Client{Runner: g})
	_, err := b.MirrorStatus(context.Background(), Image{Pool: "p", Name: "img"})
	if err == nil || !strings.Contains(err.Error(), "reading the mirror status of pool p: running rbd") {
		t.Errorf("err %v", err)
	}
}

// A caller that gives up gets its context's error; a read nobody waits for
// any more is stopped, and a caller after that gets a read of its own.
func TestBatchedCallersThatGiveUp(t *testing.T) {
	g := newGated("img")
	b := NewBatched(&Client{Runner: g})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := b.MirrorStatus(ctx, Image{Pool: "p", Name: "img"})
		done <- err
	}()
	recv(t, g.entered)
	cancel()
	if err := recv(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
	waitFor(t, "the abandoned read stopped", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.cancelled == 1 })

	close(g.release)
	st, err := b.MirrorStatus(context.Background(), Image{Pool: "p", Name: "img"})
	if err != nil || st.Description != "read 2" {
		t.Errorf("after the abandoned read: %+v, %v", st, err)
	}
}

// Callers that all give up while their read still gathers stop it: the
// read counts each caller that joined it.
func TestBatchedGatheringReadAbandoned(t *testing.T) {
	g := newGated("img")
	b := NewBatched(&Client{Runner: g})
	b.Gather = time.Minute // the callers give up long before it ends
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := b.MirrorStatus(ctx, Image{Pool: "p", Name: "img"})
			errs <- err
		}()
	}
	waitFor(t, "both callers on the gathering read", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		p := b.pools["p"]
		return p != nil && p.running != nil && !p.running.launched && p.running.waiters == 2
	})
	cancel()
	for range 2 {
		if err := recv(t, errs); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
	}
	waitFor(t, "the abandoned read stopped", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.cancelled == 1 })
}

// A queued read whose callers all gave up is not the one a later caller
// gets: that caller waits for a read of its own.
func TestBatchedQueuedReadAbandonedThenJoined(t *testing.T) {
	g := newGated("img")
	b := NewBatched(&Client{Runner: g})
	img := Image{Pool: "p", Name: "img"}
	first := make(chan error)
	go func() {
		_, err := b.MirrorStatus(context.Background(), img)
		first <- err
	}()
	recv(t, g.entered) // read 1 runs
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := b.MirrorStatus(ctx, img)
		gaveUp <- err
	}()
	waitFor(t, "a caller queued", func() bool { return queued(b, "p") == 1 })
	cancel()
	recv(t, gaveUp)
	later := make(chan MirrorStatus)
	go func() {
		st, err := b.MirrorStatus(context.Background(), img)
		if err != nil {
			t.Error(err)
		}
		later <- st
	}()
	waitFor(t, "the later caller queued", func() bool { return queued(b, "p") == 1 })
	send(t, g.release)
	if err := recv(t, first); err != nil {
		t.Fatal(err)
	}
	recv(t, g.entered)
	send(t, g.release)
	if st := recv(t, later); st.Description != "read 2" {
		t.Errorf("the later caller got %+v", st)
	}
}

// poolJSON answers every call with one `mirror pool status --verbose`.
type poolJSON string

func (p poolJSON) Run(context.Context, []string) (Output, error) {
	return Output{Stdout: []byte(p)}, nil
}

// A site whose every record in the pool is down+ is gone for the images it
// never wrote a record for too ("status not found"); one live record of it,
// or no real record at all, says nothing of the kind.
func TestPoolMirrorStatusMarksGoneSites(t *testing.T) {
	entry := func(name, site, state, desc string) string {
		return fmt.Sprintf(`{"name":%q,"state":"up+replaying","description":"x","peer_sites":[{"site_name":%q,"state":%q,"description":%q}]}`, name, site, state, desc)
	}
	gone := entry("a", "site-a", "down+stopped", "local image is primary")
	notFound := entry("b", "site-a", "down+unknown", "status not found")
	otherSite := entry("c", "site-c", "up+stopped", "local image is primary")
	for _, tc := range []struct {
		name    string
		entries []string
		want    map[string]bool // image: SiteGone of its peer entry
	}{
		{"every record of site-a down+", []string{gone, notFound, otherSite}, map[string]bool{"a": true, "b": true, "c": false}},
		{"one record of site-a still up", []string{gone, notFound, entry("d", "site-a", "up+replaying", "replaying")}, map[string]bool{"a": false, "b": false, "d": false}},
		{"no real record of site-a", []string{notFound, otherSite}, map[string]bool{"b": false, "c": false}},
		// Peers without site names, told apart by their mirror uuids (20.2's
		// mirror_uuid, 16.2's mirror_uuids): one gone, the other up.
		{"unnamed peers", []string{
			`{"name":"e","state":"up+replaying","description":"x","peer_sites":[{"site_name":"","mirror_uuid":"u1","state":"down+stopped","description":"local image is primary"}]}`,
			`{"name":"f","state":"up+replaying","description":"x","peer_sites":[{"site_name":"","mirror_uuids":"u2","state":"up+stopped","description":"local image is primary"}]}`,
		}, map[string]bool{"e": true, "f": false}},
	} {
		client := &Client{Runner: poolJSON(`{"images":[` + strings.Join(tc.entries, ",") + `]}`)}
		got, err := client.PoolMirrorStatus(context.Background(), "replicapool")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for name, want := range tc.want {
			if st := got[name]; len(st.PeerSites) != 1 || st.PeerSites[0].SiteGone != want {
				t.Errorf("%s: image %s: %+v, want SiteGone %t", tc.name, name, st.PeerSites, want)
			}
		}
	}
}

// An ask counts when it is made, not when its answer is awaited: a step
// asks for each image's status before starting the image's first rbd
// process and reads the answer later. Twenty asks made while no read runs
// join one read, even when the answers are awaited only after it began;
// an ask made after a read began waits for the next one.
func TestBatchedAskStatusJoinsWhenAsked(t *testing.T) {
	names := imageNames(20)
	g := newGated(names...)
	b := NewBatched(&Client{Runner: g})
	b.Gather = 300 * time.Millisecond // the asks below take microseconds
	ctx := context.Background()
	var answers []func() (MirrorStatus, error)
	for _, name := range names {
		answers = append(answers, b.AskStatus(ctx, Image{Pool: "p", Name: name}))
	}
	recv(t, g.entered) // read 1 runs, with every ask in it
	late := b.AskStatus(ctx, Image{Pool: "p", Name: "img00"})
	send(t, g.release)
	for i, answer := range answers {
		st, err := answer()
		if err != nil || st.Name != names[i] || st.Description != "read 1" {
			t.Errorf("ask %d: %+v %v, want %s from read 1", i, st, err, names[i])
		}
	}
	recv(t, g.entered)
	send(t, g.release)
	if st, err := late(); err != nil || st.Description != "read 2" {
		t.Errorf("the ask made while read 1 ran got %+v %v, want read 2", st, err)
	}
	if g.poolReads != 2 {
		t.Errorf("%d pool reads, want 2", g.poolReads)
	}
}
