package rbd

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// PoolMirrorStatus is `rbd mirror pool status --verbose`: the status of every
// mirrored image of a pool, or of one RADOS namespace of it (place is pool or
// pool/namespace, as Image.Place gives it), by image name, in one call.
func (c *Client) PoolMirrorStatus(ctx context.Context, place string) (map[string]MirrorStatus, error) {
	var out struct {
		Images []MirrorStatus `json:"images"`
	}
	if err := c.runJSON(ctx, &out, "mirror", "pool", "status", "--verbose", place); err != nil {
		return nil, err
	}
	markGoneSites(out.Images)
	byName := make(map[string]MirrorStatus, len(out.Images))
	for _, st := range out.Images {
		byName[st.Name] = st
	}
	return byName, nil
}

// markGoneSites sets SiteGone on the peer entries of each site whose records
// in the pool are all down+ (at least one, and none up+): a site's
// rbd-mirror keeps every record it wrote here alive through one watch, so
// they expire together when it stops. An image it never wrote a record for
// ("status not found", also what a live site shows for a while) is then
// known to be without that site too.
func markGoneSites(images []MirrorStatus) {
	gone, up := map[string]bool{}, map[string]bool{}
	for _, st := range images {
		for _, p := range st.PeerSites {
			gone[p.peerKey()] = gone[p.peerKey()] || p.Gone()
			up[p.peerKey()] = up[p.peerKey()] || p.Known()
		}
	}
	for _, st := range images {
		for i, p := range st.PeerSites {
			st.PeerSites[i].SiteGone = gone[p.peerKey()] && !up[p.peerKey()]
		}
	}
}

// Batched is a Client whose MirrorStatus reads the whole pool's statuses in
// one `rbd mirror pool status --verbose` shared by every image that asks at
// about the same time. A step works on up to 20 images at once, and each rbd
// process costs a connection to the monitors and the OSDs: on a small node
// those processes, not Ceph, set the pace.
//
// A caller never gets a status read before it asked: a read waits until no
// caller has joined it for Gather (MaxGather at most) before its rbd process
// starts, and callers that ask meanwhile join it; once the process runs, new
// callers wait for the next read, which starts as the running one ends.
type Batched struct {
	*Client
	// Gather is how long a read waits for more callers before it starts,
	// counted from the last one that joined: a step's images ask together
	// (released by the same read before), and without it the first would
	// start a read alone and the rest would wait for a second one.
	Gather time.Duration
	// MaxGather bounds the whole wait while callers keep joining (zero:
	// Gather from the first caller, as a fixed window).
	MaxGather time.Duration
	mu        sync.Mutex
	pools     map[string]*poolReads
}

const (
	// DefaultGather is Batched's Gather: goroutines released together ask
	// within microseconds; one rbd process takes a tenth of a second or
	// more.
	DefaultGather = 20 * time.Millisecond
	// DefaultMaxGather is Batched's MaxGather. A step's images first ask
	// beside starting an rbd process each: in a traced 20-image demote on
	// the lab their asks were spread over 0.18 s, and with a fixed 20 ms
	// window 19 of them waited 0.4 s for a second read.
	DefaultMaxGather = 250 * time.Millisecond
)

// NewBatched batches c's status reads.
func NewBatched(c *Client) *Batched {
	return &Batched{Client: c, Gather: DefaultGather, MaxGather: DefaultMaxGather, pools: map[string]*poolReads{}}
}

// poolReads is one pool's read in flight and the one queued behind it.
type poolReads struct{ running, next *poolRead }

// poolRead is one `mirror pool status` and the callers waiting for it. It is
// cancelled once every waiter has given up.
type poolRead struct {
	done     chan struct{}
	byName   map[string]MirrorStatus
	err      error
	waiters  int
	ctx      context.Context
	cancel   context.CancelFunc
	launched bool      // its rbd process has started: later callers need the next read
	lastJoin time.Time // when the last caller joined it
	finished bool
}

// MirrorStatus is the image's entry of a pool read that started after the
// call. An image the pool does not list (not mirrored, or gone) is asked on
// its own, so its error is the one rbd gives for it.
func (b *Batched) MirrorStatus(ctx context.Context, img Image) (MirrorStatus, error) {
	return b.AskStatus(ctx, img)()
}

// AskStatus joins the pool's next read now and returns what waits for the
// image's entry of it (as MirrorStatus). A step that asks ahead of its
// first list joins the read before that list's rbd process starts: asked
// from a goroutine of its own, the ask waited for a processor while twenty
// images' processes were being started, and in a traced 20-image demote 15
// of the 20 asks came after the read had begun and waited 0.35 s for the
// next one. The caller calls the result at most once, and should: until it
// does, it counts as waiting.
func (b *Batched) AskStatus(ctx context.Context, img Image) func() (MirrorStatus, error) {
	r := b.join(img.Place())
	return func() (MirrorStatus, error) { return b.await(ctx, r, img) }
}

// await waits for r, a read joined for img, and returns img's entry of it.
func (b *Batched) await(ctx context.Context, r *poolRead, img Image) (MirrorStatus, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		b.leave(r)
		return MirrorStatus{}, ctx.Err()
	}
	if r.err != nil {
		return MirrorStatus{}, fmt.Errorf("reading the mirror status of pool %s: %w", img.Place(), r.err)
	}
	if st, ok := r.byName[img.Name]; ok {
		return st, nil
	}
	return b.Client.MirrorStatus(ctx, img)
}

// join queues the caller for the next read of pool, starting it if no read
// runs.
func (b *Batched) join(pool string) *poolRead {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pools[pool]
	if p == nil {
		p = &poolReads{}
		b.pools[pool] = p
	}
	if r := p.running; r != nil && !r.launched && r.ctx.Err() == nil { // still gathering
		r.waiters++
		r.lastJoin = time.Now()
		return r
	}
	if p.next == nil || p.next.ctx.Err() != nil { // none queued, or all its callers gave up
		ctx, cancel := context.WithCancel(context.Background())
		p.next = &poolRead{done: make(chan struct{}), ctx: ctx, cancel: cancel}
	}
	r := p.next
	r.waiters++
	r.lastJoin = time.Now()
	if p.running == nil {
		b.start(pool, p)
	}
	return r
}

// start runs p's queued read; b.mu is held.
func (b *Batched) start(pool string, p *poolReads) {
	r := p.next
	p.running, p.next = r, nil
	began := time.Now()
	go func() {
		b.gather(r, began)
		b.mu.Lock()
		r.launched = true
		b.mu.Unlock()
		byName, err := b.Client.PoolMirrorStatus(r.ctx, pool)
		b.mu.Lock()
		defer b.mu.Unlock()
		r.byName, r.err, r.finished = byName, err, true
		r.cancel()
		close(r.done)
		p.running = nil
		if p.next != nil {
			b.start(pool, p)
		}
	}()
}

// gather waits until no caller has joined r for Gather (counted from began
// at the earliest), or MaxGather after began (at least Gather), or every
// caller gave up.
func (b *Batched) gather(r *poolRead, began time.Time) {
	latest := began.Add(max(b.MaxGather, b.Gather))
	for {
		b.mu.Lock()
		until := r.lastJoin
		b.mu.Unlock()
		if until.Before(began) {
			until = began
		}
		until = until.Add(b.Gather)
		if latest.Before(until) {
			until = latest
		}
		if !time.Now().Before(until) {
			return
		}
		select {
		case <-time.After(time.Until(until)):
		case <-r.ctx.Done():
			return
		}
	}
}

// leave drops a caller that gave up; the read stops when none is left.
func (b *Batched) leave(r *poolRead) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.waiters--
	if r.waiters == 0 && !r.finished {
		r.cancel()
	}
}
